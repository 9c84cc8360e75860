"""Golden numpy models of the ``SparseSystolicArray`` (README "Configuration" and "Interfaces").

All arrays are int64. Weights are compressed per K-block of ``block`` rows into ``keep`` (value, index)
slots; PE row r holds K-block r, PE column n holds output channel n.
"""

import numpy as np

from hw import checks
from hw.formats.ints import OVERFLOW_MODES, check_range, int_array, int_range, wrap
from hw.formats.nm import check_nm, compress_nm, compressed_slots, decompress_nm

__all__ = ["gemm_nm", "zero_skips", "random_nm_weights", "random_acts", "array_job"]


def gemm_nm(A, values, indices, *, block, acc_bits, overflow="wrap", act_bits=None, act_signed=True,
            weight_bits=None):
    """``C = A @ W`` as the array computes it, from compressed weights.

    ``C[m, n] = sum_r sum_j A[m, r*block + indices[r, n, j]] * values[r, n, j]``, with the hardware's
    arithmetic: PE row r forms its ``keep`` products and their sum in full precision, then adds it to
    the ``acc_bits`` two's-complement partial sum from PE row r-1 (row 0 starts from 0).

    - ``"wrap"`` / ``"check"``: every add wraps modulo ``2**acc_bits`` (equivalently, the exact sum is
      wrapped once). ``"check"`` configs are proven never to wrap; it is computed like ``"wrap"``.
    - ``"saturate"``: after each PE row's add the partial sum is clamped to
      ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]``, so the row order matters.

    Partial sums are int64; int64 adds wrap modulo 2**64, which is exactly the ``acc_bits == 64``
    behaviour (saturation detects the int64 overflow explicitly). Each PE row's sum is exact for
    operands of up to 16 bits.

    Parameters
    ----------
    A : (M, K) integer array
        Activations, K = R * block.
    values, indices : (R, N, keep) integer arrays
        Compressed weights (see :func:`compress_nm`).
    block : int
        K-block size.
    acc_bits : int
        Partial-sum / result width, 1..64.
    overflow : {"wrap", "check", "saturate"}
    act_bits : int, optional
        If given, every element of A must fit ``act_bits`` (signed or unsigned per ``act_signed``).
    act_signed : bool
    weight_bits : int, optional
        If given, every value must fit signed ``weight_bits``.

    Returns
    -------
    C : (M, N) int64 array
        Results, in ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]``.

    Raises
    ------
    ValueError
        Bad shapes, indices, acc_bits or overflow mode, or an operand outside its range.
    """
    A = int_array(A, "A", 2)
    values, indices = compressed_slots(values, indices, block)
    R, N, _ = values.shape
    M, K = A.shape
    if K != R * block:
        raise ValueError(f"A has K={K} columns; values/indices cover R*block = {R}*{block} = {R * block}")
    if overflow not in OVERFLOW_MODES:
        raise ValueError(f"overflow must be one of {OVERFLOW_MODES}, got {overflow!r}")
    acc_bits = checks.check_int("acc_bits", acc_bits, 1, 64)
    if act_bits is not None:
        check_range(A, "activation (A)", act_bits, act_signed)
    if weight_bits is not None:
        check_range(values, "weight (values)", weight_bits, True)

    lo, hi = int_range(acc_bits, True)
    blocks = A.reshape(M, R, block)
    psum = np.zeros((M, N), np.int64)
    for r in range(R):
        row = (blocks[:, r, indices[r]] * values[r]).sum(axis=2)            # (M, N), exact
        s = psum + row                                                      # wraps modulo 2**64
        if overflow == "saturate":
            s = np.where((row > 0) & (s < psum), hi, np.where((row < 0) & (s > psum), lo, s))
            psum = np.clip(s, lo, hi)
        else:
            psum = wrap(s, acc_bits)
    return psum


def zero_skips(A, indices, *, block):
    """Number of multiplications whose selected activation is zero (the ``zero_skips`` counter).

    Parameters
    ----------
    A : (M, K) integer array
        Activations, K = R * block.
    indices : (R, N, keep) integer array
        In-block weight positions.
    block : int

    Returns
    -------
    int
        Count of ``A[m, r*block + indices[r, n, j]] == 0`` over all m, r, n, j.
    """
    A = int_array(A, "A", 2)
    indices = int_array(indices, "indices", 3)
    R = indices.shape[0]
    if A.shape[1] != R * block:
        raise ValueError(f"A has K={A.shape[1]} columns; indices cover R*block = {R}*{block} = {R * block}")
    zeros = np.count_nonzero(A.reshape(A.shape[0], R, block) == 0, axis=0)           # (R, block)
    return int(np.take_along_axis(zeros, indices.reshape(R, -1), axis=1).sum())


def random_nm_weights(rng, *, k, n, keep, block, weight_bits, density=1.0):
    """Random ``keep:block`` structured-sparse weights.

    Every K-block of every column gets ``keep`` distinct random positions; each is non-zero with
    probability ``density`` (so a block has 0..keep non-zeros, exactly ``keep`` when ``density == 1``).
    Non-zero values are uniform over the signed ``weight_bits`` range without 0, with the extremes
    ``-2**(weight_bits-1)`` and ``2**(weight_bits-1) - 1`` each mixed in with probability 1/8.

    Parameters
    ----------
    rng : numpy.random.Generator
    k, n : int
        Shape of W; k a multiple of block.
    keep, block : int
    weight_bits : int
        >= 2.
    density : float
        Probability that a slot is non-zero, 0..1.

    Returns
    -------
    W : (k, n) int64 array
    """
    keep, block = check_nm(keep, block)
    k, n = checks.check_int("k", k, 0), checks.check_int("n", n, 0)
    weight_bits = checks.check_int("weight_bits", weight_bits, 2, 62)
    density = checks.check_float("density", density, 0, 1, allowed="0 … 1")
    if k % block:
        raise ValueError(f"k={k} is not a multiple of block={block}")
    lo, hi = int_range(weight_bits, True)
    shape = (k // block, n, keep)
    indices = np.argsort(rng.random((k // block, n, block)), axis=2)[..., :keep]
    v = rng.integers(lo, hi - 1, size=shape, endpoint=True)
    v = v + (v >= 0)                                                        # skip 0
    u = rng.random(shape)
    v = np.where(u < 1 / 8, lo, np.where(u < 1 / 4, hi, v))
    return decompress_nm(v * (rng.random(shape) < density), indices, block=block)


def random_acts(rng, *, m, k, act_bits, act_signed, zero_fraction=0.25):
    """Random activations: uniform over the ``act_bits`` range, the two extremes each mixed in with
    probability 1/16, and a ``zero_fraction`` of the elements forced to 0.

    Parameters
    ----------
    rng : numpy.random.Generator
    m, k : int
        Shape of A.
    act_bits : int
    act_signed : bool
    zero_fraction : float

    Returns
    -------
    A : (m, k) int64 array
    """
    m, k = checks.check_int("m", m, 0), checks.check_int("k", k, 0)
    act_signed = checks.check_bool("act_signed", act_signed)
    act_bits = checks.check_int("act_bits", act_bits, 2 if act_signed else 1, 62)
    zero_fraction = checks.check_float("zero_fraction", zero_fraction, 0, 1, allowed="0 … 1")
    lo, hi = int_range(act_bits, act_signed)
    a = rng.integers(lo, hi, size=(m, k), endpoint=True)
    u = rng.random((m, k))
    a = np.where(u < 1 / 16, lo, np.where(u < 1 / 8, hi, a))
    return np.where(rng.random((m, k)) < zero_fraction, 0, a)


def array_job(cfg, W, A):
    """What the array answers for one weight load of ``W`` followed by the rows of ``A``.

    ``cfg`` is any object with the ``SystolicConfig`` fields (duck-typed). Returns ``(values, indices, C, skips)``:
    the compressed weights the host loads, the result rows (``gemm_nm`` with the config's widths and overflow)
    and the ``zero_skips`` count.
    """
    checks.check_attrs("cfg", cfg, ("keep", "block", "acc_bits", "overflow", "act_bits", "act_signed",
                                    "weight_bits"), "a SystolicConfig (or an object with its fields)")
    values, indices = compress_nm(W, keep=cfg.keep, block=cfg.block)
    C = gemm_nm(A, values, indices, block=cfg.block, acc_bits=cfg.acc_bits, overflow=cfg.overflow,
                act_bits=cfg.act_bits, act_signed=cfg.act_signed, weight_bits=cfg.weight_bits)
    return values, indices, C, zero_skips(A, indices, block=cfg.block)
