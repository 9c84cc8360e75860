"""``network_from_onnx``: an imported ONNX model (:class:`gen.compiler.onnx_import.OnnxNetwork`) as a float
:class:`gen.network.spec.Network`, the inverse of :func:`gen.network.onnx_export.export_onnx`.

The graph must be one chain of the nodes the spec expresses, each taking the previous node's output:

- ``Conv`` (1 group → ``conv``; depthwise, ``group = C_in = C_out`` → ``depthwise``), ``Gemm`` and ``MatMul``
  (→ ``fc``, weights ``[out, in]``, ``alpha`` folded) with no bias or an all-zero one (the engines compute
  ``x · W`` only);
- ``Relu`` directly after one of them (→ that layer's ``relu``; a weighted layer without one keeps signed outputs,
  the logits);
- ``MaxPool`` with a square kernel equal to its stride, no padding, ``ceil_mode = 0`` (→ ``maxpool``);
- ``Flatten`` (``axis = 1``, the ``fc`` layer's own flattening in ``(c, y, x)`` order), ``Identity`` and
  ``Dropout`` (no-ops at inference).

Anything else (a bias, another operator, a branch) is a ``ValueError`` naming the node and what is allowed. Layers
are named after their nodes. The importer's checks (square kernels, symmetric padding, constant weights) apply
first.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np

from hw import checks
from gen.compiler.onnx_import import OnnxNetwork
from gen.network.spec import Layer, Network

__all__ = ["NO_OPS", "network_from_onnx"]

# operators that leave the data as the spec sees it (Flatten: fc flattens its input itself)
NO_OPS = ("Flatten", "Identity", "Dropout")
_ALLOWED = ("allowed a chain of Conv/Gemm/MatMul (no bias), Relu directly after them, MaxPool (kernel = stride, "
            f"no padding), {', '.join(NO_OPS)}")


def network_from_onnx(net: OnnxNetwork, *, name: str | None = None, dataset: str = "") -> Network:
    """The float :class:`~gen.network.spec.Network` of an imported ONNX model.

    Parameters
    ----------
    net : OnnxNetwork
        From :func:`gen.compiler.onnx_import.import_onnx` (one input ``[N, C, H, W]``).
    name : str or None
        The network's name; None: the model file's stem.
    dataset : str
        Recorded in the network.

    Returns
    -------
    Network
        Float weights (float64) in the spec's layouts, one layer per Conv/Gemm/MatMul/MaxPool node.

    Raises
    ------
    ValueError
        A node the spec cannot express (named, with its operator and what is allowed), a nonzero bias, a graph
        that is not one chain, an input that is not ``[N, C, H, W]``.
    """
    checks.check_instance("net", net, OnnxNetwork)
    where = f"--onnx {net.path}"
    if len(net.input_shape) != 4:
        raise ValueError(f"{where}: input {net.input!r} has shape {list(net.input_shape)}: allowed [N, C, H, W]")
    weighted = {layer.output: layer for layer in net.layers}
    layers, current, last = [], net.input, None
    for node in net.nodes:
        if node.op == "Constant" and not node.inputs:
            continue                                 # a weight held in a Constant node (read by the importer)
        what = f"{where}: node {node.name!r} ({node.op})"
        data = weighted[node.outputs[0]].input if node.outputs[0] in weighted else node.inputs[0]
        if data != current:
            raise ValueError(f"{what} takes {data!r}, not the previous node's output {current!r}: {_ALLOWED}")
        if node.outputs[0] in weighted:
            layer = weighted[node.outputs[0]]
            if layer.bias is not None and np.any(layer.bias):
                raise ValueError(f"{what} has a nonzero bias: {_ALLOWED} (the engines compute x · W only)")
            kind = {"dw": "depthwise", "conv": "conv", "fc": "fc"}[layer.kind]
            extra = {"stride": layer.stride, "padding": layer.padding} if kind != "fc" else {}
            layers.append(Layer(kind, node.name, weight=np.asarray(layer.weights, np.float64), relu=False, **extra))
        elif node.op == "Relu":
            if last is None or last not in weighted or layers[-1].relu:
                raise ValueError(f"{what} does not follow a Conv/Gemm/MatMul directly: {_ALLOWED}")
            layers[-1] = replace(layers[-1], relu=True)
        elif node.op == "MaxPool":
            a = node.attrs
            k = list(a.get("kernel_shape", []))
            if (len(k) != 2 or k[0] != k[1] or list(a.get("strides", [1, 1])) != k or any(a.get("pads", [0]))
                    or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1]))):
                raise ValueError(f"{what} has kernel {k}, strides {a.get('strides')}, pads {a.get('pads')}: "
                                 "allowed a square kernel equal to its strides, no padding, ceil_mode 0")
            layers.append(Layer("maxpool", node.name, relu=False, size=int(k[0])))
        elif node.op == "Flatten" and node.attrs.get("axis", 1) != 1:
            raise ValueError(f"{what} has axis {node.attrs['axis']}: allowed axis 1")
        elif node.op not in NO_OPS:
            raise ValueError(f"{what}: not expressible as a network spec layer: {_ALLOWED}")
        current, last = node.outputs[0], node.outputs[0]
    if current != net.output:
        raise ValueError(f"{where}: the output {net.output!r} is not the end of the chain ({current!r}): {_ALLOWED}")
    if not any(layer.has_weights for layer in layers):
        raise ValueError(f"{where}: no Conv/Gemm/MatMul layer: {_ALLOWED}")
    shape = net.shapes.get(net.output)
    classes = int(np.prod(shape[1:])) if shape else layers[-1].out_channels
    return Network(name or Path(net.path).stem, tuple(net.input_shape[1:]), tuple(layers), classes=classes,
                   dataset=dataset)
