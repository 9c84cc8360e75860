"""Kernel reordering: a permutation of a layer's outputs that puts outputs with the same zero rows side by side.

For pattern-pruned convolutions, outputs whose kernels share patterns have identical zero im2col rows; once they
share an OU column group, those rows are zero across the whole group and row compaction removes them. The
permutation is applied through the mapping's per-OU routing (``ou_col_output``), so it is invisible to the user: the
tile still produces outputs in their original order.
"""

import numpy as np

__all__ = ["group_outputs"]


def group_outputs(nonzero, group_size: int) -> np.ndarray:
    """Greedy grouping of outputs into groups of ``group_size`` that minimize each group's union of non-zero rows.

    Each group starts from the first output not yet placed and repeatedly adds the output that grows the union of
    non-zero rows the least (ties: lowest index). Cost ``O(N² · K / 64)`` word operations.

    Parameters
    ----------
    nonzero : ndarray of bool, shape (K, N)
        Non-zero pattern of the layer's ``K × N`` weight matrix.
    group_size : int
        Outputs per OU column group; 1 or less returns the identity.

    Returns
    -------
    ndarray of int64, shape (N,)
        ``perm``: the outputs in their new order (``perm[i]`` is the original output placed at position ``i``).
    """
    nonzero = np.asarray(nonzero, dtype=bool)
    k_total, n_total = nonzero.shape
    if group_size <= 1 or n_total <= 1:
        return np.arange(n_total)
    packed = np.packbits(nonzero.T, axis=1)                                  # (N, ceil(K/8))
    packed = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, -packed.shape[1] % 8)))).view(np.uint64)   # (N, words)
    remaining = np.ones(n_total, dtype=bool)
    perm = []
    for start in range(n_total):
        if not remaining[start]:
            continue
        remaining[start] = False
        perm.append(start)
        union = packed[start].copy()
        for _ in range(group_size - 1):
            candidates = np.flatnonzero(remaining)
            if not candidates.size:
                break
            cost = np.bitwise_count(union | packed[candidates]).sum(axis=1)
            best = int(candidates[np.argmin(cost)])
            remaining[best] = False
            perm.append(best)
            union |= packed[best]
    return np.array(perm, dtype=np.int64)
