"""``sparsegen simulate`` (sim/simulate/): the user's data on the RTL, checked against the golden models.

- GEMM (``--a/--w``) on Verilator and Icarus: a seeded 2:4 GEMM larger than the engine's ``max_m`` and ``max_n``
  (so it runs as several jobs), through the CLI: ``C.npy`` equals ``requantize(A @ W)`` computed here, the cycles
  equal the cycle model and the MAC counters the golden counts; on Icarus with ``--waves``, the printed waveform
  exists; a corrupted golden shows the mismatch message.
- ONNX (``--onnx``) on Verilator: the tiny CNN (conv, depthwise conv, 1×1 conv, Gemm with ReLU, max pooling,
  global average pooling, flatten between them) layer by layer on the engine; every layer's RTL output equals the
  same runner with the golden model as its GEMM, and conv1's equals the direct convolution of the quantized input.
- RRAM layer (``--layer``) on Verilator: the trained bars CNN's conv2, pattern-pruned and mapped ``ou-sparse``,
  real im2col vectors; Y equals ``x @ Wq`` and the direct convolution at those positions.
- Bad input: wrong dtype or shape, K mismatch, weights breaking 2:4, missing files, two sources, a model with an
  operator the runner cannot apply: one error line, exit 2, nothing written.

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


def test_onnx_network(seed, tmp_path, capsys):
    require_simulator("verilator")
    pytest.importorskip("onnx")
    from gen.compiler.onnx_examples import save, tiny_cnn
    from gen.compiler.onnx_import import import_onnx
    from sim.simulate.run import quantize_input, run_network

    path = save(tiny_cnn(seed=seed % 1000), tmp_path / "cnn.onnx")
    x = np.random.default_rng(seed).normal(size=(1, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    assert main(["simulate", "--config", "gemm_4x4_2of4", *_argv_set(), "--onnx", str(path), "--input",
                 str(tmp_path / "x.npy"), "--out", str(out), "--quiet", "--seed", str(seed)]) == 0
    text = capsys.readouterr().out
    cfg = load_config("gemm_4x4_2of4", MAXIMA)
    net = import_onnx(path)
    # the same runner with the golden model as its GEMM: every layer equal to the RTL's
    ref_out, ref_layers = run_network(cfg, net, x, gemm=lambda name, jobs: [golden.gemm_engine(cfg, *j) for j in jobs])
    for layer in ref_layers:
        np.testing.assert_array_equal(np.load(out / f"layer_{layer['name']}.npy"), layer["output"])
    np.testing.assert_array_equal(np.load(out / "output.npy"), ref_out)
    report = json.loads((out / "report.json").read_text())
    assert [(r["name"], r["jobs"]) for r in report["layers"]] == [("conv1", 2), ("dw2", 8), ("pw3", 1), ("fc", 1)]
    assert all(r["rtl_cycles"] == r["model_cycles"] for r in report["layers"])
    assert report["cycles"] == sum(r["rtl_cycles"] for r in report["layers"])
    # conv1 independently: the direct convolution of the quantized input with the 2:4-pruned int8 weights
    from gen.compiler.workloads import prepare_layer
    conv1 = net.layers[0]
    q, _ = prepare_layer(conv1.layer(), conv1.weights, prune_name="nm", prune_params={"keep": 2, "block": 4})
    acc = conv2d_direct(quantize_input(x)[0], q, 1, 1)
    shift = report["layers"][0]["shift"]
    want = golden.requantize(acc, relu=True, out_bits=8, shift=shift)
    np.testing.assert_array_equal(np.load(out / "layer_conv1.npy")[0], want)
    assert len(np.unique(want)) > 4 and "skipped (host or no GEMM): relu1 (Relu), pool1 (MaxPool)" in text
    assert [r["relu_in_model"] for r in report["layers"]] == [True, True, True, False]
    assert "note: layer fc: the engine applies ReLU (config-wide) where the model has none" in text


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
             "x4.npy": np.zeros((1, 1, 4, 4))}
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

        good = save(tiny_cnn(), tmp_path / "cnn.onnx")
        cases += [([*base, "--onnx", str(bad), "--input", str(tmp_path / "x4.npy")],
                   "node 'residual' (Add) is not supported by the simulate runner"),
                  ([*base, "--onnx", str(good), "--input", str(tmp_path / "x5.npy")],
                   "has shape (1, 1, 5, 5): allowed [1, 1, 8, 8]")]
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
