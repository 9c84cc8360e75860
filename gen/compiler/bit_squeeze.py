"""Bit-sparsity-aware rounding: move weights by at most a bounded error to values with fewer non-zero cell slices.

A weight of ``weight_bits`` bits stored differentially occupies ``ceil(weight_bits / cell_bits)`` slices of
``|w|``; every zero slice is a cell the bit-squeeze mapping can leave out of an OU's converted columns. Rounding
``w`` to the value within ``±max_error`` (same sign, or zero) with the fewest non-zero slices — the nearest such
value, then the smaller magnitude — makes more slices zero at a reported cost in weight error.
"""

import numpy as np

from hw import checks

__all__ = ["nonzero_slices", "bit_sparse_round"]


def nonzero_slices(w, *, cell_bits: int, weight_bits: int = 8) -> np.ndarray:
    """Number of non-zero ``cell_bits`` slices of ``|w|`` per weight (int64 array of ``w``'s shape)."""
    cell_bits = checks.check_choice("cell_bits", cell_bits, (1, 2, 4))
    weight_bits = checks.check_int("weight_bits", weight_bits, 2, 16)
    a = np.abs(checks.check_int_array("w", w, whole_floats=False))
    mask = (1 << cell_bits) - 1
    return sum(((a >> (s * cell_bits)) & mask) != 0 for s in range(-(-weight_bits // cell_bits))).astype(np.int64)


def bit_sparse_round(w, *, max_error: int, cell_bits: int, weight_bits: int = 8):
    """Round integer weights to bit-sparser values within ``±max_error``.

    Candidates are ``w + d`` for ``|d| <= max_error`` that keep the sign of ``w`` (or become 0) and stay inside
    ``±(2**(weight_bits-1) - 1)``; a weight moves only if a candidate has strictly fewer non-zero slices.
    Zero weights never change, so pruning masks are kept.

    Returns
    -------
    w_rounded : ndarray of int64, same shape
    report : dict
        ``max_error`` (the bound), ``changed`` (weights moved), ``max_abs_error``, ``mean_abs_error`` (over all
        weights), ``nonzero_slices_before`` / ``_after``.
    """
    max_error = checks.check_int("bit-squeeze round", max_error, 0, allowed="0 or more (integer weight units)")
    weight_bits = checks.check_int("weight_bits", weight_bits, 2, 16)
    w = checks.check_int_array("w", w, whole_floats=False)
    limit = (1 << (weight_bits - 1)) - 1
    before = nonzero_slices(w, cell_bits=cell_bits, weight_bits=weight_bits)
    # work on magnitudes: candidates nearest first, the smaller magnitude first at equal distance; only a strictly
    # lower slice count replaces the current choice, so the result is the nearest of the sparsest candidates
    a = np.abs(w)
    best_a, best_cost = a.copy(), before.copy()
    span = min(max_error, 2 * limit)      # no candidate beyond it stays in range: a huge bound must not hang
    for d in sorted(range(-span, span + 1), key=lambda d: (abs(d), d)):
        cand = a + d
        ok = (a != 0) & (cand >= 0) & (cand <= limit)
        cost = nonzero_slices(cand, cell_bits=cell_bits, weight_bits=weight_bits)
        better = ok & (cost < best_cost)
        best_a = np.where(better, cand, best_a)
        best_cost = np.where(better, cost, best_cost)
    best = np.sign(w) * best_a
    err = np.abs(best - w)
    report = {"max_error": max_error, "changed": int((err > 0).sum()),
              "max_abs_error": int(err.max()) if err.size else 0,
              "mean_abs_error": float(err.mean()) if err.size else 0.0,
              "nonzero_slices_before": int(before.sum()), "nonzero_slices_after": int(best_cost.sum())}
    return best, report
