"""The one description of a network that every path runs: a list of layer specs (numpy only).

A :class:`Network` is an input shape ``(C, H, W)`` and an ordered tuple of :class:`Layer` specs:

- ``conv``: weights OIHW ``[C_out, C_in, kh, kw]``, ``stride``, ``padding``;
- ``depthwise``: weights ``[C, 1, kh, kw]`` (one kernel per channel), ``stride``, ``padding``;
- ``fc``: weights ``[out, in]``; its input is the previous output flattened in ``(c, y, x)`` order;
- ``maxpool``: a ``size × size`` window with stride ``size`` (no weights, no requantization: a host operation).

A *float* network holds float weights (what :mod:`gen.network.train` trains, what :func:`gen.network.onnx_export`
exports); an *int8* network holds integer weights in ``-127 … 127`` with a per-output-channel float ``scale`` (the
float value of one unit of the layer's integer sum) and a per-layer requantization ``shift`` (``0 … 31``), and a
float ``input_scale`` (one input unit in image units). Between int8 layers the GEMM engine's output stage is applied
(:func:`sim.network.golden.output_stage`). Nothing here depends on where the network came from, so an ONNX
importer can build one; :func:`load` / :func:`save` read and write it as one ``.npz``.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hw import checks
from hw.formats.conv import conv_output_size

__all__ = ["KINDS", "WEIGHT_BITS", "ACT_BITS", "MAX_SHIFT", "Layer", "Network", "load", "save", "DATA_DIR",
           "SHIPPED", "TEST_ACTIVATIONS"]

KINDS = ("conv", "depthwise", "fc", "maxpool")
WEIGHT_BITS = 8          # int8 weights (symmetric: -127 … 127)
ACT_BITS = 8             # int8 activations between layers
MAX_SHIFT = 31           # largest requantization shift (the GEMM engine's shift field allows acc_bits - 1)
DATA_DIR = Path(__file__).resolve().parent / "data"
# the shipped networks: float weights and their int8 version (python -m sim.network.train regenerates them)
SHIPPED = {"digits-float": DATA_DIR / "digits_cnn_float.npz", "digits-int8": DATA_DIR / "digits_cnn_int8.npz"}
# the int8 network's activations of the 450 test images (sim.network.golden.save_activations), not a network
TEST_ACTIVATIONS = DATA_DIR / "digits_cnn_test_acts.npz"


@dataclass(frozen=True, eq=False)
class Layer:
    """One layer spec.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    name : str
        Unique within the network.
    weight : ndarray or None
        Float (float network) or integer in ``-127 … 127`` (int8 network); layouts in the module docstring;
        ``None`` for ``maxpool``.
    stride, padding : int
        ``conv``/``depthwise`` only (``stride ≥ 1``, ``padding ≥ 0``).
    relu : bool
        ReLU after the layer (before requantization). A layer without ReLU keeps signed outputs (the logits).
    shift : int or None
        int8 networks: the requantization right shift ``0 … 31`` of this layer's sums.
    scale : ndarray of float64, shape (out channels,), or None
        int8 networks: per output channel, the float value of one unit of the layer's integer sum (the weight
        scale times the input's scale, see :func:`sim.network.golden.quantize`).
    size : int
        ``maxpool`` window (and stride).
    """

    kind: str
    name: str
    weight: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    relu: bool = True
    shift: int | None = None
    scale: np.ndarray | None = None
    size: int = 2

    @property
    def has_weights(self) -> bool:
        return self.kind != "maxpool"

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])


@dataclass(frozen=True, eq=False)
class Network:
    """An ordered list of layer specs and the input they take.

    Parameters
    ----------
    name : str
        What plots and tables call it.
    input_shape : tuple of int
        ``(C, H, W)`` of one image.
    layers : tuple of Layer
    input_scale : float
        int8 networks: image value of one input unit (``x_int = clip(rint(image / input_scale), -127, 127)``).
    classes : int
        Outputs of the last layer.
    dataset : str
        The data set it was trained on.

    Raises
    ------
    TypeError, ValueError
        A one-line message naming the layer and what is wrong: shapes that do not chain, a bad kind, stride,
        padding or shift, weights out of the int8 range, a mix of float and integer weights.
    """

    name: str
    input_shape: tuple
    layers: tuple
    input_scale: float = 1.0
    classes: int = 10
    dataset: str = ""
    shapes: tuple = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "input_shape", tuple(
            checks.check_int(f"input_shape[{i}]", v, 1, 4096) for i, v in enumerate(self.input_shape)))
        if len(self.input_shape) != 3:
            raise ValueError(f"input_shape = {self.input_shape} has {len(self.input_shape)} entries: allowed (C, H, W)")
        if not self.layers:
            raise ValueError("layers = () is empty: allowed at least one layer")
        checks.check_float("input_scale", self.input_scale, 0.0)
        names = [getattr(layer, "name", None) for layer in self.layers]
        shapes = [self.input_shape]
        kinds = set()
        for i, layer in enumerate(self.layers):
            checks.check_instance(f"layers[{i}]", layer, Layer)
            if names.count(layer.name) > 1:
                raise ValueError(f"layers[{i}].name = {layer.name!r} is not unique: allowed one layer per name")
            shapes.append(_out_shape(layer, shapes[-1]))
            if layer.has_weights:
                kinds.add(np.issubdtype(layer.weight.dtype, np.integer))
        if len(kinds) > 1:
            raise ValueError(f"network {self.name!r} mixes float and integer weights: allowed one or the other")
        if self.quantized:
            for layer in self.layers:
                if layer.has_weights:
                    checks.check_int_array(f"layer {layer.name!r} weight", layer.weight, lo=-127, hi=127)
                    checks.check_int(f"layer {layer.name!r} shift", layer.shift, 0, MAX_SHIFT)
        last = shapes[-1]
        if int(np.prod(last)) != self.classes:
            raise ValueError(f"classes = {self.classes} but the last layer has {int(np.prod(last))} outputs "
                             f"{last}: allowed {int(np.prod(last))}")
        object.__setattr__(self, "shapes", tuple(shapes))

    @property
    def quantized(self) -> bool:
        """True for an int8 network (integer weights)."""
        return any(np.issubdtype(l.weight.dtype, np.integer) for l in self.layers if l.has_weights)

    @property
    def weighted(self) -> tuple:
        """The layers with weights (conv, depthwise, fc), in order."""
        return tuple(l for l in self.layers if l.has_weights)

    def weights(self) -> dict:
        """``{layer name: weight}`` of the weighted layers."""
        return {l.name: l.weight for l in self.weighted}

    def with_weights(self, weights: dict, **changes) -> "Network":
        """A copy with the weights of ``weights`` (by layer name) replaced; ``changes`` go to the network."""
        layers = tuple(replace(l, weight=np.asarray(weights[l.name])) if l.name in weights else l for l in self.layers)
        return replace(self, layers=layers, **changes)

    def check_images(self, images) -> np.ndarray:
        """``images`` as a float64 array ``(n, C, H, W)`` of this network's input shape; a ``ValueError`` naming the
        dtype or shape otherwise."""
        kind = getattr(np.asarray(images), "dtype", np.dtype(object)).kind
        if kind not in "iuf":
            raise ValueError(f"images dtype {np.asarray(images).dtype} is not numeric: allowed a float or integer "
                             "array (n, C, H, W)")
        images = checks.check_float_array("images", images)
        if images.ndim != 4 or images.shape[1:] != self.input_shape:
            raise ValueError(f"images shape {images.shape} does not match the network input: allowed "
                             f"(n, {', '.join(map(str, self.input_shape))})")
        return images

    def describe(self) -> str:
        """One line per layer: kind, name, weight shape, output shape."""
        out = [f"{self.name}: input {self.input_shape}"]
        for layer, shape in zip(self.layers, self.shapes[1:]):
            w = "" if layer.weight is None else f" w{tuple(layer.weight.shape)}"
            extra = f" s{layer.stride} p{layer.padding}" if layer.kind in ("conv", "depthwise") else ""
            out.append(f"  {layer.kind:9s} {layer.name:6s}{w}{extra}{' relu' if layer.relu else ''} → {shape}")
        return "\n".join(out)


def _out_shape(layer, shape):
    c, h, w = shape
    name = f"layer {layer.name!r}"
    checks.check_choice(f"{name} kind", layer.kind, KINDS)
    if layer.kind == "maxpool":
        size = checks.check_int(f"{name} size", layer.size, 1, 64)
        if h < size or w < size:
            raise ValueError(f"{name} size = {size} is larger than its input {shape}: allowed ≤ {min(h, w)}")
        return (c, h // size, w // size)
    weight = layer.weight
    if not isinstance(weight, np.ndarray) or not (np.issubdtype(weight.dtype, np.integer)
                                                  or np.issubdtype(weight.dtype, np.floating)):
        raise TypeError(f"{name} weight = {type(weight).__name__} is not a numeric numpy array: allowed an integer "
                        "or float ndarray")
    if layer.kind == "fc":
        if weight.ndim != 2 or weight.shape[1] != c * h * w:
            raise ValueError(f"{name} weight shape {weight.shape} does not chain with its input {shape}: allowed "
                             f"[out, {c * h * w}]")
        return (weight.shape[0], 1, 1)
    stride = checks.check_int(f"{name} stride", layer.stride, 1, 16)
    padding = checks.check_int(f"{name} padding", layer.padding, 0, 16)
    if weight.ndim != 4:
        raise ValueError(f"{name} weight shape {weight.shape} has {weight.ndim} dims: allowed 4 (OIHW)")
    want = 1 if layer.kind == "depthwise" else c
    if weight.shape[1] != want or (layer.kind == "depthwise" and weight.shape[0] != c):
        allowed = f"[{c}, 1, kh, kw]" if layer.kind == "depthwise" else f"[out, {c}, kh, kw]"
        raise ValueError(f"{name} weight shape {weight.shape} does not chain with its input {shape}: allowed {allowed}")
    kh, kw = weight.shape[2:]
    if kh > h + 2 * padding or kw > w + 2 * padding:
        raise ValueError(f"{name} kernel {kh}×{kw} is larger than its padded input {shape}: allowed ≤ "
                         f"{h + 2 * padding}×{w + 2 * padding}")
    ho, wo = conv_output_size(h, w, kh, kw, stride, padding)
    return (weight.shape[0], ho, wo)


def save(network: Network, path) -> Path:
    """Write ``network`` as one ``.npz`` (layer specs as arrays); :func:`load` reads it back."""
    path = Path(path)
    entries = {"name": np.array(network.name), "dataset": np.array(network.dataset),
               "input_shape": np.array(network.input_shape), "input_scale": np.array(network.input_scale),
               "classes": np.array(network.classes), "layers": np.array([l.name for l in network.layers])}
    for l in network.layers:
        p = f"{l.name}."
        entries[p + "kind"] = np.array(l.kind)
        entries[p + "geometry"] = np.array([l.stride, l.padding, int(l.relu), l.size])
        if l.weight is not None:
            entries[p + "weight"] = l.weight.astype(np.int8) if np.issubdtype(l.weight.dtype, np.integer) \
                else l.weight.astype(np.float32)
        if l.shift is not None:
            entries[p + "shift"] = np.array(l.shift)
        if l.scale is not None:
            entries[p + "scale"] = np.asarray(l.scale, np.float64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **entries)
    return path


def load(path) -> Network:
    """Read a network written by :func:`save`; ``path`` may name a shipped one (:data:`SHIPPED` keys).

    Integer weights come back as int64, float weights as float64.
    """
    if isinstance(path, str) and path in SHIPPED:
        path = SHIPPED[path]
    path = checks.check_readable_file("network", path)
    with np.load(path) as d:
        layers = []
        for name in d["layers"].tolist():
            p = f"{name}."
            stride, padding, relu, size = (int(v) for v in d[p + "geometry"])
            w = d[p + "weight"] if p + "weight" in d else None
            if w is not None:
                w = w.astype(np.int64) if np.issubdtype(w.dtype, np.integer) else w.astype(np.float64)
            layers.append(Layer(kind=str(d[p + "kind"]), name=name, weight=w, stride=stride, padding=padding,
                                relu=bool(relu), size=size,
                                shift=int(d[p + "shift"]) if p + "shift" in d else None,
                                scale=d[p + "scale"] if p + "scale" in d else None))
        return Network(name=str(d["name"]), input_shape=tuple(int(v) for v in d["input_shape"]), layers=layers,
                       input_scale=float(d["input_scale"]), classes=int(d["classes"]), dataset=str(d["dataset"]))
