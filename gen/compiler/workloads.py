"""Weights for the networks: synthetic (seeded), or a user ``.npz``; and a layer's prune → quantize → matrices.

Synthetic weights (:func:`synthetic_weights`) follow a realistic shape of trained CNN weights: per output
channel a zero-mean Laplacian (heavier-tailed than a Gaussian, as trained weights are) with He-scaled standard
deviation ``sqrt(2 / fan_in)`` times a per-channel log-normal factor ``exp(N(0, 0.35²))`` (channels of trained
layers differ in scale). They are *not* trained weights: bit-level statistics after per-channel int8
quantization (most weights far below the channel maximum, so the high slices are mostly zero) are realistic,
accuracy is not measured. Seeded by ``(seed, layer index)``.

User weights (:func:`load_npz`), a ``.npz`` file or the name of one shipped in ``gen/compiler/data/``
(:func:`shipped_weights`: ``bars``, the project's trained toy CNN): one array per layer, named by the key — float (pruned and quantized here) or
integer (taken as already quantized, pruned only if a method is given). 4-D arrays are convs (OIHW), 2-D arrays
fully-connected ``[out, in]``. Optional scalar entries ``<name>.positions`` (output positions per inference,
default 1) and ``<name>.depthwise`` (1 for a depthwise conv ``[c, 1, k, k]``); ``<name>.scale`` entries
(quantization scales, as in the shipped ``gen/compiler/data/bars.npz``) are ignored.

Depthwise convolutions (:func:`layer_matrices`) are mapped as their exact im2col matrix, which is block-diagonal:
channel ``c`` reads only its own ``k²`` inputs. Channels are cut into chunks that fit one crossbar —
``min(xbar_rows // k², xbar_cols // columns_per_output)`` channels, at least one — and each chunk is its own
``(k²·chunk) × chunk`` matrix: the traditional diagonal placement, where the dense mapping stores the
off-diagonal zeros of a chunk and the sparse mappings drop them.
"""

import dataclasses
import os
import zipfile
from pathlib import Path

import numpy as np

from hw import checks

from gen.compiler.networks import Layer
from gen.compiler.prune import as_matrix, prune
from gen.compiler.quantize import quantize_symmetric, ternarize
from gen.compiler.sme import parse_sme, sme_quantize

__all__ = ["DATA_DIR", "shipped_weights", "weights_path", "synthetic_weights", "load_npz", "QUANTIZERS", "check_quant",
           "prepare_layer", "layer_matrices"]

QUANTIZERS = {"int8": 8, "int4": 4, "ternary": 2, "sme": 8}     # name → weight_bits of the integers
"""``sme`` takes parameters: ``sme:terms=T[,granularity=channel|layer]`` (:func:`gen.compiler.sme.parse_sme`)."""


def check_quant(quant) -> tuple[str, dict]:
    """A ``--quant`` spec → ``(name, params)``: a name of :data:`QUANTIZERS`, or ``sme:terms=T[,…]``."""
    allowed = ", ".join(q for q in QUANTIZERS if q != "sme") + " or sme:terms=T[,granularity=channel|layer]"
    checks.check_str("quant", quant, allowed)
    name = quant.partition(":")[0]
    if name == "sme":
        return name, parse_sme(quant)
    if quant not in QUANTIZERS:
        raise ValueError(f"--quant {quant!r} is not known: allowed {allowed}")
    return quant, {}


DATA_DIR = Path(__file__).with_name("data")             # package data: read, never written


def shipped_weights() -> dict[str, Path]:
    """The shipped weight files by name: ``{"bars": .../gen/compiler/data/bars.npz}``."""
    return {path.stem: path for path in sorted(DATA_DIR.glob("*.npz"))}


def weights_path(weights) -> Path:
    """The file a ``--weights`` value names: a shipped name (:func:`shipped_weights`) or a path to a ``.npz``."""
    shipped = shipped_weights()
    if str(weights) in shipped:
        return shipped[str(weights)]
    path = Path(weights)
    if not path.is_file():
        raise ValueError(f"--weights {weights}: no such file and no shipped weights of that name: "
                         f"allowed a .npz file or one of {', '.join(shipped)}")
    return path


def synthetic_weights(layer: Layer, *, seed: int = 0, index: int = 0) -> np.ndarray:
    """Seeded Laplacian weights of the layer's shape, float32 (see the module docstring)."""
    checks.check_instance("layer", layer, Layer)
    seed, index = checks.check_int("seed", seed, 0), checks.check_int("index", index, 0)
    rng = np.random.default_rng([seed, index])
    shape = layer.shape
    fan_in = int(np.prod(shape[1:]))
    std = np.sqrt(2.0 / fan_in) * np.exp(rng.normal(0.0, 0.35, size=shape[0]))
    b = std / np.sqrt(2.0)                                 # Laplace(0, b) has std b·√2
    w = rng.laplace(0.0, 1.0, size=shape).astype(np.float32)
    return w * b.reshape((-1,) + (1,) * (len(shape) - 1)).astype(np.float32)


def load_npz(path) -> list[tuple[Layer, np.ndarray]]:
    """Layers and weights of a user ``.npz`` file or a shipped name (see the module docstring); ``ValueError`` on a
    bad entry: an unreadable or empty file, a ``.npy`` array instead of an archive, an empty array, a NaN or
    infinite float weight, a bad ``.positions``/``.depthwise`` entry."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        checks.fail("--weights", path, f"is a {type(path).__name__}, not a path", "the path of an .npz file",
                    exc=TypeError)
    path = weights_path(path)
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:     # EOFError: an empty file
        raise ValueError(f"--weights {path}: cannot read: {' '.join(str(error).split()) or type(error).__name__}"
                         ) from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"--weights {path} holds a single array (a .npy file?): allowed an .npz archive of one "
                         "array per layer (numpy.savez)")
    extras = {key for key in arrays if key.endswith((".positions", ".depthwise", ".scale"))}
    layers = []
    for name, w in arrays.items():
        if name in extras:
            continue
        if w.dtype.kind not in "fiu":
            raise ValueError(f"--weights {path}: {name!r} has dtype {w.dtype}: allowed float or integer weights")
        if w.size == 0 and w.ndim in (2, 4):
            raise ValueError(f"--weights {path}: {name!r} has shape {w.shape}: allowed a non-empty layer "
                             "(at least one weight)")
        if w.dtype.kind == "f":
            checks.check_float_array(f"--weights {path}: {name}", w)     # NaN/Inf would quantize to nonsense
        positions = _scalar(path, f"{name}.positions", arrays.get(f"{name}.positions", 1), 1, None)
        depthwise = bool(_scalar(path, f"{name}.depthwise", arrays.get(f"{name}.depthwise", 0), 0, 1))
        if w.ndim == 2:
            layer = Layer(name, "fc", w.shape[1], w.shape[0])
        elif w.ndim == 4:
            if w.shape[2] != w.shape[3]:
                raise ValueError(f"--weights {path}: {name!r} has a {w.shape[2]}×{w.shape[3]} kernel: "
                                 "allowed square kernels")
            if depthwise and w.shape[1] != 1:
                raise ValueError(f"--weights {path}: {name!r} is marked depthwise but has shape {w.shape}: "
                                 "allowed [c, 1, k, k]")
            layer = Layer(name, "dw" if depthwise else "conv", w.shape[0] if depthwise else w.shape[1], w.shape[0],
                          w.shape[2], 1)
        else:
            raise ValueError(f"--weights {path}: {name!r} has shape {w.shape}: allowed 2-D [out, in] or 4-D OIHW")
        layers.append((dataclasses.replace(layer, count=positions), w))
    if not layers:
        raise ValueError(f"--weights {path}: no weight arrays")
    return layers


def _scalar(path, key, value, lo, hi):
    """A scalar integer entry of a user ``.npz`` (``<name>.positions``, ``<name>.depthwise``)."""
    value = np.asarray(value)
    if value.ndim:
        checks.fail(f"--weights {path}: {key}", value.tolist(), f"is an array of shape {value.shape}",
                    "a scalar integer", exc=TypeError)
    return checks.check_int(f"--weights {path}: {key}", value.item(), lo, hi)


def prepare_layer(layer: Layer, w, *, prune_name: str = "none", prune_params: dict | None = None,
                  quant: str = "int8", cell_bits: int = 2):
    """Prune (float or integer weights) and quantize (float weights only) one layer.

    ``quant`` is a name of :data:`QUANTIZERS` or an SME spec (``sme:terms=T``: :func:`gen.compiler.sme.sme_quantize`
    with slices of ``cell_bits``, its weight-error report under ``report["sme"]``).

    Returns
    -------
    q : ndarray of int64, the layer's weight shape
    report : dict
        ``prune`` (the pruner's report), ``quant``, ``weight_bits``, ``sparsity`` (zeros after quantization).
    """
    checks.check_instance("layer", layer, Layer)
    quant_name, quant_params = check_quant(quant)
    w = np.asarray(w)
    if w.dtype.kind == "f":
        checks.check_float_array(f"layer {layer.name!r}: w", w)
    mask, prune_report = prune(w, prune_name, prune_params or {})
    bits = QUANTIZERS[quant_name]
    extra = {}
    if w.dtype.kind == "f":
        wm = np.where(mask, w, 0).astype(np.float64)
        if quant_name == "sme":
            q, _, extra["sme"] = sme_quantize(wm, cell_bits=cell_bits, weight_bits=bits, **quant_params)
        else:
            q = (ternarize(wm)[0] if quant == "ternary" else quantize_symmetric(wm, bits)[0]).astype(np.int64)
    else:
        q = np.where(mask, w, 0).astype(np.int64)
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if q.size and (q.min() < lo or q.max() > hi):
            pos = tuple(int(i) for i in np.argwhere((q < lo) | (q > hi))[0])
            raise ValueError(f"layer {layer.name!r}: integer weight {list(pos)} = {int(q[pos])} does not fit "
                             f"--quant {quant} ({bits}-bit): allowed {lo} … {hi}")
    return q, {"prune": prune_report, "quant": quant, "weight_bits": bits,
               "sparsity": float(1 - np.count_nonzero(q) / q.size) if q.size else 0.0, **extra}


def layer_matrices(layer: Layer, q, *, xbar_rows: int, xbar_cols: int, per_output: int) -> list[np.ndarray]:
    """The ``K × N`` integer matrices a layer maps to: one, or one per channel chunk of a depthwise conv."""
    q = np.asarray(q)
    if layer.kind != "dw":
        return [as_matrix(q)]
    kk = layer.k * layer.k
    chunk = max(1, min(xbar_rows // kk, xbar_cols // per_output))
    kernels = q.reshape(q.shape[0], kk)
    out = []
    for c0 in range(0, q.shape[0], chunk):
        part = kernels[c0:c0 + chunk]
        m = np.zeros((kk * len(part), len(part)), dtype=q.dtype)
        for i, kernel in enumerate(part):
            m[i * kk:(i + 1) * kk, i] = kernel
        out.append(m)
    return out
