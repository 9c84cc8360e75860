"""A-DBB on the trained network (docs/gemm-actsparse.md, "Accuracy on the trained network"): the int8 hook against
an independent re-implementation and the engine's own golden, the float A-DBB mask against adbb_prune, the A-DBB
backward pass against finite differences, fine-tuning keeping a 2:4 mask, bad input. No training beyond one
tiny epoch."""

import numpy as np
import pytest

from gen.compiler.prune import prune
from gen.config import load_config
from gen.network.data import digits
from gen.network.spec import load
from gen.network.train import ActPrune, adbb_keep, digits_cnn, finetune, forward, gradients, predict, softmax_cross_entropy
from hw.formats.actsparse import adbb_prune
from sim.gemm.golden import effective_acts
from sim.network.actsparse import adbb_gemm, adbb_predict, int8_units
from sim.network.golden import classes_of, input_ints, layer_gemm, output_stage


def ref_adbb(A, act_keep, block):
    """Independent of ``adbb_prune`` (pairwise ranks): the training's float mask, a stable descending sort per
    block (:func:`gen.network.train.adbb_keep`; ``tests/gemm/test_actsparse.py`` holds ``adbb_prune`` equal to a
    loop reference)."""
    return np.where(adbb_keep(A, act_keep=act_keep, block=block), A, 0).astype(np.int64)


def tied_acts(rng, m, k):
    """int8 activations with zeros, ties (one magnitude, random signs, in a third of the rows) and −128."""
    A = rng.integers(-128, 128, (m, k))
    A[rng.random((m, k)) < 0.3] = 0
    tie = rng.random(m) < 0.35
    A[tie] = rng.choice([-1, 1], (int(tie.sum()), k)) * rng.integers(1, 129, (int(tie.sum()), 1))
    return np.clip(A, -128, 127)


def test_hook_is_adbb_prune_per_layer(seed):
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    A = tied_acts(rng, 23, 10)                           # K = 10: the last block zero-padded, as conv1's K = 9
    W = rng.integers(-127, 128, (10, 6))
    engine = load_config("gemm_4x4_2of4_act1of4")        # the engine's own golden selects the same lanes
    for act_keep in (1, 2, 3):
        want = ref_adbb(A, act_keep, 4)
        assert np.array_equal(adbb_gemm(act_keep)(None, A, W), want @ W), act_keep
    assert np.array_equal(effective_acts(engine, A), ref_adbb(A, 1, 4))


def test_adbb_predict_is_the_layer_by_layer_reference():
    """Every weighted layer (the image's too) computes ``ref_adbb(A) @ W`` before its output stage."""
    q = load("digits-int8")
    xt, _ = digits("test")
    x = input_ints(q, xt[:4])
    for layer, shape in zip(q.layers, q.shapes[1:]):
        if layer.kind == "maxpool":
            n, c, h, w = x.shape
            x = x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
            continue
        A, W = layer_gemm(layer, x, k_order="cij")
        out = output_stage(ref_adbb(A, 2, 4) @ W, layer)
        c, h, w = shape
        x = out.reshape(len(x), h * w, c).transpose(0, 2, 1).reshape(len(x), c, h, w)
    assert np.array_equal(adbb_predict(q, xt[:4], 2, k_order="cij"), classes_of(q, x))


def test_float_mask_equals_adbb_prune(seed):
    rng = np.random.default_rng(seed + 1)
    print(f"seed {seed}")
    A = tied_acts(rng, 40, 13)
    units = rng.choice([0.25, 1.0, 3.0], 13)
    for act_keep in (1, 2, 3):
        want = adbb_prune(A, act_keep=act_keep, block=4) != 0
        got = adbb_keep(A.astype(float), act_keep=act_keep, block=4) & (A != 0)
        assert np.array_equal(got, want)
        # in int8 units: the float values A·units rank as the integers A do
        scaled = adbb_keep(A * units, act_keep=act_keep, block=4, units=units) & (A != 0)
        assert np.array_equal(scaled, want)


def test_adbb_backward_is_the_gradient_through_kept_entries(seed):
    """Finite differences of the loss with A-DBB in the forward pass (masks locally constant) against
    :func:`gradients`; the straight-through variant differs."""
    rng = np.random.default_rng(seed + 2)
    print(f"seed {seed}")
    net = load("digits-float")
    x, y = digits("train")
    pick = rng.choice(len(x), 5, replace=False)
    x, y = x[pick], y[pick]
    rule = ActPrune(2, 4)
    _, grads = gradients(net, x, y, act_prune=rule)
    weights = net.weights()
    def loss(name, w, idx, step):
        moved = w.copy()
        moved[idx] += step
        return gradients(net.with_weights({name: moved}), x, y, act_prune=rule)[0]

    eps = 1e-6
    for name, w in weights.items():
        checked = 0
        for flat in rng.permutation(w.size)[:30]:
            idx = np.unravel_index(flat, w.shape)
            up, mid, down = loss(name, w, idx, eps), loss(name, w, idx, 0.0), loss(name, w, idx, -eps)
            forward, backward = (up - mid) / eps, (mid - down) / eps
            if abs(forward - backward) > 1e-3 * max(1.0, abs(forward)):
                continue    # a kept/dropped activation flips at or near w (ties, a kink): not differentiable here
            central = (up - down) / (2 * eps)
            assert abs(central - grads[name][idx]) <= 1e-5 * max(1.0, abs(central)), (name, idx, central,
                                                                                      grads[name][idx])
            checked += 1
            if checked == 3:
                break
        assert checked == 3, (name, checked)
    _, st = gradients(net, x, y, act_prune=ActPrune(2, 4, straight_through=True))
    assert not np.allclose(st["conv1"], grads["conv1"])


def test_finetune_with_adbb_keeps_the_24_mask():
    f = load("digits-float")
    x, y = digits("train")
    mask = {k: prune(w, "nm", {"keep": 2, "block": 4})[0] for k, w in f.weights().items()}
    q = load("digits-int8")
    tuned = finetune(f, mask, x[:64], y[:64], epochs=1, act_prune=ActPrune(1, 4, units=int8_units(q)), teacher=f)
    for name, w in tuned.weights().items():
        assert np.all(w[~mask[name]] == 0), name
        assert not np.array_equal(w[mask[name]], f.weights()[name][mask[name]]), name


@pytest.mark.parametrize("call, name", [
    (lambda: ActPrune(5, 4), "act_keep"),
    (lambda: ActPrune(0, 4), "act_keep"),
    (lambda: ActPrune(2, 3), "block"),
    (lambda: ActPrune(2, 32), "block"),
    (lambda: adbb_gemm(5), "act_keep"),
    (lambda: adbb_gemm(1, 6), "block"),
    (lambda: adbb_predict(load("digits-int8"), digits("test")[0][:2], 4, 2), "act_keep"),
    (lambda: gradients(digits_cnn(0), digits("train")[0][:2], [0, 1], act_prune=ActPrune(1, layers=("conv9",))),
     "conv9"),
    (lambda: gradients(digits_cnn(0), digits("train")[0][:2], [0, 1], act_prune=ActPrune(1, units={"x": [1.0]})),
     "units"),
])
def test_bad_input_is_a_one_line_value_error(call, name):
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert name in message and "\n" not in message, message


def test_bad_types_are_type_errors():
    with pytest.raises(TypeError, match="units"):
        ActPrune(1, units=[1.0])
    with pytest.raises(TypeError, match="act_prune"):
        finetune(digits_cnn(0), {}, digits("train")[0][:2], [0, 1], epochs=1, act_prune=2)


def test_study_cli_bad_layer_is_one_line(capsys):
    from sim.network.actsparse import main
    with pytest.raises(SystemExit) as exc:
        main(["--layers", "conv1,conv9"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and "conv9" in err and "Traceback" not in err, err


def test_softmax_cross_entropy_is_the_log_softmax_and_its_slope(seed):
    """Loss = mean(logsumexp(z) − z[label]) (scipy) and its gradient is that loss's, also where the label's
    probability is ~1e-12 (a floor inside the log used to bend the loss there: issue 15's gradient mismatch)."""
    from scipy.special import logsumexp

    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    z = rng.normal(0, 3, size=(4, 10))
    z[0, 3] = z[0].max() - 27.0                       # label 3 of row 0: probability ~1e-12
    labels = np.array([3, 0, 5, 9])
    loss, grad = softmax_cross_entropy(z, labels)
    assert loss == pytest.approx((logsumexp(z, axis=1) - z[np.arange(4), labels]).mean(), rel=1e-12)
    eps = 1e-6
    for i, j in [(0, 3), (0, int(z[0].argmax())), (2, 5), (3, 1)]:
        up, down = z.copy(), z.copy()
        up[i, j] += eps
        down[i, j] -= eps
        fd = (softmax_cross_entropy(up, labels)[0] - softmax_cross_entropy(down, labels)[0]) / (2 * eps)
        assert grad[i, j] == pytest.approx(fd, rel=1e-6, abs=1e-9), (i, j)


def test_adbb_finetune_keeps_the_mask_and_measure_is_the_golden():
    """One epoch of the study's fine-tuning keeps the 2:4 mask in the float and the int8 network; the study's
    figures (:func:`measure`) are the int8 A-DBB golden's and the float A-DBB forward's; on the shipped networks
    with dense activations, 435/450 and the float accuracy."""
    from sim.network.actsparse import adbb_finetune, measure

    f = load("digits-float")
    mask = {k: prune(w, "nm", {"keep": 2, "block": 4})[0] for k, w in f.weights().items()}
    x, y = digits("train")
    xt, yt = digits("test")
    tuned, q = adbb_finetune(f, 2, mask=mask, teacher=f, epochs=1, seed=1)
    for name, w in tuned.weights().items():
        assert np.all(w[~mask[name]] == 0) and np.all(q.weights()[name][~mask[name]] == 0), name
    run = measure(tuned, q, 2)
    assert run["test"] == np.mean(adbb_predict(q, xt, 2) == yt)
    assert run["train"] == np.mean(adbb_predict(q, x, 2) == y)
    flt = forward(tuned, xt, act_prune=ActPrune(2, 4, units=int8_units(q)))[-1].reshape(len(xt), -1).argmax(1)
    assert run["float"] == np.mean(flt == yt) and abs(run["float"] - run["test"]) < 0.1, run
    dense = measure(f, load("digits-int8"), None)
    assert dense["test"] == 435 / 450 and dense["float"] == np.mean(predict(f, xt) == yt), dense


def test_spread_over_seeds():
    from sim.network.actsparse import spread

    runs = [{"test": 0.94}, {"test": 0.92}, {"test": 0.96}]
    assert spread(runs) == pytest.approx({"mean": 0.94, "min": 0.92, "max": 0.96, "std": np.sqrt(0.0008 / 3)})
    assert spread([{"train": 1.0}], "train") == {"mean": 1.0, "min": 1.0, "max": 1.0, "std": 0.0}


@pytest.mark.parametrize("argv, name", [(["--seeds", "0,x"], "seeds"), (["--seeds", ""], "seeds"),
                                        (["--act-keeps", "2,5"], "act_keep"), (["--seeds", "-1"], "seed"),
                                        (["--reorder"], "reorder"), (["--weights", "int4"], "weights"),
                                        (["--k-order", "cji"], "k_order"), (["--reorder", "sort"], "reorder"),
                                        (["--rank-noise", "-1"], "rank_noise")])
def test_study_cli_bad_seeds_and_act_keeps_are_one_line(capsys, argv, name):
    from sim.network.actsparse import main
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "\n" not in err and name in err and "Traceback" not in err, err


def test_permute_channels_keeps_the_dense_function_and_moves_the_blocks(seed):
    """A random channel order of conv1 and conv2: the same float logits on dense activations; the fc layer's
    K-blocks hold other channels (so A-DBB's logits change); bad orders are one-line errors."""
    from sim.network.actsparse import adbb_channel_order, permute_channels

    rng = np.random.default_rng(seed + 3)
    print(f"seed {seed}")
    f = load("digits-float")
    xt, _ = digits("test")
    perms = {"conv1": rng.permutation(8), "conv2": rng.permutation(16)}
    g = permute_channels(f, perms)
    w, v = f.weights(), g.weights()
    assert np.array_equal(v["conv2"], w["conv2"][perms["conv2"]][:, perms["conv1"]])
    assert np.array_equal(v["fc"], w["fc"][:, perms["conv2"]])
    assert np.allclose(forward(g, xt[:50])[-1], forward(f, xt[:50])[-1], rtol=0, atol=1e-9)
    rule = ActPrune(2, 4, layers=("fc",))
    assert not np.allclose(forward(g, xt[:50], act_prune=rule)[-1], forward(f, xt[:50], act_prune=rule)[-1])
    for bad, name in (({"fc": np.arange(10)}, "fc"), ({"conv1": np.zeros(8, int)}, "permutation"),
                      ({"conv2": np.arange(15)}, "conv2")):
        with pytest.raises(ValueError) as err:
            permute_channels(f, bad)
        assert name in str(err.value) and "\n" not in str(err.value), err.value
    identity = adbb_channel_order(f, 2, rounds=0)
    assert {k: p.tolist() for k, p in identity.items()} == {"conv1": list(range(8)), "conv2": list(range(16))}


def test_nm_n_mask_is_prune_n_on_the_gemm_matrix(seed):
    """The network's 2:4-along-N mask (conv OIHW and linear weights, ties and a short last N-block included) keeps
    exactly what hw.formats.nm_n.prune_n keeps of the layer's K × N GEMM matrix."""
    from gen.compiler.prune import as_matrix
    from hw.formats.nm_n import prune_n
    from sim.network.actsparse import nm_n_mask

    rng = np.random.default_rng(seed)
    for shape in [(10, 16), (16, 8, 3, 3), (6, 1, 3, 3)]:
        w = rng.integers(-3, 4, size=shape)            # few values: many magnitude ties
        mask = nm_n_mask(w)
        assert mask.shape == w.shape and mask.dtype == bool
        assert np.array_equal(as_matrix(np.where(mask, w, 0)), prune_n(as_matrix(w), keep=2, block=4))
        counts = np.count_nonzero(np.pad(as_matrix(mask), ((0, 0), (0, -shape[0] % 4))).reshape(-1, 4), axis=1)
        assert counts.max() <= 2


def test_k_order_decides_the_blocks_on_a_hand_made_case():
    """conv2-like input where only channel 0 is non-zero, one value everywhere (spatially correlated, equal
    magnitudes): in the ``"cij"`` order a K-block holds 4 of its taps and A-DBB 2:4 drops two; in ``"ijc"`` each tap
    is alone among the 4 channels of its block, so nothing is dropped and the result is the dense one. Both orders:
    the same dense sums."""
    from gen.network.spec import Layer

    x = np.zeros((1, 8, 4, 4), np.int64)
    x[0, 0] = 5                                          # one channel, similar magnitudes everywhere (ReLU'd)
    w = np.arange(1, 16 * 8 * 9 + 1).reshape(16, 8, 3, 3) % 7 - 3
    layer = Layer("conv", "conv2", w, stride=2, padding=1)
    dense = {o: np.matmul(*layer_gemm(layer, x, k_order=o)) for o in ("cij", "ijc")}
    assert np.array_equal(dense["cij"], dense["ijc"])
    A, W = layer_gemm(layer, x, k_order="ijc")
    assert np.array_equal(adbb_gemm(2)(layer, A, W), dense["ijc"])
    A, W = layer_gemm(layer, x, k_order="cij")
    kept = adbb_prune(A, act_keep=2, block=4)
    assert np.count_nonzero(kept) < np.count_nonzero(A) and not np.array_equal(kept @ W, dense["cij"])


def test_float_forward_cuts_blocks_in_its_k_order(seed):
    """The training's A-DBB on conv2 (float, magnitudes in the int8 network's units) in either K order equals
    ``adbb_keep`` on that order's im2col rows of conv1's float output, then ``@ gemm_matrix(w, k_order)``."""
    from hw.formats.conv import gemm_matrix, im2col

    rng = np.random.default_rng(seed + 5)
    print(f"seed {seed}")
    f = load("digits-float")
    x = digits("train")[0][rng.choice(1347, 6, replace=False)]
    h1 = forward(f, x)[0]                                            # (6, 8, 4, 4) after ReLU
    units = {"conv2": rng.choice([0.5, 1.0, 2.0], 8)}
    w2 = f.weights()["conv2"]
    outs = {}
    for o in ("cij", "ijc"):
        got = forward(f, x, act_prune=ActPrune(2, 4, units=units, layers=("conv2",), k_order=o))[1]
        pad = np.pad(h1, ((0, 0), (0, 0), (1, 1), (1, 1)))
        idx = im2col(np.arange(pad[0].size).reshape(pad.shape[1:]), 3, 3, 2, 0, k_order=o)
        A = pad.reshape(6, -1)[:, idx]                                  # (6, 4, 72) in order o
        u = units["conv2"][idx[0] // 36]                                 # the channel of each K column
        kept = A * adbb_keep(A, act_keep=2, block=4, units=u)
        want = np.maximum(kept @ gemm_matrix(w2, k_order=o), 0).transpose(0, 2, 1).reshape(got.shape)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        outs[o] = got
    assert not np.allclose(outs["cij"], outs["ijc"])


def test_nm_k_mask_is_24_along_k_in_its_order(seed):
    from gen.compiler.prune import as_matrix
    from hw.formats.conv import gemm_matrix
    from sim.network.actsparse import nm_k_mask

    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    w = rng.normal(size=(16, 8, 3, 3))
    assert np.array_equal(nm_k_mask(w), prune(w, "nm", {"keep": 2, "block": 4})[0])
    m = nm_k_mask(w, k_order="ijc")
    assert np.count_nonzero(gemm_matrix(m, k_order="ijc").reshape(-1, 4, 16), axis=1).max() <= 2
    assert m.sum() == w.size // 2 and not np.array_equal(m, nm_k_mask(w))
    assert np.array_equal(nm_k_mask(w[:, :1]), nm_k_mask(w[:, :1], k_order="ijc"))    # one channel: one order
    lin = rng.normal(size=(10, 16))
    assert np.array_equal(as_matrix(nm_k_mask(lin, k_order="ijc")), as_matrix(nm_k_mask(lin)))


def test_balanced_channel_order_mixes_dense_and_sparse_channels():
    """The channels dealt by non-zero count on the training images (snake order): a permutation per hidden layer
    that keeps the dense function, and the fc layer's 4 blocks of 4 pooled channels then hold about equal non-zero
    counts (the shipped order: from 3 % to 90 % of their slots)."""
    from sim.network.actsparse import balanced_channel_order, permute_channels
    from sim.network.golden import int8_forward, quantize

    f = load("digits-float")
    x, _ = digits("train")
    perms = balanced_channel_order(f)
    assert sorted(perms) == ["conv1", "conv2"]
    assert sorted(perms["conv1"].tolist()) == list(range(8)) and sorted(perms["conv2"].tolist()) == list(range(16))
    g = permute_channels(f, perms)
    assert np.allclose(forward(g, x[:40])[-1], forward(f, x[:40])[-1], rtol=0, atol=1e-9)
    counts = np.count_nonzero(int8_forward(quantize(f, x), x)[2], axis=(0, 2, 3))
    shipped, balanced = counts.reshape(4, 4).sum(axis=1), counts[perms["conv2"]].reshape(4, 4).sum(axis=1)
    assert balanced.max() - balanced.min() <= counts.max() < shipped.max() - shipped.min(), (shipped, balanced)


def test_rank_noise_is_seeded_training_only_and_checked():
    f = load("digits-float")
    x, y = digits("train")
    q = load("digits-int8")
    rule = ActPrune(2, 4, units=int8_units(q), rank_noise=0.5)
    a = finetune(f, {}, x[:64], y[:64], epochs=1, seed=3, act_prune=rule)
    b = finetune(f, {}, x[:64], y[:64], epochs=1, seed=3, act_prune=rule)
    c = finetune(f, {}, x[:64], y[:64], epochs=1, seed=3, act_prune=ActPrune(2, 4, units=int8_units(q)))
    assert all(np.array_equal(a.weights()[k], b.weights()[k]) for k in a.weights())
    assert not all(np.array_equal(a.weights()[k], c.weights()[k]) for k in a.weights())
    for bad, exc in ((lambda: ActPrune(2, 4, rank_noise=-0.1), ValueError),
                     (lambda: forward(f, x[:2], act_prune=rule), ValueError),
                     (lambda: ActPrune(2, 4, k_order="cji"), ValueError),
                     (lambda: ActPrune(2, 4, k_order=1), TypeError)):
        with pytest.raises(exc) as err:
            bad()
        assert "\n" not in str(err.value) and ("rank_noise" in str(err.value) or "k_order" in str(err.value))
