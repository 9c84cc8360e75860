"""Quantization of float weights to integers the GEMM engine and the RRAM tile hold.

Both quantizers are per output channel (axis 0 of OIHW or ``[out, in]``) and return ``(q, scale)`` with
``w ≈ q · scale[:, None, ...]``; zeros stay zeros, so a pruning mask survives quantization (small weights may
round to further zeros).
"""

import numpy as np

from hw import checks

__all__ = ["quantize_symmetric", "ternarize", "dequantize"]


def _weights(w):
    w = checks.check_float_array("w", w)     # a NaN/Inf channel would quantize to nonsense
    if w.ndim < 1:
        raise ValueError("weights must have an output-channel axis")
    return w


def _per_channel(scale, w):
    return scale.reshape((-1,) + (1,) * (w.ndim - 1))


def quantize_symmetric(w, bits: int = 8):
    """Symmetric per-output-channel quantization to ``bits``-bit two's complement.

    ``scale[o] = max|w[o]| / (2**(bits-1) - 1)`` (1.0 for an all-zero channel) and
    ``q = clip(round_half_even(w / scale), -(2**(bits-1) - 1), 2**(bits-1) - 1)``: the code ``-2**(bits-1)`` is
    never used, so ``|w - q·scale| <= scale / 2`` everywhere.

    Returns
    -------
    q : ndarray of int8 (bits <= 8) or int16, same shape as ``w``
    scale : ndarray of float64, shape (O,)
    """
    bits = checks.check_int("quantization bits", bits, 2, 16)
    w = _weights(w)
    qmax = (1 << (bits - 1)) - 1
    peak = np.abs(w).reshape(w.shape[0], -1).max(axis=1) if w.size else np.zeros(w.shape[0])
    scale = np.where(peak > 0, peak / qmax, 1.0)
    q = np.clip(np.rint(w / _per_channel(scale, w)), -qmax, qmax)
    return q.astype(np.int8 if bits <= 8 else np.int16), scale


def ternarize(w, threshold: float | None = None):
    """Ternary weights ``{-1, 0, +1}`` per output channel (TWN-style).

    ``threshold`` is a fraction of the channel's mean ``|w|``: weights with ``|w| > threshold · mean|w|`` become
    ``sign(w)`` (default 0.7, Li & Liu's TWN rule). ``scale[o]`` is the mean ``|w|`` of the channel's surviving
    weights (1.0 when none survive), the L2-optimal scale for the chosen support.

    Returns
    -------
    q : ndarray of int8 in {-1, 0, 1}, same shape as ``w``
    scale : ndarray of float64, shape (O,)
    """
    if threshold is None:
        threshold = 0.7
    threshold = checks.check_float("ternary threshold", threshold, 0.0, allowed="a finite number >= 0")
    w = _weights(w)
    flat = np.abs(w).reshape(w.shape[0], -1)
    mean = flat.mean(axis=1) if flat.shape[1] else np.zeros(w.shape[0])
    keep = flat > (threshold * mean)[:, None]
    kept = keep.sum(axis=1)
    scale = np.where(kept > 0, (flat * keep).sum(axis=1) / np.maximum(kept, 1), 1.0)
    q = (np.sign(w) * keep.reshape(w.shape)).astype(np.int8)
    return q, scale


def dequantize(q, scale) -> np.ndarray:
    """``q · scale`` per output channel, as float64."""
    q = np.asarray(q)
    return q.astype(np.float64) * _per_channel(np.asarray(scale, dtype=np.float64), q)
