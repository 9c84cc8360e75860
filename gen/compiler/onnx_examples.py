"""Small ONNX models built with ``onnx.helper`` (no PyTorch): the tests' and the docs' examples of ``--onnx``.

``python -m gen.compiler.onnx_examples --out DIR`` writes ``tiny_cnn.onnx`` and ``tiny_mlp.onnx`` (and a matching
input ``tiny_cnn_x.npy`` / ``tiny_mlp_x.npy``) into ``DIR`` (default ``<build>/onnx``).

- :func:`tiny_cnn`: Conv 3×3 (1→8, pad 1) → Relu → MaxPool 2×2 → depthwise Conv 3×3 (8, pad 1, stride 2) → Relu →
  Conv 1×1 (8→16) → Relu → GlobalAveragePool → Flatten → Gemm (16→10, transB): every kind ``--onnx`` maps (conv,
  depthwise, fully connected) and the pooling and reshapes it skips with a note. ``spec_only=True``: zero
  biases and a MaxPool over the whole map in place of GlobalAveragePool, the layers :mod:`gen.network.spec`
  expresses (what ``simulate --onnx`` runs).
- :func:`tiny_mlp`: Flatten → MatMul (64→32) → Relu → Gemm (32→10, transB = 0).

Weights are seeded Laplacian floats (:func:`gen.compiler.workloads.synthetic_weights`' distribution), biases small.
"""

import argparse
from pathlib import Path

import numpy as np

from hw import checks

from gen.paths import build_dir

__all__ = ["tiny_cnn", "tiny_mlp", "save", "main"]


def _helpers():
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ValueError("the example models need the onnx package: pip install -e '.[onnx]'") from None
    return onnx, TensorProto, helper, numpy_helper


def _w(rng, *shape):
    fan_in = int(np.prod(shape[1:]))
    return (rng.laplace(0.0, 1.0, size=shape) * np.sqrt(1.0 / fan_in)).astype(np.float32)


def tiny_cnn(*, seed: int = 0, size: int = 8, batch=1, spec_only: bool = False):
    """The CNN of the module docstring on a ``[batch, 1, size, size]`` input (``batch`` an int or a symbolic
    name); ``spec_only``: zero biases and a MaxPool over the whole last map instead of GlobalAveragePool.
    Returns the ``onnx.ModelProto``."""
    onnx, TensorProto, helper, numpy_helper = _helpers()
    seed = checks.check_int("seed", seed, 0)
    size = checks.check_int("size", size, 4, 64)
    spec_only = checks.check_bool("spec_only", spec_only)
    rng = np.random.default_rng([seed, 11])
    inits = [numpy_helper.from_array(_w(rng, 8, 1, 3, 3), "w1"),
             numpy_helper.from_array((rng.normal(size=8) * 0.01 * (not spec_only)).astype(np.float32), "b1"),
             numpy_helper.from_array(_w(rng, 8, 1, 3, 3), "w2"),
             numpy_helper.from_array(_w(rng, 16, 8, 1, 1), "w3"),
             numpy_helper.from_array(_w(rng, 10, 16), "w4"),
             numpy_helper.from_array(np.zeros(10, np.float32), "b4")]
    last = (size // 2 - 1) // 2 + 1                 # the map after the stride-2 depthwise conv
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2"], ["c2"], name="dw2", pads=[1, 1, 1, 1], strides=[2, 2], group=8),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Conv", ["r2", "w3"], ["c3"], name="pw3"),
             helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
             helper.make_node("MaxPool", ["r3"], ["g"], name="gap", kernel_shape=[last, last], strides=[last, last])
             if spec_only else helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w4", "b4"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "tiny_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def tiny_mlp(*, seed: int = 0):
    """Flatten → MatMul 64→32 → Relu → Gemm 32→10 (``transB = 0``) on a ``[1, 1, 8, 8]`` input."""
    onnx, TensorProto, helper, numpy_helper = _helpers()
    seed = checks.check_int("seed", seed, 0)
    rng = np.random.default_rng([seed, 12])
    inits = [numpy_helper.from_array(_w(rng, 32, 64).T.copy(), "w1"),      # MatMul: [K, N]
             numpy_helper.from_array(_w(rng, 10, 32).T.copy(), "w2")]      # Gemm transB = 0: [K, N]
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "w1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu1"),
             helper.make_node("Gemm", ["r", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(nodes, "tiny_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def save(model, path) -> Path:
    """Write ``model`` to ``path`` (through a temporary file: never a partial model)."""
    onnx = _helpers()[0]
    path = checks.check_writable_file("path", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gen.compiler.onnx_examples", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output directory (default <build>/onnx)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = checks.check_writable_dir("--out", args.out or build_dir() / "onnx", create=True)
    rng = np.random.default_rng(args.seed)
    for name, model, shape in (("tiny_cnn", tiny_cnn(seed=args.seed), (1, 1, 8, 8)),
                               ("tiny_cnn_sim", tiny_cnn(seed=args.seed, spec_only=True), (1, 1, 8, 8)),
                               ("tiny_mlp", tiny_mlp(seed=args.seed), (1, 1, 8, 8))):
        print(save(model, out / f"{name}.onnx"))
        np.save(out / f"{name}_x.npy", rng.normal(size=shape).astype(np.float32))
        print(out / f"{name}_x.npy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
