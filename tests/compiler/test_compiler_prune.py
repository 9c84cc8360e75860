"""Pruning (gen/compiler/prune.py), quantization (quantize.py), bit-sparse rounding and N:M packing (nm.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.compiler.bit_squeeze import bit_sparse_round, nonzero_slices
from gen.compiler.nm import check_nm, pack_nm
from gen.compiler.prune import as_matrix, from_matrix, magnitude, nm, ou_structured, parse_prune, pattern, prune, sense
from gen.compiler.quantize import dequantize, quantize_symmetric, ternarize
from hw.formats.nm import decompress_nm

shapes = st.one_of(st.tuples(st.integers(1, 9), st.integers(1, 40)),
                   st.tuples(st.integers(1, 9), st.integers(1, 5), st.sampled_from([1, 3]), st.sampled_from([1, 3])))


def weights(shape, seed):
    return np.random.default_rng(seed).laplace(size=shape)


@settings(max_examples=60)
@given(shape=shapes, ratio=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_magnitude_reaches_ratio_and_keeps_the_largest(shape, ratio, seed):
    w = weights(shape, seed)
    mask, report = magnitude(w, ratio)
    assert mask.shape == w.shape
    assert (~mask).sum() == round(ratio * w.size)
    assert report["sparsity"] == pytest.approx((~mask).sum() / w.size)
    if mask.any() and (~mask).any():
        assert np.abs(w[mask]).min() >= np.abs(w[~mask]).max()


@settings(max_examples=60)
@given(shape=shapes, block=st.integers(1, 8), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_nm_holds_along_the_reduction_dimension(shape, block, data, seed):
    keep = data.draw(st.integers(1, block))
    w = weights(shape, seed)
    mask, _ = nm(w, keep, block)
    m = as_matrix(mask)
    k = m.shape[0]
    padded = np.zeros((k + (-k % block), m.shape[1]), dtype=bool)
    padded[:k] = m
    per_block = padded.reshape(-1, block, m.shape[1]).sum(axis=1)
    full = np.minimum(keep, np.minimum(block, k - np.arange(per_block.shape[0]) * block))
    np.testing.assert_array_equal(per_block, np.broadcast_to(full[:, None], per_block.shape))
    # the kept weights are the largest of their block
    mw = np.abs(as_matrix(w))
    for r in range(per_block.shape[0]):
        rows = slice(r * block, min(k, r * block + block))
        kept, dropped = np.where(m[rows], mw[rows], np.inf), np.where(m[rows], -np.inf, mw[rows])
        assert (kept.min(axis=0) >= dropped.max(axis=0)).all()


@settings(max_examples=40)
@given(o=st.integers(1, 8), i=st.integers(1, 6), k=st.integers(1, 9), p=st.integers(1, 6),
       connectivity=st.sampled_from([0.0, 0.25]), seed=st.integers(0, 2**32 - 1))
def test_pattern_count_and_shape(o, i, k, p, connectivity, seed):
    w = weights((o, i, 3, 3), seed)
    mask, report = pattern(w, k, p, connectivity)
    kernels = mask.reshape(o * i, 9)
    alive = kernels.any(axis=1)
    assert (kernels[alive].sum(axis=1) == k).all()                      # every surviving kernel keeps k
    assert len({tuple(row) for row in kernels[alive]}) <= p             # at most P distinct patterns
    assert len(report["patterns"]) <= p and sum(report["pattern_counts"]) == alive.sum()
    assert (~alive).sum() == round(connectivity * o * i) == report["kernels_removed"]
    library = {tuple(np.array(pat).ravel().astype(bool)) for pat in report["patterns"]}
    assert {tuple(row) for row in kernels[alive]} <= library
    # each kernel took the library pattern that keeps the most of its magnitude
    mag = np.abs(w.reshape(o * i, 9))
    lib = np.array(sorted(library), dtype=float)
    best = (mag @ lib.T).max(axis=1)
    np.testing.assert_allclose((mag * kernels)[alive].sum(axis=1), best[alive])


@settings(max_examples=40)
@given(shape=shapes, ratio=st.floats(0, 1), ou_rows=st.integers(1, 5), group=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_ou_pruning_removes_whole_blocks_to_the_ratio(shape, ratio, ou_rows, group, seed):
    w = weights(shape, seed)
    mask, report = ou_structured(w, ratio, ou_rows, group)
    m = as_matrix(mask)
    assert report["sparsity"] >= ratio - 1e-9
    k, n = m.shape
    for r in range(0, k, ou_rows):
        for c in range(0, n, group):
            block = m[r:r + ou_rows, c:c + group]
            assert block.all() or not block.any()                        # whole OU blocks only
    # removing one block fewer would not reach the ratio
    if report["blocks_removed"]:
        smallest = min(min(ou_rows, k - r) * min(group, n - c) for r in range(0, k, ou_rows) for c in range(0, n, group))
        assert (~m).sum() - smallest < ratio * m.size + max(ou_rows * group, 1)


@settings(max_examples=30)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_sense_keeps_half_of_every_filter(shape, seed):
    mask, _ = sense(weights(shape, seed))
    m = as_matrix(mask)
    assert (m.sum(axis=0) == -(-m.shape[0] // 2)).all()


def test_prune_spec_parsing_and_errors():
    assert parse_prune("pattern:k=4,P=8") == ("pattern", {"k": 4, "P": 8})
    assert parse_prune("nm:2:4") == ("nm", {"keep": 2, "block": 4})
    assert parse_prune("magnitude:0.5") == ("magnitude", {"ratio": 0.5})
    assert parse_prune("none") == ("none", {})
    with pytest.raises(ValueError, match="method 'foo' is not known: allowed none, magnitude"):
        parse_prune("foo")
    with pytest.raises(ValueError, match=r"parameter 'q=1' is not allowed: allowed k=…, P=…, connectivity=…, group=…"):
        parse_prune("pattern:q=1")
    with pytest.raises(ValueError, match="needs ratio"):
        parse_prune("magnitude")
    with pytest.raises(ValueError, match="k = 'x' is not a int"):
        parse_prune("pattern:k=x")
    with pytest.raises(ValueError, match=r"ratio = 1.5 is out of range: allowed 0 … 1"):
        magnitude(np.ones((2, 2)), 1.5)
    with pytest.raises(ValueError, match="N:M keep = 5 is out of range: allowed 1 … 4"):
        nm(np.ones((2, 8)), 5, 4)
    with pytest.raises(ValueError, match="pattern k = 10 is out of range: allowed 1 … 9"):
        pattern(np.ones((2, 2, 3, 3)), 10)
    with pytest.raises(ValueError, match="needs conv weights"):
        pattern(np.ones((2, 9)))
    mask, report = prune(np.ones((4, 3)), "pattern", {"k": 4})          # not a 3×3 conv: left dense
    assert mask.all() and "skipped" in report


@settings(max_examples=60)
@given(shape=shapes, bits=st.sampled_from([4, 8]), seed=st.integers(0, 2**32 - 1))
def test_symmetric_quantization_round_trip(shape, bits, seed):
    w = weights(shape, seed)
    w[0] = 0                                                            # an all-zero channel
    q, scale = quantize_symmetric(w, bits)
    qmax = (1 << (bits - 1)) - 1
    assert q.dtype == np.int8 and np.abs(q).max() <= qmax
    assert scale.shape == (shape[0],) and (q[0] == 0).all()
    err = np.abs(dequantize(q, scale) - w)
    assert (err <= scale.reshape((-1,) + (1,) * (len(shape) - 1)) / 2 + 1e-12).all()
    assert (q[w == 0] == 0).all()
    peak = np.abs(q.reshape(shape[0], -1)).max(axis=1)
    assert (peak[1:] == qmax).all()                                     # every non-zero channel uses the full range


@settings(max_examples=40)
@given(shape=shapes, threshold=st.sampled_from([None, 0.0, 0.5, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_ternary(shape, threshold, seed):
    w = weights(shape, seed)
    q, scale = ternarize(w, threshold)
    assert set(np.unique(q)) <= {-1, 0, 1}
    t = 0.7 if threshold is None else threshold
    flat = np.abs(w).reshape(shape[0], -1)
    kept = flat > t * flat.mean(axis=1, keepdims=True)
    np.testing.assert_array_equal(q.reshape(shape[0], -1) != 0, kept)
    assert (np.sign(q) * np.sign(w) >= 0).all()
    expected = np.array([row[k].mean() if k.any() else 1.0 for row, k in zip(flat, kept)])
    np.testing.assert_allclose(scale, expected)


@settings(max_examples=60)
@given(w=st.lists(st.integers(-127, 127), min_size=1, max_size=50), error=st.integers(0, 5),
       cell_bits=st.sampled_from([1, 2, 4]))
def test_bit_sparse_round_picks_the_nearest_sparsest(w, error, cell_bits):
    w = np.array(w)
    r, report = bit_sparse_round(w, max_error=error, cell_bits=cell_bits)
    for a, b in zip(w, r):
        cands = [c for c in range(abs(a) - error, abs(a) + error + 1) if 0 <= c <= 127] if a else [0]
        cost = {c: int(nonzero_slices(np.array([c]), cell_bits=cell_bits)[0]) for c in cands}
        fewest = min(cost.values())
        best = min((abs(c - abs(a)), c) for c in cands if cost[c] == fewest)[1]
        if cost[abs(a)] == fewest:
            best = abs(a)                                               # only a strict improvement moves a weight
        assert b == np.sign(a) * best
    assert report["nonzero_slices_after"] == nonzero_slices(r, cell_bits=cell_bits).sum()


def test_pack_nm_names_the_position():
    w = np.zeros((8, 3), dtype=np.int64)                                # K × N matrix
    w[[0, 2], 1] = [5, -3]
    w[[4, 5, 6], 2] = [1, 2, 3]                                         # three non-zeros in K-block 1 of column 2
    with pytest.raises(ValueError, match=r"layer 'fc1': K row 6, column 2 \(K-block 1, rows 4…7\) holds non-zero 3 "
                                         r"of the block; 2:4 allows 2"):
        check_nm("fc1", w, keep=2, block=4, matrix=True)
    with pytest.raises(ValueError, match="weights must be integers"):
        check_nm("fc1", w.astype(float), keep=2, block=4, matrix=True)
    with pytest.raises(ValueError, match=r"layer 'c': N:M keep = 3 is out of range: allowed 1 … 2"):
        check_nm("c", w, keep=3, block=2, matrix=True)


@settings(max_examples=40)
@given(shape=shapes, seed=st.integers(0, 2**32 - 1))
def test_pack_nm_round_trips_pruned_layers(shape, seed):
    w = weights(shape, seed)
    mask, _ = nm(w, 2, 4)
    q, _ = quantize_symmetric(np.where(mask, w, 0), 8)
    values, indices = pack_nm("layer", q, keep=2, block=4)
    k = as_matrix(q).shape[0]
    assert values.shape == (-(-k // 4), shape[0], 2)
    dense = decompress_nm(values, indices, block=4)
    np.testing.assert_array_equal(dense[:k], as_matrix(q))
    assert not dense[k:].any()
    np.testing.assert_array_equal(from_matrix(dense[:k], q.shape), q)
