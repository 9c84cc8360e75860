"""Bit-sparsity-aware rounding: move weights by at most a bounded error to values with fewer non-zero cell slices.

A weight of ``weight_bits`` bits stored differentially occupies ``ceil(weight_bits / cell_bits)`` slices of
``|w|``; every zero slice is a cell the bit-squeeze mapping can leave out of an OU's converted columns. Rounding
``w`` to the value within ``±max_error`` (same sign, or zero) with the fewest non-zero slices — the nearest such
value, then the smaller magnitude — makes more slices zero at a reported cost in weight error.
"""

import numpy as np

__all__ = ["nonzero_slices", "bit_sparse_round"]


def nonzero_slices(w, *, cell_bits: int, weight_bits: int = 8) -> np.ndarray:
    """Number of non-zero ``cell_bits`` slices of ``|w|`` per weight (int64 array of ``w``'s shape)."""
    a = np.abs(np.asarray(w, dtype=np.int64))
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
    if not isinstance(max_error, int) or max_error < 0:
        raise ValueError(f"bit-squeeze round = {max_error!r} is out of range: allowed 0 or more (integer weight units)")
    w = np.asarray(w).astype(np.int64)
    limit = (1 << (weight_bits - 1)) - 1
    before = nonzero_slices(w, cell_bits=cell_bits, weight_bits=weight_bits)
    # work on magnitudes: candidates nearest first, the smaller magnitude first at equal distance; only a strictly
    # lower slice count replaces the current choice, so the result is the nearest of the sparsest candidates
    a = np.abs(w)
    best_a, best_cost = a.copy(), before.copy()
    for d in sorted(range(-max_error, max_error + 1), key=lambda d: (abs(d), d)):
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
