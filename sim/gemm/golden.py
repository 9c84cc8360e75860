"""Golden numpy model of the GEMM engine (README "GEMM engine"), written from the spec.

The engine computes ``C = post(A · W)`` tile by tile: W is zero-padded to ``kt·k × nt·cols`` (``k = rows·block``)
and compressed keep:block; for each N-tile and each K-tile the array forms the tile's partial sums exactly as
:func:`sim.systolic.golden.gemm_nm` (``acc_bits`` two's complement, wrapping, or clamped after each PE row's add
when ``overflow = "saturate"``), and the accumulator adds the K-tiles in order with the same rule (wrap, or clamp
after each add). ``post`` is the optional ReLU, then the optional requantization
``clamp((x + 2**(s-1)) >> s)`` (round half up, arithmetic shift, no rounding term for ``s = 0``) to signed
``out_bits``. Everything is int64; ``cfg`` is a :class:`gen.gemm.config.GemmConfig` (duck-typed).

``cfg.dataflow = "os"`` (absent: ``"ws"``) changes only ``overflow = "saturate"``: the output-stationary engine
keeps each C element in one PE over the whole K, so the clamp follows every K-block's add in one chain from 0
(:func:`sim.systolic.golden.gemm_nm` over the whole padded K) and K-tiles play no role. With ``"wrap"``/``"check"``
both dataflows give the same exact-sum-wrapped result.
"""

import numpy as np

from hw import checks
from hw.formats.ints import hw_overflow, wrap
from hw.formats.actsparse import adbb_prune, row_steps
from hw.formats.nm import compress_nm
from hw.formats.nm_n import compress_n
from gen.gemm.config import check_config, check_dims, check_job
from sim.systolic.golden import gemm_nm

__all__ = ["tiles", "n_tile", "n_axis", "padded_weights", "gemm_engine", "requantize", "mac_counts", "effective_acts", "act_steps",
           "act_stimulus"]


def tiles(cfg, k, n):
    """``(kt, nt)``: K-tiles of ``k`` and N-tiles of ``n_tile`` (``cols``; ``cols·block`` with weights along N) a
    (K, N) job takes (ceil division)."""
    _, k, n, _ = check_dims(cfg, 1, k, n)
    return -(-k // cfg.k), -(-n // n_tile(cfg))


def n_tile(cfg):
    """Output columns of one tile: ``cfg.n_tile`` (``cols`` for configs without it)."""
    return getattr(cfg, "n_tile", cfg.cols)


def n_axis(cfg):
    """Whether the weights are ``keep:block`` along N (``weight_axis = "n"``, :mod:`hw.formats.nm_n`)."""
    return getattr(cfg, "weight_axis", "k") == "n"


def padded_weights(cfg, W):
    """W zero-padded to whole tiles and compressed: ``(values, indices)`` of shape ``(kt·rows, nt·cols, keep)``;
    with weights along N (:func:`hw.formats.nm_n.compress_n`) ``(kt·k, nt·cols, keep)``: per K row, per N-block.

    Raises ``ValueError`` naming the column and K-block (rows of W) of a block with too many non-zeros (along N:
    the K row and N-block).
    """
    check_config(cfg)
    W = checks.check_int_array("W", W, ndim=2, bits=cfg.weight_bits, signed=True, whole_floats=False)
    kt, nt = -(-W.shape[0] // cfg.k), -(-W.shape[1] // n_tile(cfg))     # any size: a packing helper
    Wp = np.zeros((kt * cfg.k, nt * n_tile(cfg)), np.int64)
    Wp[:W.shape[0], :W.shape[1]] = W
    if n_axis(cfg):
        return compress_n(Wp, keep=cfg.keep, block=cfg.block)
    return compress_nm(Wp, keep=cfg.keep, block=cfg.block)


def requantize(x, *, relu, out_bits, shift=0):
    """The output stage: ReLU (if ``relu``), then round-half-up shift and saturation to signed ``out_bits``
    (if ``out_bits`` is not None)."""
    x = checks.check_int_array("x", x, whole_floats=False)
    relu = checks.check_bool("relu", relu)
    if out_bits is not None:
        out_bits = checks.check_int("out_bits", out_bits, 2, 64, allowed="2 … 64 or None")
    shift = checks.check_int("shift", shift, 0, 63)
    if relu:
        x = np.maximum(x, 0)
    if out_bits is None:
        return x
    half = (1 << shift) >> 1
    return np.clip((x + half) >> shift, -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1)


def _add(acc, partial, cfg):
    s = acc + partial
    if cfg.overflow == "saturate":
        return np.clip(s, -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1)   # |s| < 2**64: exact
    return wrap(s, cfg.acc_bits)


def gemm_engine(cfg, A, W, shift=0):
    """``C[M × N]`` as the engine returns it (after ReLU/requantization).

    Parameters
    ----------
    cfg : GemmConfig
    A : (M, K) integer array
        Activations in the ``act_bits`` range.
    W : (K, N) integer array
        keep:block sparse weights (per column, per K-block of ``block`` rows from row 0) in the ``weight_bits`` range.
    shift : int
        Requantization shift of the job (0 when ``out_bits`` is None).

    Raises
    ------
    TypeError, ValueError
        Whatever the engine or its host rejects (:func:`check_job`): shapes, element ranges, M/K/N beyond the
        config's maxima, a bad shift, too many non-zeros in a K-block of W.
    """
    A, W, shift = check_job(cfg, A, W, shift)
    M, K = A.shape
    N = W.shape[1]
    values, indices = padded_weights(cfg, W)
    if getattr(cfg, "act_keep", 0):
        # every product of the kept activations lands in acc_bits two's complement: wrapping is modular, so the
        # order of the adds (PE rows, steps, K-tiles) does not matter ("saturate" is not allowed here)
        C = wrap(effective_acts(cfg, A) @ W, cfg.acc_bits)
        return requantize(C, relu=cfg.relu, out_bits=cfg.out_bits, shift=shift)
    kt, nt = tiles(cfg, K, N)
    Ap = np.zeros((M, kt * cfg.k), np.int64)
    Ap[:, :K] = A
    mode = hw_overflow(cfg.overflow)
    C = np.zeros((M, nt * cfg.cols), np.int64)
    if getattr(cfg, "dataflow", "ws") == "os":
        C[:] = gemm_nm(Ap, values, indices, block=cfg.block, acc_bits=cfg.acc_bits, overflow=mode)
        return requantize(C[:, :N], relu=cfg.relu, out_bits=cfg.out_bits, shift=shift)
    for nn in range(nt):
        cs = slice(nn * cfg.cols, (nn + 1) * cfg.cols)
        acc = None
        for kk in range(kt):
            rs = slice(kk * cfg.rows, (kk + 1) * cfg.rows)
            partial = gemm_nm(Ap[:, kk * cfg.k:(kk + 1) * cfg.k], values[rs, cs], indices[rs, cs], block=cfg.block,
                              acc_bits=cfg.acc_bits, overflow=mode)
            acc = partial if acc is None else _add(acc, partial, cfg)
        C[:, cs] = acc
    return requantize(C[:, :N], relu=cfg.relu, out_bits=cfg.out_bits, shift=shift)


def effective_acts(cfg, A):
    """The activations the engine multiplies: A itself, or with ``act_mode = "adbb"`` A pruned to the ``act_keep``
    largest magnitudes per K-block (:func:`hw.formats.actsparse.adbb_prune`)."""
    A = np.asarray(A, dtype=np.int64)
    if getattr(cfg, "act_keep", 0) and cfg.act_mode == "adbb":
        return adbb_prune(A, act_keep=cfg.act_keep, block=cfg.block)
    return A


def act_steps(cfg, A):
    """Steps of every row in every K-tile, ``(kt, M)``: all 1 without activation sparsity or with A-DBB
    (:func:`hw.formats.actsparse.row_steps`)."""
    A = np.asarray(A, dtype=np.int64)
    if not getattr(cfg, "act_keep", 0):
        return np.ones((-(-A.shape[1] // cfg.k), A.shape[0]), np.int64)
    return row_steps(A, act_keep=cfg.act_keep, block=cfg.block, k_tile=cfg.k, mode=cfg.act_mode)


def mac_counts(cfg, A, W):
    """``(macs, zero_skips)`` of one job: multiplier slots on real positions (column < N, K position < K) whose
    activation is non-zero, resp. zero, summed over the M rows. Padding is counted in neither. The job is checked
    as :func:`gemm_engine` checks it."""
    A, W, _ = check_job(cfg, A, W)
    M, K = A.shape
    N = W.shape[1]
    if n_axis(cfg):
        # outer-product PEs: keep products per activation slot, over the PE columns whose N-block is real
        per_slot = cfg.keep * -(-N // cfg.block)
        macs = int(np.count_nonzero(effective_acts(cfg, A))) * per_slot
        return macs, int(act_steps(cfg, A).sum()) * cfg.rows * cfg.act_keep * per_slot - macs
    if getattr(cfg, "act_keep", 0):
        # activation slots: per step every PE row offers keep slots per column; a slot holding a non-zero
        # activation is a performed multiplication, an empty one a skip (docs/gemm-actsparse.md "Counters")
        macs = int(np.count_nonzero(effective_acts(cfg, A))) * N
        return macs, int(act_steps(cfg, A).sum()) * cfg.rows * cfg.keep * N - macs
    values, indices = padded_weights(cfg, W)
    R, Np, _ = values.shape
    pos = np.arange(R)[:, None, None] * cfg.block + indices                 # global K position of each slot
    real = (pos < K) & (np.arange(Np)[None, :, None] < N)
    zeros_at = np.zeros(R * cfg.block, np.int64)
    zeros_at[:K] = np.count_nonzero(A == 0, axis=0)
    skips = int(zeros_at[pos][real].sum())
    return int(real.sum()) * M - skips, skips


def act_stimulus(rng, A, *, act_bits, act_signed, block, zeros=0.35, ties=0.3):
    """Activation stimulus for activation sparsity: ``A`` with a share ``zeros`` of its elements set to 0 and, in a
    share ``ties`` of its K-blocks, every element given one magnitude (random signs when signed; the most negative
    value included), so that blocks A-DBB truncates and ties in magnitude occur. Returns a new int64 array."""
    A = np.array(A, dtype=np.int64)
    M, K = A.shape
    top = (1 << (act_bits - 1)) if act_signed else (1 << act_bits) - 1
    for m in range(M):
        for b in range(0, K, block):
            if rng.random() < ties:
                mag = int(rng.integers(1, top + 1))
                width = min(block, K - b)
                signs = rng.choice([-1, 1], size=width) if act_signed else np.ones(width, np.int64)
                vals = signs * mag
                if act_signed:
                    vals = np.where(vals > top - 1, top - 1 if mag < top else -top, vals)
                A[m, b:b + width] = vals
    A[rng.random(A.shape) < zeros] = 0
    return A
