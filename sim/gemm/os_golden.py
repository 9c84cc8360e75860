"""Golden numpy model of the output-stationary core ``SparseOSArray`` (README "Output-stationary core").

A tile is ``C[rows × cols] = A[rows × K] · W[K × cols]``, ``K = T · block``, W ``keep:block`` sparse along K.
PE (i, j) accumulates ``C[i, j]`` over the K-blocks t = 0 … T−1 in order: each step adds the exact sum of its
``keep`` products to the ``acc_bits`` accumulator, which wraps, or with ``overflow = "saturate"`` is clamped after
each K-block's add. That is exactly the arithmetic of :func:`sim.systolic.golden.gemm_nm`, whose partial sum runs
over K-blocks in the same order with the same per-block clamp (there the blocks are PE rows, here time steps), so
the OS golden model reuses it rather than restating it; the tests pin this equivalence with a scalar reference.
"""

import numpy as np

from hw import checks
from hw.formats.nm import compress_nm
from sim.systolic.golden import gemm_nm, random_acts, random_nm_weights, zero_skips

__all__ = ["os_tile", "random_os_tile", "os_reference"]


def os_tile(p, W, A):
    """What the core answers for one tile.

    Parameters
    ----------
    p : object
        The core's parameters as attributes (``rows``, ``cols``, ``act_bits``, ``act_signed``, ``weight_bits``,
        ``acc_bits``, ``keep``, ``block``, ``overflow``), duck-typed.
    W : (K, cols) integer array
        ``keep:block`` sparse weights, K a multiple of ``block``.
    A : (rows, K) integer array
        Activations.

    Returns
    -------
    values, indices : (T, cols, keep) int64 arrays
        The compressed weights the host streams (:func:`~hw.formats.nm.compress_nm`), one K-block per step.
    C : (rows, cols) int64 array
        The result tile with the core's ``acc_bits`` wrap/saturate arithmetic.
    skips : int
        Multiplications whose selected activation is zero (the ``zero_skips`` counter's increase).

    Raises
    ------
    ValueError
        Shapes that do not match the core, too many non-zeros in a block, or an operand outside its range.
    """
    checks.check_attrs("p", p, ("rows", "cols", "keep", "block", "acc_bits", "overflow", "act_bits", "act_signed",
                                "weight_bits"), "the core's parameters (an object with its fields)")
    A, W = np.asarray(A), np.asarray(W)
    if A.ndim != 2 or A.shape[0] != p.rows:
        raise ValueError(f"A must have rows = {p.rows} rows, got shape {A.shape}")
    if W.ndim != 2 or W.shape != (A.shape[1], p.cols):
        raise ValueError(f"W must have shape (K, cols) = ({A.shape[1]}, {p.cols}), got {W.shape}")
    values, indices = compress_nm(W, keep=p.keep, block=p.block)
    C = gemm_nm(A, values, indices, block=p.block, acc_bits=p.acc_bits, overflow=p.overflow,
                act_bits=p.act_bits, act_signed=p.act_signed, weight_bits=p.weight_bits)
    return values, indices, C, zero_skips(A, indices, block=p.block)


def random_os_tile(rng, p, k_blocks, *, density=0.75, zero_fraction=0.25):
    """A random ``(W, A)`` tile of ``k_blocks`` K-blocks: extremes, zeros and partly filled blocks included."""
    k = k_blocks * p.block
    W = random_nm_weights(rng, k=k, n=p.cols, keep=p.keep, block=p.block, weight_bits=p.weight_bits,
                          density=density)
    A = random_acts(rng, m=p.rows, k=k, act_bits=p.act_bits, act_signed=p.act_signed,
                    zero_fraction=zero_fraction)
    return W, A


def os_reference(A, W, *, block, acc_bits, overflow):
    """Scalar restatement of one PE's accumulation, for cross-checking :func:`os_tile` on small tiles.

    Python ints, loops over (i, j, t): ``acc = clamp_or_wrap(acc + sum_b A[i, t·block+b] · W[t·block+b, j])``.
    """
    A, W = np.asarray(A).tolist(), np.asarray(W).tolist()
    rows, K, cols = len(A), len(W), len(W[0])
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    C = np.zeros((rows, cols), np.int64)
    for i in range(rows):
        for j in range(cols):
            acc = 0
            for t in range(K // block):
                acc += sum(A[i][t * block + b] * W[t * block + b][j] for b in range(block))
                if overflow == "saturate":
                    acc = min(max(acc, lo), hi)
                else:
                    acc = ((acc - lo) % (1 << acc_bits)) + lo
            C[i, j] = acc
    return C
