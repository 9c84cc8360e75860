"""The shipped int8 digits CNN: its documented accuracy, the golden against the GEMM engine's golden model, the
analog model with every non-ideality off, the activations file (no training)."""

import numpy as np
import pytest

from gen.config import load_config
from gen.network.data import digits
from gen.network.spec import load
from gen.rram.analog import PhysicsParams
from sim.gemm.golden import gemm_engine
from sim.network.analog import analog_forward
from sim.network.golden import classes_of, input_ints, int8_forward, layer_gemm, output_stage, quantize, save_activations
from sim.network.pipeline import SHIPPED_ACCURACY, evaluate
from sim.network.rtl import gemm_config, gemm_matrix_of, model_cycles


@pytest.fixture(scope="module")
def nets():
    return load("digits-float"), load("digits-int8")


def test_shipped_accuracy_is_the_documented_one(nets):
    f, q = nets
    xt, yt = digits("test")
    a_float = evaluate(f, xt, yt, "float")["accuracy"]
    a_int8 = evaluate(q, xt, yt, "int8")["accuracy"]
    assert a_float == SHIPPED_ACCURACY["float"]
    assert a_int8 == SHIPPED_ACCURACY["int8"]
    assert a_float - a_int8 <= 0.01, "int8 must stay within 1 point of float"


def test_shipped_int8_is_per_channel_quantization_of_the_float(nets):
    """digits_cnn_int8.npz is sim.network.golden.quantize (per channel, the default) of digits_cnn_float.npz on the
    training images: every weighted layer has its own scale per output channel, and the host's classes are the
    argmax of the dequantized logits."""
    f, q = nets
    x, y = digits("train")
    again = quantize(f, x, labels=y)
    for got, want in zip(again.layers, q.layers, strict=True):
        assert got.shift == want.shift, got.name
        if want.has_weights:
            np.testing.assert_array_equal(got.weight, want.weight)
            np.testing.assert_allclose(got.scale, want.scale, rtol=1e-6)   # float weights ship as float32
            assert len(np.unique(want.scale)) == len(want.scale), f"{want.name}: one scale per output channel"
            # each output channel uses the whole int8 range of its own scale (the input scales folded in)
            assert (np.abs(want.weight).reshape(len(want.scale), -1).max(axis=1) == 127).all(), want.name
    xt, _ = digits("test")
    logits = int8_forward(q, xt)[-1].reshape(len(xt), -1)
    np.testing.assert_array_equal(classes_of(q, logits), (logits * q.weighted[-1].scale).argmax(axis=1))
    assert (classes_of(q, logits) != logits.argmax(axis=1)).any(), "per-class scales that never matter test nothing"


def test_a_pruned_away_channel_does_not_set_the_next_layers_range(nets):
    """A conv1 channel with every weight pruned outputs 0: conv2's weights reading it become 0 and every conv2
    output channel still spans the whole int8 range with the others (the dead channel's placeholder scale folded
    into conv2 used to swamp them), and the int8 network stays close to the float one."""
    f, _ = nets
    w = f.weights()
    w["conv1"] = w["conv1"].copy()
    w["conv1"][0] = 0.0
    pruned = f.with_weights(w)
    x, _ = digits("train")
    q = quantize(pruned, x)
    conv2 = {l.name: l for l in q.layers}["conv2"]
    assert (conv2.weight[:, 0] == 0).all()
    others = np.abs(conv2.weight[:, 1:]).reshape(len(conv2.weight), -1)
    assert (others.max(axis=1) == 127).all()
    xt, yt = digits("test")
    assert evaluate(q, xt, yt, "int8")["accuracy"] >= evaluate(pruned, xt, yt, "float")["accuracy"] - 0.02


def test_golden_is_the_gemm_engine_golden(nets, seed):
    """Each layer of the int8 golden equals sim.gemm.golden.gemm_engine on the engine config the RTL uses
    (a layer without ReLU as [W, −W], halves subtracted)."""
    _, q = nets
    xt, _ = digits("test")
    pick = np.sort(np.random.default_rng(seed).choice(len(xt), 6, replace=False))
    outs = int8_forward(q, xt[pick])
    cfg = gemm_config(q)
    x = input_ints(q, xt[pick])
    for layer, out in zip(q.layers, outs):
        if layer.has_weights:
            A, W = layer_gemm(layer, x)
            C = gemm_engine(cfg, A, gemm_matrix_of(layer), layer.shift)
            if not layer.relu:
                C = C[:, :W.shape[1]] - C[:, W.shape[1]:]
            np.testing.assert_array_equal(C, output_stage(A @ W, layer))
            n, c, h, w = out.shape
            np.testing.assert_array_equal(C.reshape(n, h * w, c).transpose(0, 2, 1).reshape(out.shape), out)
        x = out
    assert (outs[-1] < 0).any() and (outs[-1] > 0).any(), "the logits keep their sign"


def test_analog_ideal_is_the_int8_golden(nets):
    _, q = nets
    xt, _ = digits("test")
    ideal = analog_forward(q, xt[:40], PhysicsParams.ideal(), seed=3)
    for got, want in zip(ideal, int8_forward(q, xt[:40])):
        np.testing.assert_array_equal(got, want)
    noisy = analog_forward(q, xt[:40], PhysicsParams(prog_sigma=0.05), seed=3)
    assert any((a != b).any() for a, b in zip(noisy, ideal)), "5 % programming noise changed nothing"


def test_activations_file(nets, tmp_path):
    _, q = nets
    xt, yt = digits("test")
    path = save_activations(q, xt[:10], yt[:10], tmp_path / "acts.npz")
    with np.load(path) as d:
        assert d["conv1"].dtype == np.int8 and d["conv1"].shape == (10, 8, 4, 4)
        np.testing.assert_array_equal(d["fc"].astype(np.int64), int8_forward(q, xt[:10])[-1])
        assert list(d["layers"]) == [l.name for l in q.layers]


def test_cycle_models(nets):
    _, q = nets
    g, r = model_cycles(q, "gemm"), model_cycles(q, "rram")
    assert g["total"] == sum(v for k, v in g.items() if k != "total") > 0
    assert r["total"] == sum(v for k, v in r.items() if k != "total") > 0
    # each RRAM layer: its output positions as isolated MVMs, each the limit L of its mapping plus the tile's fixed
    # overhead (gen/rram/perf.py: start, lane pipeline fill, hand-offs), a cross-check of mvm_cycles against L
    from gen.rram.perf import MVM_OVERHEAD, limit_cycles
    from sim.network.rtl import rram_config, rram_mappings

    cfg, maps = rram_config(q, ("dense",)), rram_mappings(q, "dense")
    for layer, shape in zip(q.layers, q.shapes[1:]):
        if layer.has_weights:
            assert r[layer.name] == shape[1] * shape[2] * (limit_cycles(cfg, maps[layer.name]) + MVM_OVERHEAD)
    assert load_config("gemm_4x4_2of4").keep == 2 and gemm_config(q).keep == 4   # the dense network: 4:4


def test_shipped_activations_are_the_golden(nets):
    """gen/network/data/digits_cnn_test_acts.npz (for activation-sparsity studies) is the golden's output."""
    from gen.network.spec import TEST_ACTIVATIONS
    _, q = nets
    xt, yt = digits("test")
    outs = int8_forward(q, xt)
    with np.load(TEST_ACTIVATIONS) as d:
        np.testing.assert_array_equal(d["input"], input_ints(q, xt))
        np.testing.assert_array_equal(d["labels"], yt)
        for layer, out in zip(q.layers, outs):
            np.testing.assert_array_equal(d[layer.name].astype(np.int64), out)
