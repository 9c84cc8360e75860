"""``export_onnx``: a float :class:`gen.network.spec.Network` as an ONNX model (``onnx.helper``, no PyTorch).

Layers map one to one: ``conv`` → ``Conv`` (no bias; ``group = C`` for ``depthwise``), ``maxpool`` →
``MaxPool`` (kernel = stride = size), ``fc`` → ``Flatten`` + ``Gemm`` (``transB = 1``), each ReLU → ``Relu``.
Input ``"input"`` ``[N, C, H, W]`` float32 (image units), output ``"logits"`` ``[N, classes]``; initializers are
named after the layers (``<name>.weight``). ``onnx`` is the optional extra ``net``.
"""

from pathlib import Path

import numpy as np

from hw import checks
from gen.network.spec import Network

__all__ = ["OPSET", "export_onnx", "onnx_model"]

OPSET = 17


def onnx_model(network: Network):
    """The ``onnx.ModelProto`` of a float ``network`` (checked with ``onnx.checker.check_model``)."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:
        raise OSError(f"ONNX export needs onnx: pip install 'sparsegen[net]' ({e})") from None
    checks.check_instance("network", network, Network)
    if network.quantized:
        raise ValueError(f"network {network.name!r} has integer weights: allowed a float network (export the "
                         "float weights it was quantized from)")
    nodes, inits = [], []
    x = "input"
    for layer in network.layers:
        y = f"{layer.name}.out"
        if layer.kind == "maxpool":
            nodes.append(helper.make_node("MaxPool", [x], [y], name=layer.name,
                                          kernel_shape=[layer.size, layer.size], strides=[layer.size, layer.size]))
        else:
            w = f"{layer.name}.weight"
            inits.append(numpy_helper.from_array(np.asarray(layer.weight, np.float32), w))
            if layer.kind == "fc":
                flat = f"{layer.name}.flat"
                nodes.append(helper.make_node("Flatten", [x], [flat], name=f"{layer.name}.flatten", axis=1))
                nodes.append(helper.make_node("Gemm", [flat, w], [y], name=layer.name, transB=1))
            else:
                kh, kw = layer.weight.shape[2:]
                p = layer.padding
                nodes.append(helper.make_node("Conv", [x, w], [y], name=layer.name, kernel_shape=[kh, kw],
                                              strides=[layer.stride] * 2, pads=[p, p, p, p],
                                              group=layer.weight.shape[0] if layer.kind == "depthwise" else 1))
        if layer.relu:
            nodes.append(helper.make_node("Relu", [y], [f"{layer.name}.relu"], name=f"{layer.name}.relu"))
            y = f"{layer.name}.relu"
        x = y
    if network.layers[-1].kind == "fc":
        nodes.append(helper.make_node("Identity", [x], ["logits"], name="logits"))
    else:
        nodes.append(helper.make_node("Flatten", [x], ["logits"], name="logits", axis=1))
    graph = helper.make_graph(
        nodes, network.name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *network.input_shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", network.classes])], initializer=inits,
        doc_string=f"{network.name}, trained on {network.dataset} by sparsegen")
    model = helper.make_model(graph, producer_name="sparsegen", opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def export_onnx(network: Network, path) -> Path:
    """Write ``network`` (float) as an ONNX file; returns the path."""
    import onnx

    model = onnx_model(network)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
