"""The layer-spec network: validation messages, save/load, the data split, ONNX export (no training)."""

from dataclasses import replace

import numpy as np
import pytest

from gen.network.data import digits
from gen.network.spec import Layer, Network, load, save
from gen.network.train import logits
from sim.network.golden import classes_of, input_ints, int8_forward
from sim.network.pipeline import evaluate


@pytest.fixture(scope="module")
def nets():
    return load("digits-float"), load("digits-int8")


def test_split_is_fixed():
    x, y = digits("train")
    xt, yt = digits("test")
    assert x.shape == (1347, 1, 8, 8) and xt.shape == (450, 1, 8, 8)
    assert np.bincount(yt).tolist() == [45, 46, 44, 46, 45, 46, 45, 45, 43, 45]   # stratified, fixed
    xa, _ = digits("all")
    assert len(xa) == len(x) + len(xt)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 1, 8, 7)), r"images shape \(2, 1, 8, 7\) does not match the network input: allowed \(n, 1, 8, 8\)"),
    (np.zeros((1, 8, 8)), r"images shape \(1, 8, 8\) does not match"),
    (np.full((2, 1, 8, 8), "a"), r"images dtype <U1 is not numeric: allowed a float or integer array"),
])
def test_bad_images(nets, bad, message):
    _, q = nets
    with pytest.raises(ValueError, match=message):
        input_ints(q, bad)
    with pytest.raises(ValueError, match="images"):
        evaluate(q, bad, np.zeros(len(bad), int))


def test_weights_that_do_not_chain(nets):
    f, _ = nets
    layers = list(f.layers)
    layers[1] = replace(layers[1], weight=np.zeros((16, 7, 3, 3)))
    with pytest.raises(ValueError, match=r"layer 'conv2' weight shape \(16, 7, 3, 3\) does not chain with its "
                                         r"input \(8, 4, 4\): allowed \[out, 8, kh, kw\]"):
        Network("bad", (1, 8, 8), layers)
    layers = list(f.layers)
    layers[3] = replace(layers[3], weight=np.zeros((10, 15)))
    with pytest.raises(ValueError, match=r"layer 'fc' weight shape \(10, 15\) does not chain .* allowed \[out, 16\]"):
        Network("bad", (1, 8, 8), layers)


def test_shift_and_weight_range(nets):
    _, q = nets
    layers = list(q.layers)
    layers[0] = replace(layers[0], shift=40)
    with pytest.raises(ValueError, match=r"layer 'conv1' shift = 40 is out of range: allowed 0 … 31"):
        Network("bad", (1, 8, 8), layers)
    layers[0] = replace(q.layers[0], weight=q.layers[0].weight * 0 + 200)
    with pytest.raises(ValueError, match=r"layer 'conv1' weight\[0, 0, 0, 0\] = 200 is out of range"):
        Network("bad", (1, 8, 8), layers)
    with pytest.raises(ValueError, match=r"layers\[0\].kind|layer 'x' kind = 'dense' is not allowed"):
        Network("bad", (1, 8, 8), [Layer("dense", "x", np.zeros((10, 64)))])
    with pytest.raises(ValueError, match="classes = 7 but the last layer has 10 outputs"):
        Network("bad", (1, 8, 8), q.layers, classes=7)


def test_path_needs_matching_network(nets):
    f, q = nets
    xt, yt = digits("test")
    with pytest.raises(ValueError, match="path 'int8' needs a int8 network; 'digits-cnn' is float"):
        evaluate(f, xt[:2], yt[:2], "int8")
    with pytest.raises(ValueError, match="path = 'gpu' is not allowed"):
        evaluate(q, xt[:2], yt[:2], "gpu")
    with pytest.raises(ValueError, match="labels has 3 entries for 2 images"):
        evaluate(q, xt[:2], yt[:3])
    with pytest.raises(ValueError, match=r"logits shape \(2, 9\) does not match the network output: allowed \(n, 10"):
        classes_of(q, np.zeros((2, 9), np.int64))
    with pytest.raises(ValueError, match="has float weights"):
        classes_of(f, np.zeros((2, 10), np.int64))


def test_save_load_round_trip(nets, tmp_path):
    _, q = nets
    back = load(save(q, tmp_path / "q.npz"))
    xt, _ = digits("test")
    assert [l.shift for l in back.layers] == [l.shift for l in q.layers]
    for a, b in zip(int8_forward(back, xt[:20]), int8_forward(q, xt[:20])):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="does not exist"):
        load(tmp_path / "missing.npz")


def test_onnx_export_matches_float(nets, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from gen.network.onnx_export import export_onnx
    f, q = nets
    path = export_onnx(f, tmp_path / "digits.onnx")
    xt, _ = digits("test")
    got = ReferenceEvaluator(onnx.load(path)).run(None, {"input": xt[:16].astype(np.float32)})[0]
    np.testing.assert_allclose(got, logits(f, xt[:16]), rtol=1e-4, atol=1e-4)
    assert [n.op_type for n in onnx.load(path).graph.node][:3] == ["Conv", "Relu", "Conv"]
    with pytest.raises(ValueError, match="has integer weights"):
        export_onnx(q, tmp_path / "q.onnx")


def test_exported_onnx_reads_back_through_the_onnx_importer(nets, tmp_path):
    """What `sparsegen simulate --onnx` sees of the exported digits CNN: the same layers, GEMM shapes and
    weights (gen.compiler.onnx_import)."""
    pytest.importorskip("onnx")
    from gen.compiler.onnx_import import import_onnx
    from gen.network.onnx_export import export_onnx
    f, _ = nets
    imported = import_onnx(export_onnx(f, tmp_path / "digits.onnx"))
    assert [(l.name, l.kind, l.gemm) for l in imported.layers] == \
        [("conv1", "conv", (16, 9, 8)), ("conv2", "conv", (4, 72, 16)), ("fc", "fc", (1, 16, 10))]
    for layer in imported.layers:
        np.testing.assert_allclose(layer.weights, f.weights()[layer.name], rtol=1e-6, atol=1e-7)
