"""Every layer kind of the spec (conv, depthwise, maxpool, fc) on a small random network, as an ONNX importer
would build one: the float forward pass against ONNX's reference runtime, the int8 golden's depthwise layer
against a direct convolution, the analog model off against the golden, the GEMM engine's golden (no training)."""

import numpy as np
import pytest

from gen.network.spec import Layer, Network
from gen.network.train import forward
from gen.rram.analog import PhysicsParams
from sim.gemm.conv import conv2d_direct
from sim.gemm.golden import gemm_engine, requantize
from sim.network.analog import analog_forward
from sim.network.golden import input_ints, int8_forward, layer_gemm, output_stage, quantize
from sim.network.rtl import gemm_config, gemm_matrix_of


@pytest.fixture
def nets(seed):
    rng = np.random.default_rng(seed)
    layers = (Layer("conv", "c1", rng.normal(0, 0.5, (4, 1, 3, 3)), stride=1, padding=1),
              Layer("depthwise", "dw", rng.normal(0, 0.5, (4, 1, 3, 3)), stride=2, padding=1),
              Layer("maxpool", "mp", size=2, relu=False),
              Layer("fc", "fc", rng.normal(0, 0.5, (5, 16)), relu=False))
    f = Network("tiny", (1, 8, 8), layers, classes=5)
    images = rng.uniform(0, 16, (12, 1, 8, 8))
    return f, quantize(f, images), images


def test_float_matches_onnx_reference(nets, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    from gen.network.onnx_export import export_onnx
    f, _, images = nets
    got = ReferenceEvaluator(onnx.load(export_onnx(f, tmp_path / "t.onnx"))).run(
        None, {"input": images.astype(np.float32)})[0]
    np.testing.assert_allclose(got, forward(f, images)[-1].reshape(len(images), -1), rtol=1e-4, atol=1e-3)


def test_depthwise_golden_is_a_direct_convolution(nets):
    _, q, images = nets
    outs = int8_forward(q, images)
    dw = q.layers[1]
    for x, y in zip(outs[0], outs[1]):
        direct = np.stack([conv2d_direct(x[c:c + 1], dw.weight[c:c + 1], dw.stride, dw.padding)[0]
                           for c in range(x.shape[0])])
        np.testing.assert_array_equal(y, requantize(direct, relu=True, out_bits=8, shift=dw.shift))


def test_every_kind_on_the_engine_golden_and_the_ideal_analog_model(nets):
    _, q, images = nets
    cfg = gemm_config(q)
    x = input_ints(q, images)
    for layer, out in zip(q.layers, int8_forward(q, images)):
        if layer.has_weights:
            A, W = layer_gemm(layer, x)
            C = np.concatenate([gemm_engine(cfg, A[r:r + cfg.max_m], gemm_matrix_of(layer), layer.shift)
                                for r in range(0, len(A), cfg.max_m)])      # jobs of at most max_m rows
            if not layer.relu:
                C = C[:, :W.shape[1]] - C[:, W.shape[1]:]
            np.testing.assert_array_equal(C, output_stage(A @ W, layer))
        x = out
    for got, want in zip(analog_forward(q, images, PhysicsParams.ideal(), seed=1), int8_forward(q, images)):
        np.testing.assert_array_equal(got, want)
