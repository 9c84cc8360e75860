"""Golden model, beat formats and cycle model of the output-stationary core (no simulator)."""

import numpy as np
import pytest

from hw import bits
from hw.gemm import os_beats
from sim.gemm import os_golden as golden
from gen.gemm import os_perf as perf
from sim.gemm.os_core import OSCoreParams

PARAMS = [
    OSCoreParams(rows=3, cols=2, keep=2, block=4),
    OSCoreParams(rows=2, cols=3, keep=1, block=4, act_signed=False, acc_bits=12, overflow="saturate"),
    OSCoreParams(rows=1, cols=4, keep=4, block=4, act_bits=6, weight_bits=5, acc_bits=10, overflow="wrap"),
    OSCoreParams(rows=4, cols=1, keep=1, block=1, acc_bits=9, overflow="saturate"),
]


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: p.top)
def test_os_tile_matches_scalar_reference(p, seed):
    rng = np.random.default_rng(seed)
    for t in (1, 2, 7):
        W, A = golden.random_os_tile(rng, p, t, density=0.8)
        values, indices, C, skips = golden.os_tile(p, W, A)
        assert values.shape == indices.shape == (t, p.cols, p.keep)
        assert np.array_equal(C, golden.os_reference(A, W, block=p.block, acc_bits=p.acc_bits, overflow=p.overflow))
        # zero skips: for every (i, t, j, slot), the activation the slot selects is zero
        sel = np.stack([A[:, tt * p.block + indices[tt]] for tt in range(t)])        # (T, rows, cols, keep)
        assert skips == int(np.count_nonzero(sel == 0))


def test_saturation_clamps_after_every_k_block():
    """100 + 100 − 100 in 8 bits: per-step clamping gives 127 − 100 = 27, not the exact 100."""
    p = OSCoreParams(rows=1, cols=1, keep=1, block=1, acc_bits=8, overflow="saturate")
    A, W = np.array([[100, 100, -100]]), np.array([[1], [1], [1]])
    assert golden.os_tile(p, W, A)[2].tolist() == [[27]]
    assert golden.os_reference(A, W, block=1, acc_bits=8, overflow="saturate").tolist() == [[27]]
    wrap = OSCoreParams(rows=1, cols=1, keep=1, block=1, acc_bits=8, overflow="wrap")
    assert golden.os_tile(wrap, W, A)[2].tolist() == [[100]]   # wrapping: the exact sum, wrapped once


def test_os_tile_rejects_bad_shapes():
    p = PARAMS[0]
    with pytest.raises(ValueError, match="A must have rows = 3"):
        golden.os_tile(p, np.zeros((4, 2), int), np.zeros((2, 4), int))
    with pytest.raises(ValueError, match=r"W must have shape \(K, cols\) = \(4, 2\)"):
        golden.os_tile(p, np.zeros((8, 2), int), np.zeros((3, 4), int))
    with pytest.raises(ValueError, match="K-block 0 .* has 4 non-zeros"):
        golden.os_tile(p, np.ones((4, 2), int), np.zeros((3, 4), int))


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: p.top)
def test_beats_round_trip(p, seed):
    rng = np.random.default_rng(seed)
    W, A = golden.random_os_tile(rng, p, 5)
    values, indices, C, _ = golden.os_tile(p, W, A)
    layouts = os_beats.os_layouts(p)
    acts = os_beats.os_act_beats(p, A)
    assert len(acts) == 5
    blocks = bits.unpack(layouts["acts"], acts)                                    # (T, rows, block)
    assert np.array_equal(blocks.transpose(1, 0, 2).reshape(p.rows, -1), A)
    words = os_beats.os_weight_beats(p, values, indices)
    assert all(w < (1 << layouts["weights"].size) for w in words)
    v, i, last = os_beats.os_weights_from_beats(p, words)
    assert np.array_equal(v, values) and np.array_equal(i, indices)
    assert last.tolist() == [0, 0, 0, 0, 1]
    assert np.array_equal(os_beats.os_results_from_beats(p, os_beats.os_result_beats(p, C)), C)


def test_weight_beat_layout_is_ws_entries_plus_last():
    p = OSCoreParams(rows=2, cols=3, keep=2, block=4)
    layout = os_beats.os_layouts(p)["weights"]
    assert layout["entries"].offset == 0
    assert layout["last"].offset == 3 * 2 * (8 + 2) and layout.size == 3 * 2 * 10 + 1


def test_beat_helpers_reject_bad_input():
    p = PARAMS[0]
    with pytest.raises(ValueError, match=r"A must have shape \(rows, T·block\)"):
        os_beats.os_act_beats(p, np.zeros((3, 6), int))
    with pytest.raises(ValueError, match="does not fit 8 signed bits"):
        os_beats.os_act_beats(p, np.full((3, 4), 128))
    with pytest.raises(ValueError, match=r"weights must have shape \(T ≥ 1, cols, keep\)"):
        os_beats.os_weight_beats(p, np.zeros((1, 3, 2), int), np.zeros((1, 3, 2), int))
    dense = PARAMS[2]
    with pytest.raises(ValueError, match="K-block 0, column 1, slot 0 must hold position 0"):
        idx = np.broadcast_to(np.arange(4), (1, 4, 4)).copy()
        idx[0, 1, 0] = 3
        os_beats.os_weight_beats(dense, np.zeros((1, 4, 4), int), idx)


def test_cycle_model():
    p = OSCoreParams(rows=4, cols=3, keep=2, block=4)
    assert perf.latency(p) == 4
    assert perf.tile_cycles(p, 10) == 17 == perf.stream_cycles(p, [10])
    assert perf.tile_cycles(p, 10) == perf.scalesim_os_fold(10, 4, 3) + 2
    assert [perf.tile_interval(p, t) for t in (1, 4, 9)] == [4, 4, 9]
    assert perf.last_step_cycles(p, [2, 1, 6, 5]) == [1, 5, 11, 16]
    assert perf.result_cycles(p, [2, 1]) == [5, 6, 7, 8, 9, 10, 11, 12]
    assert perf.stream_cycles(p, [2, 1, 6, 5]) == 16 + 3 + 1 + 4
    assert perf.stream_cycles(p, []) == 0
    assert perf.macs(p, 3) == 4 * 3 * 2 * 3
    with pytest.raises(ValueError, match="k_blocks >= 1"):
        perf.tile_cycles(p, 0)
