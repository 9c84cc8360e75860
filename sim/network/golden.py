"""The int8 network: quantization with calibrated shifts, and its golden model (the engines' arithmetic).

Integer semantics of an int8 :class:`gen.network.spec.Network` (what the GEMM engine and the RRAM tile compute):

- input: ``x = clip(rint(image / input_scale), -127, 127)`` (int8);
- ``conv`` / ``depthwise`` / ``fc``: the exact integer sum ``x · W`` of the layer's im2col GEMM
  (:func:`layer_gemm`: ``A = im2col(x)`` ``[positions, K]``, ``W`` ``[K, N]``, the one K order of
  :mod:`hw.formats.conv`; a depthwise layer is its block-diagonal im2col matrix);
- then the GEMM engine's output stage (:func:`output_stage`, :func:`sim.gemm.golden.requantize`):
  ``clamp((relu(s) + 2^(shift−1)) >> shift)`` to int8. A layer without ReLU (the logits) keeps its sign as
  ``stage(s) − stage(−s)``: on the engine, whose ReLU is part of the config, it runs as the GEMM ``[W, −W]`` and
  the host subtracts the two halves;
- ``maxpool``: the maximum of each window (a host operation: exact on int8).

:func:`quantize` builds it from a float network: per-output-channel symmetric int8 (or ternary) weights with the
scale of each input channel folded in (so one shift per layer suffices), shifts calibrated on training images.
The class of an image is the argmax of its *dequantized* logits, ``logits · scale`` of the last layer
(:func:`classes_of`, on the host): with per-channel scales one integer unit of a logit is worth a different amount
in each class.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np

from hw import checks
from hw.formats.conv import im2col, k_permutation, weights_to_gemm
from gen.compiler.quantize import quantize_symmetric, ternarize
from gen.network.spec import ACT_BITS, MAX_SHIFT, Network
from sim.gemm.golden import requantize

__all__ = ["input_ints", "layer_gemm", "output_stage", "int8_forward", "classes_of", "int8_predict", "quantize", "quantize_shifts", "QUANT_MODES", "GRANULARITIES",
           "save_activations"]

QUANT_MODES = ("int8", "ternary")
_TOP = (1 << (ACT_BITS - 1)) - 1


def input_ints(network: Network, images) -> np.ndarray:
    """Images ``(n, C, H, W)`` (float, image units) → int8 inputs as int64: ``clip(rint(image / input_scale))``."""
    images = network.check_images(images)
    return np.clip(np.rint(images / network.input_scale), -_TOP, _TOP).astype(np.int64)


def _check_quantized(network):
    checks.check_instance("network", network, Network)
    if not network.quantized:
        raise ValueError(f"network {network.name!r} has float weights: allowed an int8 network (sim.network.golden"
                         ".quantize)")


def layer_gemm(layer, x, *, k_order: str = "cij") -> tuple:
    """``(A, W)`` of one weighted layer on int inputs ``x`` ``(n, C, H, W)``: ``A`` ``[n·positions, K]``,
    ``W`` ``[K, N]`` (int64), rows ordered image by image, then output position ``(y, z)``; K in ``k_order``
    (:data:`hw.formats.conv.K_ORDERS`; an fc layer's input ``(C, H, W)`` is ordered like a ``C × H × W``
    kernel's taps: ``"ijc"`` puts the channels of one pixel together)."""
    n = len(x)
    w = np.asarray(layer.weight, np.int64)
    if layer.kind == "fc":
        perm = k_permutation(*x.shape[1:], k_order)
        return x.reshape(n, -1)[:, perm], w.T[perm]
    kh, kw = w.shape[2:]
    if layer.kind == "depthwise":
        c = w.shape[0]
        full = np.zeros((c, c, kh, kw), np.int64)
        full[np.arange(c), np.arange(c)] = w[:, 0]
        w = full
    A = np.concatenate([im2col(img, kh, kw, layer.stride, layer.padding, k_order=k_order) for img in x])
    return A, weights_to_gemm(w, k_order=k_order)


def output_stage(acc, layer) -> np.ndarray:
    """The GEMM engine's ReLU/requantization of a layer's sums (int8 out); signed for a layer without ReLU."""
    stage = requantize(acc, relu=True, out_bits=ACT_BITS, shift=layer.shift)
    if layer.relu:
        return stage
    return stage - requantize(-np.asarray(acc), relu=True, out_bits=ACT_BITS, shift=layer.shift)


def _pool(layer, x):
    n, c, h, w = x.shape
    s = layer.size
    return x[:, :, :h // s * s, :w // s * s].reshape(n, c, h // s, s, w // s, s).max(axis=(3, 5))


def _to_maps(layer, out, n, shape):
    """GEMM result rows ``[n·positions, N]`` → ``(n, N, H, W)``."""
    c, h, w = shape
    return out.reshape(n, h * w, c).transpose(0, 2, 1).reshape(n, c, h, w)


def int8_forward(network: Network, images=None, *, inputs=None, gemm=None, k_order: str = "cij") -> list:
    """Integer outputs of every layer, ``[(n, C, H, W) int64, ...]`` (after the output stage or the pool).

    ``images`` (float) are converted by :func:`input_ints`, or pass the int8 ``inputs`` directly. ``gemm(layer,
    A, W) -> sums`` replaces the exact numpy sums (the analog model does); default ``A @ W``. ``k_order``: the K
    order of the ``A``, ``W`` it is given (:func:`layer_gemm`; the exact sums do not depend on it).
    """
    _check_quantized(network)
    x = input_ints(network, images) if inputs is None else checks.check_int_array("inputs", inputs, ndim=4,
                                                                                  lo=-_TOP - 1, hi=_TOP)
    n = len(x)
    outs = []
    for layer, shape in zip(network.layers, network.shapes[1:]):
        if layer.kind == "maxpool":
            x = _pool(layer, x)
        else:
            A, W = layer_gemm(layer, x, k_order=k_order)
            acc = A @ W if gemm is None else gemm(layer, A, W)
            x = _to_maps(layer, output_stage(acc, layer), n, shape)
        outs.append(x)
    return outs


def classes_of(network: Network, logits) -> np.ndarray:
    """``(n,)`` classes from the integer logits ``(n, classes, ...)`` of an int8 network: the argmax of the
    dequantized logits ``logits · scale`` (the last layer's per-output-channel scale; a host operation, since the
    engines have no per-channel multiplier). Ties go to the lowest class."""
    _check_quantized(network)
    logits = np.asarray(logits)
    out = tuple(network.shapes[-1])
    if logits.ndim < 2 or np.prod(logits.shape[1:], dtype=np.int64) != np.prod(out) or logits.shape[1] != out[0]:
        raise ValueError(f"logits shape {logits.shape} does not match the network output: allowed (n, {out[0]}, ...) "
                         f"with {int(np.prod(out))} values per image")
    flat = logits.reshape(len(logits), -1)
    scale = np.asarray(network.weighted[-1].scale, np.float64)
    return (flat * np.repeat(scale, flat.shape[1] // len(scale))).argmax(axis=1)   # (c, y, x) order


def int8_predict(network: Network, images) -> np.ndarray:
    """``(n,)`` classes of the int8 golden (:func:`classes_of` its int8 logits)."""
    return classes_of(network, int8_forward(network, images)[-1])


def _fold(layer, weight, s_in):
    """Fold the input channels' scales ``s_in`` ``(C_in,)`` into a float weight."""
    if layer.kind == "fc":
        per_feature = np.repeat(s_in, weight.shape[1] // len(s_in))
        return weight * per_feature[None, :]
    if layer.kind == "depthwise":
        return weight * s_in[:, None, None, None]
    return weight * s_in[None, :, None, None]


def _next_scales(q, scale, shift):
    """The scales of a layer's output channels as the next layer's input: ``scale · 2^shift``, and 0 for a channel
    whose integer weights are all zero (pruned away): its output is always 0, so the weights reading it do not
    matter, and its quantizer's placeholder scale folded into them would set the next layer's int8 range."""
    dead = ~np.asarray(q).reshape(len(q), -1).any(axis=1)
    return np.where(dead, 0.0, np.asarray(scale, np.float64) * (1 << shift))


def _shift_for(acc, relu):
    top = int(np.max(np.maximum(acc, 0) if relu else np.abs(acc), initial=0))
    return min(MAX_SHIFT, max(0, top.bit_length() - (ACT_BITS - 1)))


GRANULARITIES = ("tensor", "channel")


def _quantizer(mode, granularity):
    checks.check_choice("mode", mode, QUANT_MODES)
    checks.check_choice("granularity", granularity, GRANULARITIES)
    base = ternarize if mode == "ternary" else (lambda w: quantize_symmetric(w, ACT_BITS))
    if granularity == "channel":
        return base

    def per_tensor(w):
        q, scale = base(w.reshape(1, -1))
        return q.reshape(w.shape), np.full(w.shape[0], scale[0])
    return per_tensor


def quantize(network: Network, calib_images, *, mode: str = "int8", granularity: str = "channel",
             labels=None, gemm=None, quantizer=None, k_order: str = "cij") -> Network:
    """The int8 network of a float ``network``, shifts calibrated on ``calib_images`` (float, image units).

    Weights: each layer's float weights times its input channels' scales (the image scale
    ``max(images) / 127`` for the first; ``scale · 2^shift`` of the producing channel after that), quantized
    symmetrically (:func:`gen.compiler.quantize.quantize_symmetric`, or :func:`~gen.compiler.quantize.ternarize`
    for ``mode="ternary"``) with one scale per output channel (``granularity="channel"``, the default) or one per
    layer (``"tensor"``). Per channel, the engine's one shift per layer leaves the channels of the next layer's
    input at different scales; they are folded into that layer's float weights before it is quantized, and the
    last layer's per-class scales are applied on the host (:func:`classes_of`). Zeros stay zeros, so a pruning
    mask survives. Shifts: the smallest that keeps the largest calibration sum in int8; with ``labels``, each
    layer's shift is then lowered by up to 3 where that raises the calibration accuracy (a few outliers
    saturate, the rest gain resolution), layer by layer. ``gemm`` (the hook of :func:`int8_forward`, e.g. the
    A-DBB engine's, :func:`sim.network.actsparse.adbb_gemm`) is what that accuracy is measured with (default the
    exact sums), given its operands in ``k_order``. The returned layers' ``scale`` is the float value of one unit of
    their integer sum, per output channel. ``quantizer`` (a callable ``w -> (q, scale)`` on the folded float
    weights, e.g. an SME quantizer, :func:`gen.compiler.sme.sme_quantize`) replaces ``mode`` and ``granularity``.
    """
    checks.check_instance("network", network, Network)
    quantizer = _quantizer(mode, granularity) if quantizer is None else quantizer
    if network.quantized:
        raise ValueError(f"network {network.name!r} is already quantized: allowed a float network")
    images = checks.check_float_array("calib_images", calib_images)
    input_scale = float(np.max(np.abs(images))) / _TOP or 1.0
    s_in = np.full(network.input_shape[0], input_scale)
    layers = []
    x = np.clip(np.rint(images / input_scale), -_TOP, _TOP).astype(np.int64)
    for layer, shape in zip(network.layers, network.shapes[1:]):
        if layer.kind == "maxpool":
            layers.append(layer)
            x = _pool(layer, x)
            continue
        q, scale = quantizer(_fold(layer, layer.weight, s_in))
        qlayer = replace(layer, weight=q.astype(np.int64), scale=scale, shift=0)
        A, W = layer_gemm(qlayer, x)
        acc = A @ W
        qlayer = replace(qlayer, shift=_shift_for(acc, layer.relu))
        layers.append(qlayer)
        x = _to_maps(qlayer, output_stage(acc, qlayer), len(x), shape)
        s_in = _next_scales(q, scale, qlayer.shift)
    qnet = Network(network.name, network.input_shape, layers, input_scale=input_scale, classes=network.classes,
                   dataset=network.dataset)
    if labels is None:
        return qnet
    labels = np.asarray(labels)

    def acc_of(net):
        return float((classes_of(net, int8_forward(net, images, gemm=gemm, k_order=k_order)[-1]) == labels).mean())
    best = acc_of(qnet)
    shifts = [l.shift for l in qnet.weighted]
    for i in range(len(shifts)):                    # coordinate search, layer by layer, lower shifts only
        for s in range(shifts[i] - 1, max(-1, shifts[i] - 4), -1):
            trial = shifts[:i] + [s] + shifts[i + 1:]
            cand = quantize_shifts(network, images, trial, mode, granularity, quantizer=quantizer)
            a = acc_of(cand)
            if a > best:
                qnet, best, shifts = cand, a, trial
    return qnet


def quantize_shifts(network: Network, calib_images, shifts, mode: str = "int8", granularity: str = "channel", *,
                    quantizer=None) -> Network:
    """:func:`quantize` with the given per-layer ``shifts`` (one per weighted layer) instead of calibrated ones."""
    images = checks.check_float_array("calib_images", calib_images)
    input_scale = float(np.max(np.abs(images))) / _TOP or 1.0
    quantizer = _quantizer(mode, granularity) if quantizer is None else quantizer
    s_in = np.full(network.input_shape[0], input_scale)
    layers, shifts = [], list(shifts)
    for layer in network.layers:
        if layer.kind == "maxpool":
            layers.append(layer)
            continue
        q, scale = quantizer(_fold(layer, layer.weight, s_in))
        shift = checks.check_int(f"layer {layer.name!r} shift", shifts.pop(0), 0, MAX_SHIFT)
        layers.append(replace(layer, weight=q.astype(np.int64), scale=scale, shift=shift))
        s_in = _next_scales(q, scale, shift)
    return Network(network.name, network.input_shape, layers, input_scale=input_scale, classes=network.classes,
                   dataset=network.dataset)


def save_activations(network: Network, images, labels, path) -> Path:
    """Write every layer's int8 input and output activations of ``images`` into one ``.npz`` (for activation-
    sparsity studies): ``input`` (the int8 images), ``<layer>`` ``(n, C, H, W)`` int8 per layer, ``labels``,
    ``layers`` (names in order), ``shifts``. Returns the path."""
    _check_quantized(network)
    outs = int8_forward(network, images)
    entries = {"input": input_ints(network, images).astype(np.int8), "labels": np.asarray(labels, np.int64),
               "layers": np.array([l.name for l in network.layers]),
               "shifts": np.array([-1 if l.shift is None else l.shift for l in network.layers])}
    for layer, out in zip(network.layers, outs):
        entries[layer.name] = out.astype(np.int8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **entries)
    return path
