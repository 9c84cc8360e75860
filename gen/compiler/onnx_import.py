"""ONNX import: an ONNX graph → the layers with weights that ``perf``, ``map-report`` and ``simulate`` work on.

Only the ``onnx`` package is needed (``pip install -e '.[onnx]'``; no PyTorch, no onnxruntime). :func:`import_onnx`
loads and checks the model, runs ONNX shape inference and walks the nodes in graph order:

- ``Conv`` (2-D, 1 or ``C_in`` groups), ``Gemm`` and ``MatMul`` with a constant weight become an
  :class:`OnnxLayer`: float (or integer) weights in the compiler's layout (OIHW, or ``[out, in]`` for Gemm/MatMul),
  the im2col GEMM shape ``(M, K, N)`` from :func:`hw.formats.conv.conv_gemm_shape` (``M = batch · H_out · W_out``
  output pixels, ``K = C_in · kh · kw``, ``N = C_out``; Gemm/MatMul: ``M`` = the input's rows), the output
  positions per inference from the inferred shapes, and depthwise detection (``group == C_in == C_out``, weights
  ``[c, 1, kh, kw]``: ``kind = "dw"``, ``c`` GEMMs of ``M × kh·kw × 1``);
- the operators of :data:`SKIPPED` (activations, pooling, reshapes, element-wise ops, normalization) carry no
  GEMM: they are listed in :attr:`OnnxNetwork.skipped` with a note saying why;
- any other operator is an error naming the operator and the node: nothing is guessed.

A batch dimension left symbolic (``N``, ``batch``, ``?``) is taken as 1; other symbolic dimensions are an error.
Padding must be symmetric (what :func:`hw.formats.conv.im2col` lowers), dilation 1, kernels square.
"""

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hw import checks
from hw.formats.conv import conv_gemm_shape, conv_output_size

from gen.compiler.networks import Layer

__all__ = ["SKIPPED", "GEMM_OPS", "OnnxLayer", "OnnxNode", "OnnxNetwork", "import_onnx", "onnx_available"]

GEMM_OPS = ("Conv", "Gemm", "MatMul")

# operators with no GEMM: kept in the node list (gen.network.onnx_import converts some), noted, not mapped
SKIPPED = {
    "Relu": "activation: the GEMM engine's fused ReLU (or the host)",
    "Clip": "activation (ReLU6 style): not on the engine",
    "LeakyRelu": "activation: not on the engine", "Sigmoid": "activation: not on the engine",
    "Tanh": "activation: not on the engine", "Softmax": "classifier output: not on the engine",
    "MaxPool": "pooling: no GEMM", "AveragePool": "pooling: no GEMM", "GlobalAveragePool": "pooling: no GEMM",
    "Flatten": "reshape: no data movement", "Reshape": "reshape: no data movement",
    "Squeeze": "reshape: no data movement", "Unsqueeze": "reshape: no data movement",
    "Transpose": "data layout: no GEMM", "Identity": "no-op", "Dropout": "no-op at inference",
    "BatchNormalization": "normalization: fold it into the conv before export to quantize it with the weights",
    "Add": "element-wise (residual, bias): no GEMM", "Mul": "element-wise: no GEMM",
    "Sub": "element-wise: no GEMM", "Div": "element-wise: no GEMM",
    "Concat": "concatenation: no GEMM", "Pad": "padding: no GEMM", "Shape": "shape computation",
    "Gather": "shape computation", "Constant": "constant (weights are read from it)", "Cast": "type cast",
}


def onnx_available() -> bool:
    """Whether the ``onnx`` package can be imported (the ``onnx`` extra)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ValueError("--onnx needs the onnx package: pip install -e '.[onnx]' (or `make test`, which installs "
                         "it)") from None
    return onnx


@dataclass(frozen=True)
class OnnxNode:
    """One node of the graph, in graph order: ``op``, its ``name`` (the first output when unnamed), tensor names and
    attributes (plain Python values)."""
    op: str
    name: str
    inputs: tuple
    outputs: tuple
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OnnxLayer:
    """A Conv/Gemm/MatMul node as a GEMM layer.

    Attributes
    ----------
    name, op : str
        The node's name and operator.
    kind : str
        ``"conv"``, ``"dw"`` (depthwise) or ``"fc"`` (Gemm/MatMul), as in :class:`gen.compiler.networks.Layer`.
    weights : ndarray
        OIHW ``[C_out, C_in/group, kh, kw]`` (conv, dw) or ``[out, in]`` (fc), the model's dtype (float32 as a rule).
    bias : ndarray or None
        ``[C_out]``; the GEMM engine has no bias input, so the runners note it and leave it out.
    input, output : str
        Tensor names. ``in_shape`` / ``out_shape``: inferred shapes (batch 1 when symbolic).
    stride, padding : int
        Symmetric stride and padding (conv); 1 and 0 for fc.
    gemm : tuple of int
        ``(M, K, N)`` of the im2col GEMM; for ``dw`` the GEMM of one channel ``(M, kh·kw, 1)``, run ``channels``
        times.
    positions : int
        Output positions per inference (``H_out · W_out``; fc: ``M / batch``).
    """
    name: str
    op: str
    kind: str
    weights: np.ndarray
    bias: np.ndarray | None
    input: str
    output: str
    in_shape: tuple
    out_shape: tuple
    stride: int
    padding: int
    gemm: tuple
    positions: int

    @property
    def channels(self) -> int:
        """GEMMs the layer is: ``C`` for a depthwise conv (one per channel), else 1."""
        return self.weights.shape[0] if self.kind == "dw" else 1

    def gemm_jobs(self) -> list:
        """``[(name, (M, K, N)), ...]``: the layer's GEMMs, one per channel for ``dw``."""
        if self.kind != "dw":
            return [(self.name, self.gemm)]
        return [(f"{self.name}[{c}]", self.gemm) for c in range(self.channels)]

    def layer(self) -> Layer:
        """The compiler's :class:`~gen.compiler.networks.Layer` (``map-report``): positions from shape inference."""
        w = self.weights
        if self.kind == "fc":
            return Layer(self.name, "fc", w.shape[1], w.shape[0], count=self.positions)
        cin = w.shape[0] if self.kind == "dw" else w.shape[1]
        return Layer(self.name, self.kind, cin, w.shape[0], w.shape[2], count=self.positions)


@dataclass(frozen=True)
class OnnxNetwork:
    """An imported model: ``layers`` (the GEMM layers in graph order), ``nodes`` (every node, in order),
    ``skipped`` (``(node name, op, note)`` of every node without a GEMM), ``input``/``input_shape`` (the graph input
    that is not an initializer), ``output`` and ``shapes`` (every inferred tensor shape, batch 1 when symbolic)."""
    path: str
    layers: list
    nodes: list
    skipped: list
    input: str
    input_shape: tuple
    output: str
    shapes: dict = field(default_factory=dict)

    def gemm_jobs(self) -> list:
        """Every layer's GEMMs in order: ``[(name, (M, K, N)), ...]``."""
        return [job for layer in self.layers for job in layer.gemm_jobs()]


def _dims(shape_proto, tensor, where):
    dims = []
    for i, d in enumerate(shape_proto.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif i == 0:
            dims.append(1)          # a symbolic batch: one inference
        else:
            raise ValueError(f"{where}: tensor {tensor!r} has a symbolic dimension {i} ({d.dim_param or '?'}): "
                             "allowed fixed sizes except the batch (export with a fixed input size)")
    return tuple(dims)


def _attrs(onnx, node):
    out = {}
    for a in node.attribute:
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list):
            value = [v.decode() if isinstance(v, bytes) else v for v in value]
        out[a.name] = value
    return out


def _symmetric(pads, where):
    half = len(pads) // 2
    if list(pads[:half]) != list(pads[half:]):
        raise ValueError(f"{where}: asymmetric padding {list(pads)}: allowed symmetric padding (begin = end)")
    if len(set(pads[:half])) > 1:
        raise ValueError(f"{where}: padding {list(pads)} differs between height and width: allowed one padding")
    return int(pads[0]) if pads else 0


def _conv(node, attrs, w, bias, in_shape, out_shape, where):
    if w.ndim != 4:
        raise ValueError(f"{where}: weights of shape {w.shape}: allowed 2-D convolutions (OIHW weights)")
    if len(in_shape) != 4:
        raise ValueError(f"{where}: input of shape {in_shape}: allowed [N, C, H, W]")
    batch, c_in, h, wd = in_shape
    c_out, per_group, kh, kw = w.shape
    if kh != kw:
        raise ValueError(f"{where}: {kh}×{kw} kernel: allowed square kernels")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise ValueError(f"{where}: dilations {attrs['dilations']}: allowed 1 (no dilation)")
    strides = attrs.get("strides", [1, 1])
    if len(set(strides)) != 1:
        raise ValueError(f"{where}: strides {strides}: allowed the same stride along height and width")
    stride = int(strides[0])
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = max(0, (-(-h // stride) - 1) * stride + kh - h)
        pads = [total // 2, total // 2, total - total // 2, total - total // 2]
        if auto == "SAME_LOWER":
            pads = [pads[2], pads[3], pads[0], pads[1]]
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = attrs.get("pads", [0, 0, 0, 0])
    padding = _symmetric(pads, where)
    group = int(attrs.get("group", 1))
    if group == 1:
        kind = "conv"
    elif group == c_in == c_out and per_group == 1:
        kind = "dw"
    else:
        raise ValueError(f"{where}: grouped convolution (group = {group}, C_in = {c_in}, C_out = {c_out}) is not "
                         "supported: allowed group = 1 or depthwise (group = C_in = C_out)")
    if kind == "conv" and per_group != c_in:
        raise ValueError(f"{where}: weights {w.shape} expect {per_group} input channels, the input has {c_in}")
    h_out, w_out = conv_output_size(h, wd, kh, kw, stride, padding)
    if tuple(out_shape[2:]) != (h_out, w_out):
        raise ValueError(f"{where}: shape inference gives {out_shape}, the im2col lowering {h_out}×{w_out}")
    gemm = ((batch * h_out * w_out, kh * kw, 1) if kind == "dw" else
            conv_gemm_shape(h, wd, c_in, c_out, kh, kw, stride, padding, batch))
    return dict(kind=kind, weights=w, bias=bias, stride=stride, padding=padding, gemm=tuple(int(v) for v in gemm),
                positions=h_out * w_out)


def _fc(node, attrs, w, bias, in_shape, where, transposed):
    """Gemm/MatMul: ``w`` in ``[out, in]`` (``transposed``: the ONNX tensor already was)."""
    if node.op_type == "Gemm" and attrs.get("transA", 0):
        raise ValueError(f"{where}: transA = 1 (the activations transposed) is not supported: allowed transA = 0")
    if w.ndim != 2:
        raise ValueError(f"{where}: weight of shape {w.shape}: allowed a 2-D constant weight")
    w = w if transposed else w.T
    if float(attrs.get("alpha", 1.0)) != 1.0:
        w = w * np.float32(attrs["alpha"])            # folded into the weights before quantization
    if in_shape[-1] != w.shape[1]:
        raise ValueError(f"{where}: input {in_shape} has {in_shape[-1]} features, the weight {w.shape[1]}")
    m = int(np.prod(in_shape[:-1])) if len(in_shape) > 1 else 1
    batch = in_shape[0] if len(in_shape) >= 2 else 1
    return dict(kind="fc", weights=w, bias=bias, stride=1, padding=0, gemm=(m, int(w.shape[1]), int(w.shape[0])),
                positions=max(1, m // max(batch, 1)))


def import_onnx(path) -> OnnxNetwork:
    """Import an ONNX model file (see the module docstring).

    Raises
    ------
    ValueError
        An unreadable or malformed file, a model the ONNX checker or shape inference rejects, an unsupported
        operator (named, with its node), a Conv/Gemm/MatMul this lowering cannot take (named, with the reason), no
        Conv/Gemm/MatMul at all.
    TypeError
        ``path`` is not a path.
    """
    path = checks.check_readable_file("--onnx", path)
    onnx = _onnx()
    from onnx import numpy_helper, shape_inference

    try:
        model = onnx.load(str(path))
    except Exception as error:      # protobuf's DecodeError and friends: the file is not an ONNX model
        raise ValueError(f"--onnx {path}: not a readable ONNX model ({type(error).__name__}: "
                         f"{' '.join(str(error).split())[:200]})") from None
    try:
        onnx.checker.check_model(model)
        model = shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as error:
        raise ValueError(f"--onnx {path}: invalid model: {' '.join(str(error).split())[:300]}") from None
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    shapes = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
            shapes[info.name] = info.type.tensor_type.shape
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ValueError(f"--onnx {path}: {len(inputs)} graph inputs {[i.name for i in inputs]}: allowed one input "
                         "tensor (weights as initializers)")
    nodes, layers, skipped = [], [], []
    for index, node in enumerate(graph.node):
        name = node.name or (node.output[0] if node.output else f"node{index}")
        where = f"--onnx {path}: node {name!r} ({node.op_type})"
        attrs = _attrs(onnx, node)
        nodes.append(OnnxNode(node.op_type, name, tuple(node.input), tuple(node.output), attrs))
        if node.op_type == "Constant" and "value" in attrs:
            consts[node.output[0]] = numpy_helper.to_array(attrs["value"]) if not isinstance(
                attrs["value"], np.ndarray) else attrs["value"]
        if node.op_type in SKIPPED:
            skipped.append((name, node.op_type, SKIPPED[node.op_type]))
            continue
        if node.op_type not in GEMM_OPS:
            raise ValueError(f"{where}: unsupported operator {node.op_type!r}: allowed {', '.join(GEMM_OPS)} "
                             f"(mapped) and {', '.join(sorted(SKIPPED))} (skipped)")
        x, weight_name = node.input[0], node.input[1]
        if weight_name not in consts:
            raise ValueError(f"{where}: its weight {weight_name!r} is not a constant (an initializer): allowed "
                             "a product of activations and constant weights")
        if x in consts:
            raise ValueError(f"{where}: its input {x!r} is a constant: allowed an activation tensor")
        for tensor in (x, node.output[0]):
            if tensor not in shapes:
                raise ValueError(f"{where}: shape inference gives no shape for {tensor!r}: allowed models whose "
                                 "shapes are fixed (export with a fixed input size)")
        in_shape, out_shape = _dims(shapes[x], x, where), _dims(shapes[node.output[0]], node.output[0], where)
        w = np.asarray(consts[weight_name])
        if w.dtype.kind not in "fiu":
            raise ValueError(f"{where}: weight dtype {w.dtype}: allowed float or integer weights")
        if w.dtype.kind == "f" and not np.isfinite(w).all():
            raise ValueError(f"{where}: weight {weight_name!r} holds NaN or infinite values: allowed finite weights")
        bias = None
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in consts:
                raise ValueError(f"{where}: its bias {node.input[2]!r} is not a constant: allowed an initializer")
            bias = np.asarray(consts[node.input[2]])
        if node.op_type == "Conv":
            info = _conv(node, attrs, w, bias, in_shape, out_shape, where)
        else:
            info = _fc(node, attrs, w, bias, in_shape, where,
                       transposed=node.op_type == "Gemm" and bool(attrs.get("transB", 0)))
        layers.append(OnnxLayer(name=name, op=node.op_type, input=x, output=node.output[0], in_shape=in_shape,
                                out_shape=out_shape, **info))
    if not layers:
        raise ValueError(f"--onnx {path}: no Conv, Gemm or MatMul node: nothing to map")
    names = [layer.name for layer in layers]
    if len(set(names)) != len(names):      # unique names: the report rows and jobs are named by them
        layers = [replace(layer, name=f"{layer.name}#{i}") for i, layer in enumerate(layers)]
    in_shape = _dims(shapes[inputs[0].name], inputs[0].name, f"--onnx {path}") if inputs[0].name in shapes else ()
    fixed = {}
    for tensor, shape in shapes.items():
        with contextlib.suppress(ValueError):          # a symbolic inner dimension: not needed unless used above
            fixed[tensor] = _dims(shape, tensor, f"--onnx {path}")
    return OnnxNetwork(path=str(Path(path)), layers=layers, nodes=nodes, skipped=skipped, input=inputs[0].name,
                       input_shape=in_shape, output=graph.output[0].name if graph.output else "", shapes=fixed)
