"""Golden numpy models and cycle model of the SparseSystolicArray, checked against plain definitions."""

import itertools
import re
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, strategies as st

from sim.systolic.golden import gemm_nm, random_acts, random_nm_weights, zero_skips
from hw.formats.nm import compress_nm, decompress_nm, required_acc_bits
from gen.systolic.perf import job_cycles, latency, load_cycles, macs, stream_cycles

BLOCKS = (1, 2, 4, 8, 16)
seeds = st.integers(0, 2**32 - 1)


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


@st.composite
def nm_cases(draw):
    """A random (A, W) pair within a random config, plus the config fields."""
    block = draw(st.sampled_from(BLOCKS))
    c = SimpleNamespace(
        block=block, keep=draw(st.integers(1, block)), rows=draw(st.integers(1, 4)), cols=draw(st.integers(1, 5)),
        m=draw(st.integers(1, 5)), act_bits=draw(st.integers(2, 16)), act_signed=draw(st.booleans()),
        weight_bits=draw(st.integers(2, 16)), density=draw(st.sampled_from((0.0, 0.5, 1.0))))
    rng = np.random.default_rng(draw(seeds))
    c.W = random_nm_weights(rng, k=c.rows * block, n=c.cols, keep=c.keep, block=block,
                            weight_bits=c.weight_bits, density=c.density)
    c.A = random_acts(rng, m=c.m, k=c.rows * block, act_bits=c.act_bits, act_signed=c.act_signed)
    return c


def ref_compress(W, keep, block):
    """Slot positions per the README rule, one block at a time."""
    out = np.zeros((W.shape[0] // block, W.shape[1], keep), np.int64)
    for r, n in np.ndindex(out.shape[:2]):
        blk = W[r * block:(r + 1) * block, n]
        nz = [p for p in range(block) if blk[p]]
        out[r, n] = sorted(nz + [p for p in range(block) if not blk[p]][:keep - len(nz)])
    return out


# --- compression ---------------------------------------------------------------------------------------

@given(nm_cases())
def test_compress_roundtrip(c):
    values, indices = compress_nm(c.W, keep=c.keep, block=c.block)
    assert values.shape == indices.shape == (c.rows, c.cols, c.keep)
    assert values.dtype == indices.dtype == np.int64
    np.testing.assert_array_equal(indices, ref_compress(c.W, c.keep, c.block))
    np.testing.assert_array_equal(decompress_nm(values, indices, block=c.block), c.W)


def test_compress_dense_indices():
    W = np.arange(1, 25).reshape(8, 3)
    values, indices = compress_nm(W, keep=4, block=4)
    np.testing.assert_array_equal(indices, np.broadcast_to(np.arange(4), (2, 3, 4)))
    np.testing.assert_array_equal(values[1, 2], W[4:8, 2])


def test_compress_rejects_too_many_nonzeros():
    W = np.zeros((12, 5), np.int64)
    W[[8, 9, 11], 3] = [1, -2, 3]   # column 3, K-block 2: 3 non-zeros
    W[[0, 1, 2], 4] = 5             # a later column, earlier block
    W[[4, 6], 1] = 7                # allowed: exactly keep
    with pytest.raises(ValueError) as e:
        compress_nm(W, keep=2, block=4)
    msg = str(e.value)
    assert re.search(r"column 3\b", msg) and re.search(r"K-block 2\b", msg) and "8..11" in msg, msg
    assert re.search(r"\b3 non-zeros", msg) and "2:4" in msg, msg


@pytest.mark.parametrize("kwargs, words", [
    (dict(W=np.zeros((6, 2), np.int64), keep=2, block=4), ("K=6", "block=4")),
    (dict(W=np.zeros((4, 2), np.int64), keep=0, block=4), ("keep",)),
    (dict(W=np.zeros((4, 2), np.int64), keep=5, block=4), ("keep",)),
    (dict(W=np.zeros((4, 2)), keep=2, block=4), ("integer",)),
])
def test_compress_rejects_bad_arguments(kwargs, words):
    with pytest.raises(ValueError) as e:
        compress_nm(kwargs.pop("W"), **kwargs)
    assert all(w in str(e.value) for w in words), str(e.value)


# --- gemm ----------------------------------------------------------------------------------------------

@given(nm_cases(), st.sampled_from(("check", "wrap", "saturate")), st.booleans())
def test_gemm_equals_dense_when_nothing_overflows(c, overflow, acc64):
    acc_bits = 64 if acc64 else required_acc_bits(
        max_k=c.rows * c.block, keep=c.keep, block=c.block, act_bits=c.act_bits, act_signed=c.act_signed,
        weight_bits=c.weight_bits)
    values, indices = compress_nm(c.W, keep=c.keep, block=c.block)
    C = gemm_nm(c.A, values, indices, block=c.block, acc_bits=acc_bits, overflow=overflow,
                act_bits=c.act_bits, act_signed=c.act_signed, weight_bits=c.weight_bits)
    assert C.dtype == np.int64
    np.testing.assert_array_equal(C, c.A @ c.W)


@given(nm_cases(), st.integers(1, 12), st.sampled_from(("check", "wrap")))
def test_gemm_wraps(c, acc_bits, overflow):
    values, indices = compress_nm(c.W, keep=c.keep, block=c.block)
    C = gemm_nm(c.A, values, indices, block=c.block, acc_bits=acc_bits, overflow=overflow)
    half = 2 ** (acc_bits - 1)
    np.testing.assert_array_equal(C, (c.A @ c.W + half) % (2 * half) - half)


def test_gemm_acc64_wraps_and_saturates():
    # two PE rows (block 1) of products +-2**62: the exact sums leave int64, references in Python ints
    A = np.array([[2**31, 2**31], [-(2**31), 2**31]], np.int64)
    values = np.array([[[2**31]], [[2**31]]], np.int64)
    indices = np.zeros((2, 1, 1), np.int64)
    exact = [2**62 + 2**62, -(2**62) + 2**62]
    wrapped = [(x + 2**63) % 2**64 - 2**63 for x in exact]
    assert wrapped == [-(2**63), 0]
    C = gemm_nm(A, values, indices, block=1, acc_bits=64, overflow="wrap")
    assert C[:, 0].tolist() == wrapped
    C = gemm_nm(A, values, indices, block=1, acc_bits=64, overflow="saturate")
    assert C[:, 0].tolist() == [2**63 - 1, 0]
    C = gemm_nm(-A, values, indices, block=1, acc_bits=64, overflow="saturate")
    assert C[:, 0].tolist() == [-(2**63), 0]


def test_gemm_saturate_clamps_per_pe_row():
    # acc_bits = 8: partial sums clamp to [-128, 127] after each PE row's add.
    sat = lambda A, W, block, keep: gemm_nm(np.array(A), *compress_nm(np.array(W), keep=keep, block=block),
                                            block=block, acc_bits=8, overflow="saturate")[:, 0].tolist()
    # block 1: row sums +200 then -100 -> clamp(200) = 127, 127 - 100 = 27 (exact sum would be 100)
    assert sat([[100, 100]], [[2], [-1]], 1, 1) == [27]
    # reversed order: -100 then +200 -> 100, nothing clamps
    assert sat([[100, 100]], [[-1], [2]], 1, 1) == [100]
    # negative: -200 then +100 -> clamp(-200) = -128, -128 + 100 = -28
    assert sat([[100, 100]], [[-2], [1]], 1, 1) == [-28]
    # dense 2:2, two PE rows: row 0 = 120*2 + 120*(-1) = 120 in full precision (no clamp inside a row),
    # row 1 = 50*1 + 0 -> 120 + 50 = 170 -> 127
    assert sat([[120, 120, 50, 0]], [[2], [-1], [1], [0]], 2, 2) == [127]


def test_gemm_range_and_shape_checks():
    values, indices = compress_nm(np.array([[1], [0], [-128], [0]]), keep=2, block=2)
    A = np.zeros((1, 4), np.int64)
    ok = dict(block=2, acc_bits=16, act_bits=8, weight_bits=8)
    gemm_nm(A, values, indices, **ok)
    for bad_A, signed, words in [(128, True, ("activation", "128", "[-128, 127]")),
                                 (-129, True, ("activation", "-129", "[-128, 127]")),
                                 (256, False, ("activation", "256", "[0, 255]")),
                                 (-1, False, ("activation", "-1", "[0, 255]"))]:
        A[0, 3] = bad_A
        with pytest.raises(ValueError) as e:
            gemm_nm(A, values, indices, act_signed=signed, **ok)
        assert all(w in str(e.value) for w in words), str(e.value)
    A[0, 3] = 0
    with pytest.raises(ValueError, match=r"weight.*-128.*\[-64, 63\]"):
        gemm_nm(A, values, indices, **{**ok, "weight_bits": 7})
    with pytest.raises(ValueError, match="K=3"):
        gemm_nm(A[:, :3], values, indices, **ok)
    with pytest.raises(ValueError, match="shape"):
        gemm_nm(A, values, indices[:, :, :1], **ok)
    with pytest.raises(ValueError, match="indices"):
        gemm_nm(A, values, indices + 1, **ok)
    with pytest.raises(ValueError, match="overflow"):
        gemm_nm(A, values, indices, overflow="clip", **ok)
    with pytest.raises(ValueError, match="acc_bits"):
        gemm_nm(A, values, indices, **{**ok, "acc_bits": 65})


# --- zero skips, stimulus ------------------------------------------------------------------------------

@pytest.mark.parametrize("block", BLOCKS)
def test_zero_skips_matches_loop(rng, block):
    for _ in range(5):
        keep, rows, cols, m = int(rng.integers(1, block + 1)), int(rng.integers(1, 4)), int(rng.integers(1, 5)), \
            int(rng.integers(0, 6))
        W = random_nm_weights(rng, k=rows * block, n=cols, keep=keep, block=block, weight_bits=4, density=0.5)
        A = random_acts(rng, m=m, k=rows * block, act_bits=3, act_signed=bool(rng.integers(2)), zero_fraction=0.4)
        _, indices = compress_nm(W, keep=keep, block=block)
        expected = sum(A[i, r * block + indices[r, n, j]] == 0
                       for i in range(m) for r in range(rows) for n in range(cols) for j in range(keep))
        assert zero_skips(A, indices, block=block) == expected


def test_random_stimulus_ranges(rng):
    W = random_nm_weights(rng, k=64, n=64, keep=2, block=4, weight_bits=6, density=0.75)
    assert W.min() == -32 and W.max() == 31
    assert (np.count_nonzero(W.reshape(16, 4, 64), axis=1) <= 2).all()
    assert {0, 1, 2} <= set(np.count_nonzero(W.reshape(16, 4, 64), axis=1).ravel().tolist())
    for signed, lo, hi in [(True, -8, 7), (False, 0, 15)]:
        A = random_acts(rng, m=64, k=64, act_bits=4, act_signed=signed)
        assert A.dtype == np.int64 and A.min() == lo and A.max() == hi
        assert 0.15 < np.mean(A == 0) < 0.45


# --- accumulator width ---------------------------------------------------------------------------------

def brute_acc_bits(terms, act_bits, act_signed, weight_bits):
    acts = range(-(2 ** (act_bits - 1)), 2 ** (act_bits - 1)) if act_signed else range(2**act_bits)
    products = sorted({a * w for a in acts for w in range(-(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1))})
    sums = {sum(p) for p in itertools.combinations_with_replacement(products, terms)}
    return next(n for n in itertools.count(1) if all(-(2 ** (n - 1)) <= s < 2 ** (n - 1) for s in sums))


@pytest.mark.parametrize("act_bits, act_signed, weight_bits",
                         [(a, s, w) for a in (2, 3) for s in (True, False) for w in (2, 3)])
@pytest.mark.parametrize("max_k, keep, block, terms", [
    (1, 1, 1, 1), (2, 1, 1, 2), (4, 2, 4, 2), (5, 1, 4, 2), (3, 3, 4, 3), (8, 1, 2, 4)])
def test_required_acc_bits_brute_force(act_bits, act_signed, weight_bits, max_k, keep, block, terms):
    got = required_acc_bits(max_k=max_k, keep=keep, block=block, act_bits=act_bits, act_signed=act_signed,
                            weight_bits=weight_bits)
    assert got == brute_acc_bits(terms, act_bits, act_signed, weight_bits)


def test_required_acc_bits_known_values():
    # 8x8 array, 2:4, int8: 16 products of at most 2**14 -> 2**18 needs 20 bits
    assert required_acc_bits(max_k=32, keep=2, block=4, act_bits=8, act_signed=True, weight_bits=8) == 20
    # uint8 x int8: min product -255*128; 16 of them = -522240 >= -2**19 -> 20 bits
    assert required_acc_bits(max_k=32, keep=2, block=4, act_bits=8, act_signed=False, weight_bits=8) == 20
    # widest: 2**20 int16 x int16 products, dense -> 2**20 * 2**30 = 2**50 needs 52 bits
    assert required_acc_bits(max_k=2**20, keep=16, block=16, act_bits=16, act_signed=True, weight_bits=16) == 52
    assert isinstance(required_acc_bits(max_k=1, keep=1, block=1, act_bits=2, act_signed=True, weight_bits=2), int)


# --- cycle model ---------------------------------------------------------------------------------------

def test_perf_model():
    cfg = SimpleNamespace(rows=2, cols=2, keep=2)   # the README timing diagram
    assert latency(cfg) == 4 and load_cycles(cfg) == 2
    assert stream_cycles(cfg, 0) == 0 and stream_cycles(cfg, 3) == 7
    assert job_cycles(cfg, 3) == 9                   # weights in cycles 0-1, acts 2-4, results 6-8
    assert macs(cfg, 3) == 24
    for rows, cols, m in itertools.product((1, 3, 64), (1, 5, 64), (1, 2, 100)):
        cfg = SimpleNamespace(rows=rows, cols=cols, keep=1)
        assert latency(cfg) > 0
        assert job_cycles(cfg, m) == rows + m + rows + cols
    with pytest.raises(ValueError):
        stream_cycles(cfg, -1)
