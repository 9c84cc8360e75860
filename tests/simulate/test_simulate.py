"""``sparsegen simulate`` (sim/simulate/): the user's data on the RTL, checked against the golden models.

- GEMM (``--a/--w``) on Verilator and Icarus: a seeded 2:4 GEMM larger than the engine's ``max_m`` and ``max_n``
  (so it runs as several jobs), through the CLI: ``C.npy`` equals ``requantize(A @ W)`` computed here, the cycles
  equal the cycle model and the MAC counters the golden counts; on Icarus with ``--waves``, the printed waveform
  exists; a corrupted golden shows the mismatch message.
- ONNX (``--onnx``) on Verilator, through the real-network pipeline: the trained digits CNN exported by
  :func:`gen.network.onnx_export.export_onnx` (the converted network equals the shipped one, every layer equals the
  int8 golden of the shipped network quantized on the two test images, so do the predicted classes), and the tiny
  CNN in its spec-only form (conv, max pool, depthwise, 1×1 conv, max pool, Gemm logits: the float spec against
  ONNX's reference runtime, every layer against the int8 golden, conv1 against the direct convolution, signed
  logits); ``perf`` and ``map-report`` on the exported digits CNN give the spec's GEMM shapes.
- RRAM layer (``--layer``) on Verilator: the trained bars CNN's conv2, pattern-pruned and mapped ``ou-sparse``,
  real im2col vectors; Y equals ``x @ Wq`` and the direct convolution at those positions.
- Bad input: wrong dtype or shape, K mismatch, weights breaking 2:4, missing files, two sources, a model with an
  operator or a bias the network spec cannot express (the node named), an engine the network does not fit: one
  error line, exit 2, nothing written.

The engine config is the compiled-layer test's (``gemm_4x4_2of4`` with maxima 36×72×16) and the tile config its
tile, so the simulator builds are shared with tests/compiler/test_compiled_layers_cocotb.py.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from gen.cli import main
from gen.config import load_config
from gen.gemm import perf
from hw.formats.conv import im2col
from sim.common.runner import SIMULATORS, require_simulator
from sim.gemm import golden
from sim.gemm.conv import conv2d_direct
from sim.systolic.golden import random_acts, random_nm_weights

MAXIMA = {"max_m": 36, "max_k": 72, "max_n": 16}          # = sim.compiler.compiled_layer.gemm_config(36, 72, 16)
SET = [f"{k}={v}" for k, v in MAXIMA.items()]


def _argv_set():
    return [a for item in SET for a in ("--set", item)]


def cli_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsegen: error: "), err
    return lines[0]


def _gemm_data(seed, m=50, k=40, n=20):
    rng = np.random.default_rng(seed)
    A = random_acts(rng, m=m, k=k, act_bits=8, act_signed=True)
    W = random_nm_weights(rng, k=k, n=n, keep=2, block=4, weight_bits=8, density=0.9)
    return A, W


@pytest.mark.parametrize("sim", SIMULATORS)
def test_gemm_cli(sim, seed, tmp_path, capsys):
    require_simulator(sim)
    A, W = _gemm_data(seed)
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "W.npy", W)
    out = tmp_path / "out"
    argv = ["simulate", "--config", "gemm_4x4_2of4", *_argv_set(), "--a", str(tmp_path / "A.npy"), "--w",
            str(tmp_path / "W.npy"), "--sim", sim, "--out", str(out), "--seed", str(seed)]
    # --waves on Icarus only: its build is seconds (a waves build of Verilator would not be shared)
    assert main(argv + (["--waves"] if sim == "icarus" else [])) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    cfg = load_config("gemm_4x4_2of4", MAXIMA)
    report = json.loads((out / "report.json").read_text())
    shift = report["shift"]
    acc = A @ W
    assert shift == max(0, int(np.maximum(acc, 0).max()).bit_length() - 7)        # the auto shift: int8 output
    np.testing.assert_array_equal(np.load(out / "C.npy"),
                                  golden.requantize(acc, relu=True, out_bits=8, shift=shift))
    jobs = [(36, 40, 16), (36, 40, 4), (14, 40, 16), (14, 40, 4)]                  # 50 rows, 20 columns
    assert report["jobs"] == 4 and report["rtl_cycles"] == report["model_cycles"] == perf.predict(cfg, jobs).cycles
    counters = report["counters"]
    macs = [golden.mac_counts(cfg, A[m0:m0 + 36], W[:, n0:n0 + 16]) for m0 in (0, 36) for n0 in (0, 16)]
    assert counters["macs"] == sum(a for a, _ in macs) and counters["zero_skips"] == sum(b for _, b in macs)
    assert counters["jobs_done"] == 4 and counters["busy_cycles"] == perf.predict(cfg, jobs).busy_cycles
    assert f"cycles: {report['rtl_cycles']} from the first descriptor" in text and "all 1000 elements equal" in text
    if sim == "icarus":
        wave = report["waveform"]
        assert f"waveform: {wave}" in text and wave.endswith(".fst") and Path(wave).stat().st_size > 1000
    else:
        assert report["waveform"] is None


def test_gemm_mismatch_names_element(seed, monkeypatch, capsys, tmp_path):
    """A golden model that disagrees with the RTL: exit 1, the first differing element named, nothing written."""
    require_simulator("verilator")
    import sim.gemm.golden

    A, W = _gemm_data(seed, m=5, k=8, n=3)
    np.save(tmp_path / "A.npy", A)
    np.save(tmp_path / "W.npy", W)
    real = sim.gemm.golden.gemm_engine

    def off_by_one(cfg, A, W, shift=0):
        C = real(cfg, A, W, shift)
        C[2, 1] += 1
        return C
    monkeypatch.setattr(sim.gemm.golden, "gemm_engine", off_by_one)
    out = tmp_path / "out"
    assert main(["simulate", "--config", "gemm_4x4_2of4", *_argv_set(), "--a", str(tmp_path / "A.npy"), "--w",
                 str(tmp_path / "W.npy"), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "sparsegen: simulate: mismatch: C[2, 1] = " in err and "(1 of 15 elements differ)" in err
    assert not out.exists()


def _digits_onnx(path):
    from gen.network.onnx_export import export_onnx
    from gen.network.spec import load

    return load("digits-float"), export_onnx(load("digits-float"), path)


def _spec_gemm(network):
    """``[(name, M, K, N)]`` per weighted layer of a spec (no depthwise): M output positions, K taps, N channels."""
    return [(l.name, shape[1] * shape[2], int(np.prod(l.weight.shape[1:])), l.weight.shape[0])
            for l, shape in zip(network.layers, network.shapes[1:]) if l.has_weights]


def test_onnx_digits_cnn(seed, tmp_path, capsys):
    """The trained digits CNN exported to ONNX, two test images through ``simulate --onnx`` on Verilator."""
    require_simulator("verilator")
    pytest.importorskip("onnx")
    from gen.compiler.onnx_import import import_onnx
    from gen.network.data import digits
    from gen.network.onnx_import import network_from_onnx
    from sim.network.golden import int8_forward, int8_predict, quantize

    shipped, path = _digits_onnx(tmp_path / "digits.onnx")
    images, labels = digits("test")
    pick = np.random.default_rng(seed).choice(len(images), 2, replace=False)
    np.save(tmp_path / "x.npy", images[pick])
    out = tmp_path / "out"
    assert main(["simulate", "--onnx", str(path), "--input", str(tmp_path / "x.npy"), "--out", str(out), "--quiet",
                 "--seed", str(seed)]) == 0
    text = capsys.readouterr().out
    # the converted network is the shipped one: layers, geometry and float weights
    converted = network_from_onnx(import_onnx(path))
    assert converted.input_shape == shipped.input_shape and converted.classes == shipped.classes
    for got, want in zip(converted.layers, shipped.layers, strict=True):
        assert (got.kind, got.name, got.stride, got.padding, got.relu, got.size) == \
            (want.kind, want.name, want.stride, want.padding, want.relu, want.size)
        assert (got.weight is None) == (want.weight is None)
        if got.weight is not None:
            np.testing.assert_array_equal(got.weight, want.weight)
    # every layer's RTL output equals the pipeline's int8 golden of the shipped network quantized on these images
    qnet = quantize(shipped, images[pick])
    golden_layers = int8_forward(qnet, images[pick])
    for layer, want in zip(qnet.layers, golden_layers, strict=True):
        np.testing.assert_array_equal(np.load(out / f"layer_{layer.name}.npy"), want, err_msg=layer.name)
    np.testing.assert_array_equal(np.load(out / "output.npy"), golden_layers[-1].reshape(2, -1))
    report = json.loads((out / "report.json").read_text())
    predicted = int8_predict(qnet, images[pick])
    assert report["predictions"] == predicted.tolist()
    assert f"predicted classes {', '.join(map(str, predicted.tolist()))} (the int8 golden's)" in text
    assert [(r["name"], r.get("shift")) for r in report["layers"]] == [(l.name, l.shift) for l in qnet.layers]
    assert [(r["name"], *r["gemm"]) for r in report["layers"] if "gemm" in r] == _spec_gemm(shipped)
    assert report["cycles"] == sum(r["cycles"] for r in report["layers"] if "cycles" in r) > 0
    assert report["top"] == "gemm_ws_4x4_4of4_s8w8acc24_m256k72n20_relu_o8_p4"   # tests/network's build
    assert f"{report['cycles']} engine cycles in all" in text and "layer fc (fc, no ReLU: [W, −W])" in text


def test_onnx_tiny_cnn(seed, tmp_path, capsys):
    """The tiny CNN in its spec-only form (conv, max pool, depthwise, 1×1 conv, max pool, Gemm logits)."""
    require_simulator("verilator")
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from gen.compiler.onnx_examples import save, tiny_cnn
    from gen.compiler.onnx_import import import_onnx
    from gen.network.onnx_import import network_from_onnx
    from gen.network.train import forward
    from sim.network.golden import input_ints, int8_forward, quantize

    model = tiny_cnn(seed=seed % 1000, spec_only=True)
    path = save(model, tmp_path / "cnn.onnx")
    x = np.random.default_rng(seed).normal(size=(1, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    assert main(["simulate", "--onnx", str(path), "--input", str(tmp_path / "x.npy"), "--out", str(out), "--quiet",
                 "--seed", str(seed)]) == 0
    text = capsys.readouterr().out
    net = network_from_onnx(import_onnx(path))
    assert [(l.name, l.kind, l.relu) for l in net.layers] == [
        ("conv1", "conv", True), ("pool1", "maxpool", False), ("dw2", "depthwise", True), ("pw3", "conv", True),
        ("gap", "maxpool", False), ("fc", "fc", False)]
    # the float spec computes what the ONNX model computes
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(forward(net, x.astype(np.float64))[-1].reshape(1, -1), want, rtol=1e-4, atol=1e-5)
    qnet = quantize(net, x.astype(np.float64))
    golden_layers = int8_forward(qnet, x.astype(np.float64))
    for layer, ref in zip(qnet.layers, golden_layers, strict=True):
        np.testing.assert_array_equal(np.load(out / f"layer_{layer.name}.npy"), ref, err_msg=layer.name)
    np.testing.assert_array_equal(np.load(out / "output.npy"), golden_layers[-1].reshape(1, -1))
    report = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in report["layers"] if "cycles" in r] == ["conv1", "dw2", "pw3", "fc"]
    assert report["cycles"] == sum(r["cycles"] for r in report["layers"] if "cycles" in r) > 0
    # conv1 independently: the direct convolution of the int8 input with the int8 weights, the engine's stage
    conv1 = qnet.layers[0]
    acc = conv2d_direct(input_ints(qnet, x.astype(np.float64))[0], conv1.weight, 1, 1)
    ref = golden.requantize(acc, relu=True, out_bits=8, shift=conv1.shift)
    np.testing.assert_array_equal(np.load(out / "layer_conv1.npy")[0], ref)
    assert len(np.unique(ref)) > 4
    # the logits keep their sign (no ReLU in the model: the engine runs [W, −W])
    logits = np.load(out / "output.npy")
    assert logits.min() < 0 < logits.max() and "layer fc (fc, no ReLU: [W, −W])" in text


def _chain_model(path, nodes, out_shape):
    """A model on a ``[1, 1, 4, 4]`` input ``x`` with weight ``w`` (4×1×3×3) and ``wf`` (10×64), output ``y``."""
    from onnx import TensorProto, helper, numpy_helper

    from gen.compiler.onnx_examples import save

    inits = [numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.ones((10, 64), np.float32), "wf")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_onnx_conversion_refusals(tmp_path):
    """What the network spec cannot express is refused by the converter, one line naming the node."""
    pytest.importorskip("onnx")
    from onnx import helper

    from gen.compiler.onnx_import import import_onnx
    from gen.network.onnx_import import network_from_onnx

    conv = helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1])
    fc = [helper.make_node("Flatten", ["r"], ["f"], name="flat"), helper.make_node("Gemm", ["f", "wf"], ["y"],
                                                                                    name="fc", transB=1)]
    cases = {
        "relu after a pool": ([conv, helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2],
                                                      strides=[2, 2]),
                               helper.make_node("Relu", ["p"], ["y"], name="late")], [1, 4, 2, 2],
                              "node 'late' (Relu) does not follow a Conv/Gemm/MatMul directly"),
        "overlapping pool": ([conv, helper.make_node("MaxPool", ["c"], ["y"], name="pool", kernel_shape=[2, 2],
                                                     strides=[1, 1])], [1, 4, 3, 3],
                             "node 'pool' (MaxPool) has kernel [2, 2], strides [1, 1]"),
        "average pool": ([conv, helper.make_node("AveragePool", ["c"], ["y"], name="avg", kernel_shape=[2, 2],
                                                 strides=[2, 2])], [1, 4, 2, 2],
                         "node 'avg' (AveragePool): not expressible as a network spec layer"),
        "branch": ([conv, helper.make_node("Relu", ["c"], ["r"], name="relu"),
                    helper.make_node("Relu", ["c"], ["r2"], name="side"), *fc], [1, 10],
                   "node 'side' (Relu) takes 'c', not the previous node's output 'r'"),
    }
    for name, (nodes, shape, expect) in cases.items():
        net = import_onnx(_chain_model(tmp_path / f"{name.replace(' ', '_')}.onnx", nodes, shape))
        with pytest.raises(ValueError) as error:
            network_from_onnx(net)
        message = str(error.value)
        assert expect in message and "\n" not in message, (name, message)
    ok = network_from_onnx(import_onnx(_chain_model(tmp_path / "ok.onnx", [
        conv, helper.make_node("Relu", ["c"], ["r"], name="relu"), *fc], [1, 10])))
    assert [(l.name, l.kind, l.relu) for l in ok.layers] == [("conv", "conv", True), ("fc", "fc", False)]


def test_onnx_digits_perf_map_report(tmp_path, capsys):
    """``perf`` and ``map-report`` on the exported trained network give the shipped network's GEMM shapes."""
    pytest.importorskip("onnx")
    shipped, path = _digits_onnx(tmp_path / "digits.onnx")
    assert main(["perf", "--config", "gemm_4x4_2of4", "--onnx", str(path)]) == 0
    rows = {line.split()[0].rstrip("*"): line.split()[1:4] for line in capsys.readouterr().out.splitlines()
            if line.split()[:1] and line.split()[0].rstrip("*") in {"conv1", "conv2", "fc"}}
    assert [(name, *map(int, rows[name])) for name in ("conv1", "conv2", "fc")] == _spec_gemm(shipped)
    assert main(["map-report", "--onnx", str(path)]) == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()
            if line.split()[:1] and line.split()[0] in {"conv1", "conv2", "fc"}}
    assert [(name, rows[name]) for name in ("conv1", "conv2", "fc")] == \
        [(name, f"{k}×{n}") for name, _, k, n in _spec_gemm(shipped)]


def test_rram_layer(seed, tmp_path, capsys):
    """conv2 of the shipped bars CNN on the compiled-layer test's tile (shared build): two real im2col vectors."""
    require_simulator("verilator")
    from hw.formats.mapping import CrossbarGeometry
    from sim.compiler.compiled_layer import (PADDING, RRAM_DAC_BITS, RRAM_GEOMETRY, RRAM_PRUNE, STRIDE,
                                             compiled_layer, layer_input, rram_config, rram_plans)
    from sim.simulate.run import simulate_layer

    plans = rram_plans(CrossbarGeometry(**RRAM_GEOMETRY), dac_bits=RRAM_DAC_BITS)
    cfg = rram_config([plan.mapping() for plan, _ in plans.values()])
    _, q = compiled_layer(RRAM_PRUNE)
    x2 = layer_input(seed)
    A = im2col(x2, 3, 3, STRIDE, PADDING)
    pick = np.sort(np.random.default_rng(seed).choice(len(A), 2, replace=False))
    run = simulate_layer(path="bars", name="conv2", prune=RRAM_PRUNE, strategy="ou-sparse", X=A[pick],
                         geometry=RRAM_GEOMETRY, dac_bits=RRAM_DAC_BITS, config=cfg, seed=seed, progress=False)
    Y = run.outputs[0]
    direct = conv2d_direct(x2, q, STRIDE, PADDING).reshape(q.shape[0], -1).T
    np.testing.assert_array_equal(Y, direct[pick])
    regs = run.report["registers"]
    assert regs["MVMS"] == 2 and regs["OU_ACTIVATIONS"] == plans["ou-sparse"][0].stats["ous"] * cfg.n_planes * 2


def _bad_model(path):
    from onnx import TensorProto, helper, numpy_helper

    from gen.compiler.onnx_examples import save

    w = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "c"], ["y"], name="residual")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 4])], [w])
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_bad_input(tmp_path, capsys):
    require_simulator("verilator")
    A, W = _gemm_data(1, m=5, k=8, n=3)
    files = {"A.npy": A, "W.npy": W, "Af.npy": A.astype(np.float64), "A1.npy": A.ravel(), "Ak.npy": A[:, :7],
             "Wd.npy": np.ones((8, 3), np.int64), "Abig.npy": A * 0 + 300, "x5.npy": np.zeros((1, 1, 5, 5)),
             "x4.npy": np.zeros((1, 1, 4, 4)),
             "x8.npy": np.random.default_rng(1).normal(size=(2, 1, 8, 8))}
    for name, value in files.items():
        np.save(tmp_path / name, value)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    out = tmp_path / "out"
    base = ["simulate", "--config", "gemm_4x4_2of4", *_argv_set(), "--out", str(out)]

    def gemm(a, w):
        return [*base, "--a", str(tmp_path / a), "--w", str(tmp_path / w)]
    cases = [
        (gemm("Af.npy", "W.npy"), "has dtype float64: allowed an integer array"),
        (gemm("A1.npy", "W.npy"), "has shape (40,): allowed a 2-D array"),
        (gemm("Ak.npy", "W.npy"), "A has shape (5, 7) and W (8, 3)"),
        (gemm("A.npy", "Wd.npy"), "K-block"),
        (gemm("Abig.npy", "W.npy"), "300"),
        (gemm("junk.npy", "W.npy"), "cannot read as .npy"),
        (gemm("missing.npy", "W.npy"), "does not exist"),
        ([*base, "--a", str(tmp_path / "A.npy")], "a GEMM needs both --a A.npy and --w W.npy"),
        ([*gemm("A.npy", "W.npy"), "--sim", "modelsim"], "--sim = 'modelsim'"),
        ([*gemm("A.npy", "W.npy"), "--layer", str(tmp_path / "A.npy")], "give one source"),
        (["simulate", "--config", "ssa_8x8_2of4", "--a", str(tmp_path / "A.npy"), "--w", str(tmp_path / "W.npy")],
         "allowed a \"gemm\" preset"),
        (["simulate", "--layer", str(tmp_path / "A.npy"), "--out", str(out)], "--layer needs --mapping"),
        (["simulate", "--layer", str(tmp_path / "A.npy"), "--mapping", "dense", "--out", str(out)],
         "--layer " + str(tmp_path / "A.npy") + " holds a single array"),
        ([*base, "--onnx", str(tmp_path / "A.npy")], "--onnx needs --input"),
        ([*gemm("A.npy", "W.npy"), "--out", str(tmp_path / "A.npy")], "is an existing file, not a directory"),
    ]
    from gen.compiler.onnx_import import onnx_available

    if onnx_available():                 # the onnx extra; the other cases run without it
        bad = _bad_model(tmp_path / "add.onnx")
        from gen.compiler.onnx_examples import save, tiny_cnn

        good = save(tiny_cnn(spec_only=True), tmp_path / "cnn.onnx")
        biased = save(tiny_cnn(), tmp_path / "biased.onnx")
        onnx = ["simulate", "--out", str(out), "--onnx"]
        cases += [([*onnx, str(bad), "--input", str(tmp_path / "x4.npy")],
                   "node 'residual' (Add): not expressible as a network spec layer: allowed a chain of Conv"),
                  ([*onnx, str(biased), "--input", str(tmp_path / "x5.npy")],
                   "node 'conv1' (Conv) has a nonzero bias"),
                  ([*onnx, str(good), "--input", str(tmp_path / "x5.npy")],
                   "x5.npy has shape (1, 1, 5, 5): allowed [n, 1, 8, 8] or [1, 8, 8]"),
                  ([*base, "--onnx", str(good), "--input", str(tmp_path / "x8.npy")],
                   "layer 'conv1' (9 × 8 matrix): "),
                  ([*onnx, str(good), "--input", str(tmp_path / "x8.npy"), "--shift", "3"],
                   "--shift 3 belongs to --a/--w")]
    for argv, expect in cases:
        line = cli_error(capsys, argv)
        assert expect in line, (argv, line)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
def test_rram_layer_cli(sim, seed, tmp_path, capsys):
    """``--layer`` through the CLI on the tile it derives (its own build: make test-full only): a 20-input,
    6-output fully-connected layer pruned 50 %, mapped ou-sparse; Y.npy equals ``X @ Wq`` from the compiler."""
    require_simulator(sim)
    from gen.compiler.prune import as_matrix
    from gen.compiler.report import prepared_layers

    rng = np.random.default_rng(seed)
    np.savez(tmp_path / "fc.npz", fc=rng.normal(size=(6, 20)).astype(np.float32))
    X = rng.integers(-128, 128, size=(3, 20))
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "out"
    assert main(["simulate", "--layer", str(tmp_path / "fc.npz"), "--mapping", "ou-sparse", "--prune",
                 "magnitude:ratio=0.5", "--xbar", "32x32", "--input", str(tmp_path / "X.npy"), "--sim", sim,
                 "--out", str(out), "--quiet"]) == 0
    (_, q, _), = prepared_layers(weights=tmp_path / "fc.npz", prune="magnitude:ratio=0.5")
    np.testing.assert_array_equal(np.load(out / "Y.npy"), X @ as_matrix(q))
    report = json.loads((out / "report.json").read_text())
    assert report["registers"]["MVMS"] == 3 and "all 18 outputs equal" in capsys.readouterr().out


def test_gemm_os_engine(seed):
    """The output-stationary engine through the Python API (its build shared with tests/gemm's OS config): a GEMM
    of 3 × 2 jobs, C equal to ReLU/requantization of A @ W computed here, cycles equal to the cycle model."""
    require_simulator("verilator")
    from sim.simulate.run import simulate_gemm

    cfg = load_config("gemm_4x4_2of4_os", {"max_m": 10, "max_k": 40, "max_n": 10})
    A, W = _gemm_data(seed, m=25, k=40, n=13)
    run = simulate_gemm(cfg, A, W, shift=9, seed=seed, progress=False)
    np.testing.assert_array_equal(run.outputs[0], golden.requantize(A @ W, relu=True, out_bits=8, shift=9))
    jobs = [(m, 40, n) for m in (10, 10, 5) for n in (10, 3)]
    assert run.report["jobs"] == 6 and run.report["rtl_cycles"] == perf.predict(cfg, jobs).cycles
