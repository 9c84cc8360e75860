"""SME-style bit-sparsity-orchestrating quantization: integer weights whose cell slices are sparse.

A weight of ``weight_bits`` bits stored differentially on ``cell_bits`` cells occupies ``weight_bits / cell_bits``
slices of ``|q|`` (slice ``s`` counts ``2**(s·cell_bits)``); every zero slice is a cell the compacted mappings
leave out. SME (Liu et al., 2021) orchestrates the quantization so that the slices are sparse. Here the integer
weights are restricted to the magnitudes with **at most** ``terms`` **non-zero slices** (:func:`sme_levels`; with
``cell_bits = 1`` and ``terms = 1`` these are the powers of two, a logarithmic quantizer), and the scale of each
output channel (or of the whole layer) is the one, among a grid of candidates, that minimizes the squared weight
error of nearest-level rounding (:func:`sme_quantize`). The weight error is reported per layer: relative RMS
error ``‖w − q·scale‖ / ‖w‖`` of the SME weights and of plain symmetric int8 on the same weights.

A quantization spec string (``map-report --quant``) names it: ``sme:terms=T[,granularity=channel|layer]``; the
slice width is the crossbar's ``cell_bits``.
"""

import numpy as np

from hw import checks

from gen.compiler.bit_squeeze import nonzero_slices
from gen.compiler.quantize import quantize_symmetric

__all__ = ["GRANULARITIES", "SCALE_CANDIDATES", "sme_levels", "sme_quantize",
           "parse_sme", "weight_error"]

GRANULARITIES = ("channel", "layer")
SCALE_CANDIDATES = 64
"""Scales tried per channel: ``max|w| · f / max_level`` for ``f`` geometric from 1/8 to 1 (clipping the largest
weights when ``f < 1``)."""


def _slices(weight_bits, cell_bits):
    cell_bits = checks.check_choice("cell_bits", cell_bits, (1, 2, 4))
    weight_bits = checks.check_int("weight_bits", weight_bits, 2, 16)
    if weight_bits % cell_bits:
        checks.fail("cell_bits", cell_bits, f"does not divide weight_bits = {weight_bits}",
                    "a divisor of weight_bits among 1, 2, 4")
    return weight_bits // cell_bits


def sme_levels(*, weight_bits: int = 8, cell_bits: int = 2, terms: int = 1) -> np.ndarray:
    """The magnitudes ``0 … 2**(weight_bits-1) - 1`` with at most ``terms`` non-zero ``cell_bits`` slices.

    Raises
    ------
    ValueError
        ``cell_bits`` not dividing ``weight_bits``, or ``terms`` outside ``1 … weight_bits / cell_bits``.
    """
    slices = _slices(weight_bits, cell_bits)
    terms = checks.check_int("sme terms", terms, 1, slices,
                             allowed=f"1 … {slices} (non-zero slices per weight: {weight_bits}-bit weights on "
                                     f"{cell_bits}-bit cells have {slices})")
    a = np.arange(1 << (weight_bits - 1), dtype=np.int64)
    return a[nonzero_slices(a, cell_bits=cell_bits, weight_bits=weight_bits) <= terms]


def _round_to(levels, a):
    """Nearest level of every magnitude ``a`` (float, ≥ 0; ties to the smaller level)."""
    hi = np.clip(np.searchsorted(levels, a), 1, len(levels) - 1)
    lo = hi - 1
    return np.where(a - levels[lo] <= levels[hi] - a, levels[lo], levels[hi])


def weight_error(w, q, scale) -> float:
    """Relative RMS error ``‖w − q·scale‖ / ‖w‖`` (per-channel ``scale`` along axis 0; 0 for an all-zero ``w``)."""
    w = np.asarray(w, dtype=np.float64)
    deq = np.asarray(q, dtype=np.float64) * np.asarray(scale, dtype=np.float64).reshape((-1,) + (1,) * (w.ndim - 1))
    norm = float(np.sqrt((w ** 2).sum()))
    return float(np.sqrt(((w - deq) ** 2).sum())) / norm if norm else 0.0


def sme_quantize(w, *, terms: int = 1, cell_bits: int = 2, weight_bits: int = 8, granularity: str = "channel"):
    """Quantize float weights to integers with at most ``terms`` non-zero ``cell_bits`` slices each.

    Per output channel (axis 0; ``granularity="layer"``: one scale for all), the scale is the one among
    :data:`SCALE_CANDIDATES` candidates ``max|w| · f / L`` (``L`` the largest level of :func:`sme_levels`, ``f``
    geometric in ``[1/8, 1]``) whose nearest-level rounding has the least squared error; magnitudes above ``L ·
    scale`` clip to ``L``. Zeros stay zeros (a pruning mask survives); small weights may round to zero.

    Returns
    -------
    q : ndarray of int64, same shape as ``w``
        Every ``|q|`` is a level of :func:`sme_levels`.
    scale : ndarray of float64, shape (O,)
        ``w ≈ q · scale`` per output channel (1.0 for an all-zero channel).
    report : dict
        ``terms``, ``cell_bits``, ``weight_bits``, ``granularity``, ``rel_rms_error`` (SME), ``int8_rel_rms_error``
        (:func:`gen.compiler.quantize.quantize_symmetric` at ``weight_bits`` on the same weights),
        ``zero_fraction``, ``slices_per_weight`` (mean non-zero slices per weight) and ``int8_slices_per_weight``.

    Raises
    ------
    ValueError
        NaN/Inf weights, no output-channel axis, an unknown granularity, or the slice budget errors of
        :func:`sme_levels`.
    """
    levels = sme_levels(weight_bits=weight_bits, cell_bits=cell_bits, terms=terms)
    granularity = checks.check_choice("sme granularity", granularity, GRANULARITIES)
    w = checks.check_float_array("w", w)
    if w.ndim < 1:
        raise ValueError("weights must have an output-channel axis")
    flat = w.reshape(w.shape[0], -1) if granularity == "channel" else w.reshape(1, -1)
    a = np.abs(flat)
    peak = a.max(axis=1) if a.size else np.zeros(len(a))
    top = float(levels[-1])
    best_scale = np.where(peak > 0, peak / top, 1.0)
    best_err = np.full(len(a), np.inf)
    for f in np.geomspace(1.0 / 8, 1.0, SCALE_CANDIDATES):
        scale = np.where(peak > 0, peak * f / top, 1.0)
        deq = _round_to(levels, np.minimum(a / scale[:, None], top)) * scale[:, None]
        err = ((a - deq) ** 2).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_scale = np.where(better, scale, best_scale)
    q = (np.sign(flat) * _round_to(levels, np.minimum(a / best_scale[:, None], top))).astype(np.int64)
    q = q.reshape(w.shape)
    scale = best_scale if granularity == "channel" else np.full(w.shape[0], best_scale[0])
    q8, s8 = quantize_symmetric(w, weight_bits) if w.size else (np.zeros(w.shape, np.int64), np.ones(w.shape[0]))
    report = {"terms": terms, "cell_bits": cell_bits, "weight_bits": weight_bits, "granularity": granularity,
              "rel_rms_error": weight_error(w, q, scale), "int8_rel_rms_error": weight_error(w, q8, s8),
              "zero_fraction": float((q == 0).mean()) if q.size else 0.0,
              "slices_per_weight": float(nonzero_slices(q, cell_bits=cell_bits, weight_bits=weight_bits).mean())
              if q.size else 0.0,
              "int8_slices_per_weight": float(nonzero_slices(q8, cell_bits=cell_bits,
                                                                  weight_bits=weight_bits).mean()) if q.size else 0.0}
    return q, scale, report


def parse_sme(spec: str) -> dict:
    """``"sme:terms=1,granularity=channel"`` → ``{"terms": 1, "granularity": "channel"}`` (``terms`` required)."""
    checks.check_str("quant", spec, "sme:terms=T[,granularity=channel|layer]")
    name, _, rest = spec.partition(":")
    if name != "sme":
        checks.fail("quant", spec, "is not an SME spec", "sme:terms=T[,granularity=channel|layer]")
    params = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or key not in ("terms", "granularity") or key in params:
            checks.fail("quant", spec, f"has a bad or repeated field {part!r}",
                        "sme:terms=T[,granularity=channel|layer]")
        if key == "terms":
            try:
                params[key] = int(value)
            except ValueError:
                checks.fail("quant", spec, f"has terms = {value!r}, not an integer", "terms=1, 2, …")
        else:
            params[key] = checks.check_choice("sme granularity", value, GRANULARITIES)
    if "terms" not in params:
        checks.fail("quant", spec, "gives no slice budget", "sme:terms=T[,granularity=channel|layer]")
    return params
