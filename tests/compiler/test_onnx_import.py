"""ONNX import (gen/compiler/onnx_import.py) and its users ``perf --onnx`` / ``--net`` and ``map-report --onnx``.

Models are built with ``onnx.helper`` (gen/compiler/onnx_examples.py and small graphs here): conv, depthwise conv,
Gemm (transB 0 and 1), MatMul, Relu, pooling and reshapes (skipped with a note), a symbolic batch; bad models
(malformed file, unsupported operator, grouped conv, asymmetric padding, non-constant weight) must give one error
line naming the problem and write nothing.
"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from gen.cli import main  # noqa: E402
from gen.compiler.onnx_examples import save, tiny_cnn, tiny_mlp  # noqa: E402
from gen.compiler.onnx_import import import_onnx  # noqa: E402
from gen.compiler.report import map_report  # noqa: E402
from gen.config import load_config  # noqa: E402
from gen.gemm import perf  # noqa: E402
from gen.gemm.cli import dense_twin, network_layers, network_table  # noqa: E402
from gen.gemm.traffic import job_traffic, split_jobs  # noqa: E402
from hw.formats.conv import conv_gemm_shape  # noqa: E402


def cli_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsegen: error: "), err
    return lines[0]


def _model(nodes, inits, in_shape, out_shape, path):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_tiny_cnn_layers(tmp_path):
    model = tiny_cnn(seed=3, size=8)
    net = import_onnx(save(model, tmp_path / "cnn.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert [(l.name, l.op, l.kind) for l in net.layers] == [
        ("conv1", "Conv", "conv"), ("dw2", "Conv", "dw"), ("pw3", "Conv", "conv"), ("fc", "Gemm", "fc")]
    conv1, dw2, pw3, fc = net.layers
    # im2col shapes from hw/formats/conv.py, positions from shape inference
    assert conv1.gemm == conv_gemm_shape(8, 8, 1, 8, 3, 3, 1, 1) == (64, 9, 8) and conv1.positions == 64
    assert conv1.out_shape == (1, 8, 8, 8) and conv1.stride == 1 and conv1.padding == 1
    assert dw2.in_shape == (1, 8, 4, 4) and dw2.out_shape == (1, 8, 2, 2)     # after the 2×2 max pool
    assert dw2.gemm == (4, 9, 1) and dw2.channels == 8 and dw2.positions == 4 and dw2.stride == 2
    assert dw2.gemm_jobs()[-1] == ("dw2[7]", (4, 9, 1))
    assert pw3.gemm == (4, 8, 16) and fc.gemm == (1, 16, 10) and fc.positions == 1
    np.testing.assert_array_equal(conv1.weights, inits["w1"])
    np.testing.assert_array_equal(conv1.bias, inits["b1"])
    np.testing.assert_array_equal(fc.weights, inits["w4"])                      # transB = 1: already [out, in]
    assert dw2.layer().kind == "dw" and dw2.layer().shape == (8, 1, 3, 3) and dw2.layer().positions == 4
    assert [(name, op) for name, op, _ in net.skipped] == [
        ("relu1", "Relu"), ("pool1", "MaxPool"), ("relu2", "Relu"), ("relu3", "Relu"), ("gap", "GlobalAveragePool"),
        ("flatten", "Flatten")]
    assert "pooling" in dict((n, note) for n, _, note in net.skipped)["pool1"]
    assert net.input == "x" and net.input_shape == (1, 1, 8, 8) and len(net.gemm_jobs()) == 11


def test_symbolic_batch_and_matmul(tmp_path):
    net = import_onnx(save(tiny_cnn(batch="N"), tmp_path / "n.onnx"))
    assert net.layers[0].in_shape == (1, 1, 8, 8) and net.layers[0].gemm == (64, 9, 8)
    model = tiny_mlp(seed=1)
    mlp = import_onnx(save(model, tmp_path / "mlp.onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    fc1, fc2 = mlp.layers
    assert (fc1.op, fc1.gemm, fc2.op, fc2.gemm) == ("MatMul", (1, 64, 32), "Gemm", (1, 32, 10))
    x = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)
    np.testing.assert_allclose(x @ fc1.weights.T, x @ inits["w1"], rtol=1e-6)   # [out, in] = MatMul's B.T
    np.testing.assert_array_equal(fc2.weights, inits["w2"].T)


@pytest.mark.parametrize("case", ["malformed", "empty", "unsupported", "grouped", "asymmetric", "weight_input",
                                  "no_gemm"])
def test_bad_models(tmp_path, capsys, case):
    path = tmp_path / f"{case}.onnx"
    w = np.ones((4, 2, 3, 3), np.float32)
    if case == "malformed":
        path.write_bytes(b"\x08\x07garbage that is not a protobuf \xff\xff")
        expect = "not a readable ONNX model"
    elif case == "empty":
        path.write_bytes(b"")
        expect = "invalid model"
    elif case == "unsupported":
        _model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                helper.make_node("LRN", ["c"], ["y"], name="norm1", size=3)], {"w": w}, [1, 2, 6, 6], [1, 4, 4, 4],
               path)
        expect = "node 'norm1' (LRN): unsupported operator 'LRN'"
    elif case == "grouped":
        _model([helper.make_node("Conv", ["x", "w"], ["y"], name="gconv", group=2)],
               {"w": np.ones((4, 2, 3, 3), np.float32)}, [1, 4, 6, 6], [1, 4, 4, 4], path)
        expect = "node 'gconv' (Conv): grouped convolution (group = 2"
    elif case == "asymmetric":
        _model([helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[0, 0, 1, 1])], {"w": w},
               [1, 2, 6, 6], [1, 4, 5, 5], path)
        expect = "node 'c' (Conv): asymmetric padding [0, 0, 1, 1]"
    elif case == "weight_input":
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "b"], ["y"], name="mm")], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
                                   helper.make_tensor_value_info("b", TensorProto.FLOAT, [4, 3])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
        save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        expect = "2 graph inputs ['x', 'b']"
    else:
        _model([helper.make_node("Relu", ["x"], ["y"], name="r")], {}, [1, 4], [1, 4], path)
        expect = "no Conv, Gemm or MatMul node"
    with pytest.raises(ValueError, match="^--onnx "):
        import_onnx(path)
    before = sorted(tmp_path.iterdir())
    for argv in (["perf", "--config", "gemm_4x4_2of4", "--onnx", str(path)],
                 ["map-report", "--quiet", "--onnx", str(path)]):
        assert expect in cli_error(capsys, argv)
    assert sorted(tmp_path.iterdir()) == before                      # nothing written
    assert "--onnx = " in cli_error(capsys, ["perf", "--config", "gemm_4x4_2of4", "--onnx", str(tmp_path / "no")])


def test_split_jobs_and_traffic():
    cfg = load_config("gemm_4x4_2of4")                              # max 64 × 64 × 64, k = 16, cols 4
    jobs = split_jobs(cfg, 130, 40, 70)
    assert [(m0, n0, m, n) for m0, n0, m, _, n in jobs] == [
        (0, 0, 64, 64), (0, 64, 64, 6), (64, 0, 64, 64), (64, 64, 64, 6), (128, 0, 2, 64), (128, 64, 2, 6)]
    with pytest.raises(ValueError, match=r"K = 65 is larger than max_k = 64 .* --set max_k=65"):
        split_jobs(cfg, 1, 65, 1)
    assert [j[3] for j in split_jobs(cfg, 1, 150, 1, split_k=True)] == [64, 64, 22]
    # WS, 10 × 40 × 6: kt = 3 K-tiles of 16, nt = 2 N-tiles of 4; A: 2·10·48 bytes; W: 3·4 PE rows × 2·4 columns ×
    # 2 entries of 8 + 2 bits; C: 2·10·4 int8
    assert job_traffic(cfg, 10, 40, 6) == {"a_bytes": 960.0, "w_bytes": 240.0, "c_bytes": 80.0}
    os_cfg = load_config("gemm_4x4_2of4_os")
    # OS: S = 10 steps of 4, mt = 3, nt = 2: A 2·12·40, W 3·10·8·2 entries of 10 bits, C as WS (acc 24 bit? result)
    t = job_traffic(os_cfg, 10, 40, 6)
    assert t["a_bytes"] == 2 * 12 * 40 and t["w_bytes"] == 3 * 10 * 8 * 2 * 10 / 8
    assert t["c_bytes"] == 2 * 10 * 4 * os_cfg.result_bits / 8


def test_perf_net_and_onnx(tmp_path, capsys):
    cfg = load_config("gemm_8x8_2of4")
    dense = dense_twin(cfg)
    title, layers = network_layers(net="resnet18")
    table = network_table(cfg, dense, layers)
    conv1 = table["layers"][0]
    assert (conv1["name"], conv1["m"], conv1["k"], conv1["n"], conv1["jobs"]) == ("conv1", 12544, 147, 64, 13)
    jobs = [(1024, 147, 64)] * 12 + [(12544 - 12 * 1024, 147, 64)]
    assert conv1["cycles"] == perf.predict(cfg, jobs).cycles
    assert conv1["a_bytes"] == sum(job_traffic(cfg, *j)["a_bytes"] for j in jobs)
    assert table["totals"]["cycles"] == sum(r["cycles"] for r in table["layers"])
    assert main(["perf", "--config", "gemm_8x8_2of4", "--net", "resnet18", "--net", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "--net resnet18" in out and "--net tiny" in out
    total = next(l for l in out.splitlines() if l.startswith("total"))
    assert total.split()[1:3] == [str(table["totals"]["jobs"]), str(table["totals"]["cycles"])]
    path = save(tiny_cnn(), tmp_path / "cnn.onnx")
    assert main(["perf", "--config", "gemm_4x4_2of4", "--onnx", str(path)]) == 0
    out = capsys.readouterr().out
    dw = next(l for l in out.splitlines() if l.startswith("dw2"))
    small = load_config("gemm_4x4_2of4")
    assert dw.split()[1:6] == ["4", "9", "1", "8", str(perf.predict(small, [(4, 9, 1)] * 8).cycles)]
    assert "skipped, no GEMM: relu1 (Relu), pool1 (MaxPool)" in out


def test_map_report_onnx_equals_npz(tmp_path):
    """map-report --onnx gives the rows map-report --weights gives for the same weights with the positions and the
    depthwise flag written by hand."""
    path = save(tiny_cnn(seed=5), tmp_path / "cnn.onnx")
    net = import_onnx(path)
    arrays = {}
    for layer in net.layers:
        arrays[layer.name] = layer.weights
        arrays[f"{layer.name}.positions"] = np.array(layer.positions)
        arrays[f"{layer.name}.depthwise"] = np.array(int(layer.kind == "dw"))
    np.savez(tmp_path / "w.npz", **arrays)
    kw = dict(prune="nm:2:4", strategy="ou-sparse", xbar=(64, 64), ou=(9, 8))
    via_onnx = map_report(onnx=path, **kw)
    via_npz = map_report(weights=tmp_path / "w.npz", **kw)
    assert via_onnx["layers"] == via_npz["layers"] and via_onnx["totals"] == via_npz["totals"]
    assert [r["positions"] for r in via_onnx["layers"]] == [64, 4, 4, 1]
    assert [r["kind"] for r in via_onnx["layers"]] == ["conv", "dw", "conv", "fc"]
    assert [s["op"] for s in via_onnx["settings"]["skipped"]][:2] == ["Relu", "MaxPool"]
