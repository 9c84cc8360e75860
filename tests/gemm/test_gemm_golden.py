"""GEMM engine golden model, host driver and cycle model: checked against plain reference computations."""

import dataclasses

import numpy as np
import pytest

from amaranth.lib import data

from gen.gemm.config import GemmConfig
from hw import bits
from hw.gemm.beats import desc_layout
from sim.gemm.driver import gemm_result, plan_descriptor, plan_gemm, result_words
from sim.gemm import golden
from sim.systolic.golden import random_acts, random_nm_weights
from gen.gemm import perf

CFG = GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=20, max_m=9, max_k=50, max_n=11)


def rand(cfg, rng, m, k, n, density=0.8):
    kp = -(-k // cfg.block) * cfg.block
    W = random_nm_weights(rng, k=kp, n=n, keep=cfg.keep, block=cfg.block, weight_bits=cfg.weight_bits,
                          density=density)[:k]
    return random_acts(rng, m=m, k=k, act_bits=cfg.act_bits, act_signed=cfg.act_signed), W


def wrap(x, bits_):
    x = int(x) & ((1 << bits_) - 1)
    return x - (1 << bits_) if x >> (bits_ - 1) else x


def test_gemm_wrap_is_the_wrapped_product(seed):
    rng = np.random.default_rng(seed)
    cfg = dataclasses.replace(CFG, acc_bits=12, overflow="wrap")
    for _ in range(5):
        A, W = rand(cfg, rng, *(int(rng.integers(1, t + 1)) for t in (cfg.max_m, cfg.max_k, cfg.max_n)))
        exact = A @ W
        want = np.vectorize(lambda v: wrap(v, 12))(exact)
        assert np.array_equal(golden.gemm_engine(cfg, A, W), want)


def test_gemm_saturate_clamps_per_pe_row_and_k_tile(seed):
    """Loop reference: each tile's PE rows add in order with a clamp, then each K-tile adds with a clamp."""
    rng = np.random.default_rng(seed)
    cfg = dataclasses.replace(CFG, acc_bits=10, overflow="saturate")
    lo, hi = -512, 511
    A, W = rand(cfg, rng, 4, 37, 5, density=1.0)
    K, N = 37, 5
    want = np.zeros((4, N), np.int64)
    for m in range(4):
        for n in range(N):
            acc = None
            for k0 in range(0, K, cfg.k):
                psum = 0
                for r0 in range(k0, k0 + cfg.k, cfg.block):
                    part = sum(int(A[m, i]) * int(W[i, n]) for i in range(r0, min(r0 + cfg.block, K)))
                    psum = min(max(psum + part, lo), hi)
                acc = psum if acc is None else min(max(acc + psum, lo), hi)
            want[m, n] = acc
    assert np.array_equal(golden.gemm_engine(cfg, A, W), want)


@pytest.mark.parametrize("x,shift,relu,out,want", [
    (5, 1, False, 8, 3), (-5, 1, False, 8, -2), (4, 1, False, 8, 2), (-4, 2, False, 8, -1), (-6, 2, False, 8, -1),
    (7, 0, False, 8, 7), (1000, 2, False, 8, 127), (-1000, 2, False, 8, -128), (-1000, 2, True, 8, 0),
    (-3, 0, True, None, 0), (300, 1, False, 9, 150), (2**19 - 1, 19, False, 8, 1),
])
def test_requantize_spec_cases(x, shift, relu, out, want):
    assert golden.requantize(np.array([x]), relu=relu, out_bits=out, shift=shift)[0] == want


def test_mac_counts_match_a_loop(seed):
    rng = np.random.default_rng(seed)
    cfg = CFG
    A, W = rand(cfg, rng, 5, 13, 4, density=0.7)
    A[:, 2] = 0
    values, indices = golden.padded_weights(cfg, W)
    macs = skips = 0
    for r in range(values.shape[0]):
        for n in range(4):
            for j in range(cfg.keep):
                pos = r * cfg.block + indices[r, n, j]
                if pos < 13:
                    z = int(np.count_nonzero(A[:, pos] == 0))
                    skips, macs = skips + z, macs + 5 - z
    assert golden.mac_counts(cfg, A, W) == (macs, skips)


def test_driver_beats_round_trip(seed):
    rng = np.random.default_rng(seed)
    cfg = dataclasses.replace(CFG, out_bits=8, relu=True)
    A, W = rand(cfg, rng, 7, 19, 8)
    job = plan_gemm(cfg, A, W, shift=3)
    kt, nt = golden.tiles(cfg, 19, 8)
    assert (job.k_tiles, job.n_tiles) == (kt, nt) == (3, 3)
    assert len(job.weights) == kt * nt * cfg.rows and len(job.acts) == kt * nt * 7
    fields = bits.unpack(data.ArrayLayout(desc_layout(cfg), 1), [job.desc])
    assert {name: int(v[0, 0]) for name, v in fields.items()} == {"m": 7, "k": 19, "n": 8, "shift": 3}
    C = golden.gemm_engine(cfg, A, W, 3)
    words = result_words(cfg, job, C)
    assert len(words) == job.result_beats == nt * 7
    assert np.array_equal(gemm_result(cfg, job, words), C)
    # the activation beats of N-tile 1 repeat those of N-tile 0; lanes past K are zero
    assert job.acts[kt * 7:2 * kt * 7] == job.acts[:kt * 7]
    assert all(w >> ((19 - 2 * cfg.k) * cfg.act_bits) == 0 for w in job.acts[2 * 7:3 * 7])


@pytest.mark.parametrize("mutate,match", [
    (lambda A, W: (A[:0], W), r"M = 0 is out of range"),
    (lambda A, W: (np.zeros((10, 4), int), W), r"M = 10 is out of range .* allowed 1 … 9"),
    (lambda A, W: (A[:, :3], W), r"A's columns must equal W's rows"),
    (lambda A, W: (np.where(np.arange(4) == 1, 200, A), W), r"A\[0, 1\] = 200 is out of range: allowed 8-bit signed"),
    (lambda A, W: (A, np.where(np.arange(5)[None] == 2, -129, W)), r"W\[0, 2\] = -129"),
    (lambda A, W: (A, np.ones_like(W)), r"W column 0, K-block 0 \(rows 0..3\) has 4 non-zeros"),
    (lambda A, W: (A.astype(float), W), r"A = array of dtype float64 is not integer: allowed an integer array"),
])
def test_driver_rejects_bad_input(mutate, match, seed):
    rng = np.random.default_rng(seed)
    A, W = rand(CFG, rng, 3, 4, 5)
    A2, W2 = mutate(A, W)
    with pytest.raises(TypeError if "dtype" in match else ValueError, match=match):
        plan_gemm(CFG, A2, W2)


def test_driver_rejects_bad_dims_and_shift():
    with pytest.raises(ValueError, match=r"K = 51 is out of range .* allowed 1 … 50 \(max_k\)"):
        plan_descriptor(CFG, 1, 51, 1)
    with pytest.raises(ValueError, match=r"N = 0 is out of range"):
        plan_descriptor(CFG, 1, 1, 0)
    with pytest.raises(ValueError, match=r"shift = 2: .* no requantization"):
        plan_descriptor(CFG, 1, 1, 1, 2)
    with pytest.raises(ValueError, match=r"shift = 20 is out of range: allowed 0 … 19"):
        plan_descriptor(dataclasses.replace(CFG, out_bits=8), 1, 1, 1, 20)
    assert plan_descriptor(CFG, 0, 1, 1, check=False) != plan_descriptor(CFG, 1, 1, 1)


def test_sparse_weights_violation_names_the_block_past_the_first_tile():
    W = np.zeros((20, 5), int)
    W[8:11, 4] = 1               # K-block 2 of column 4: 3 non-zeros, 2:4 allows 2
    with pytest.raises(ValueError, match=r"W column 4, K-block 2 \(rows 8..11\) has 3 non-zeros"):
        plan_gemm(CFG, np.zeros((1, 20), int), W)


def test_cycle_model_closed_form_equals_recurrence(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        m, k, n = (int(rng.integers(1, t + 1)) for t in (CFG.max_m, CFG.max_k, CFG.max_n))
        p = perf.predict(CFG, [(m, k, n)])
        assert perf.job_cycles(CFG, m, k, n) == p.cycles
        assert p.busy_cycles == perf.ideal_cycles(CFG, m, k, n)
        kt, nt = perf.tiles(CFG, k, n)
        assert p.stall_weight == CFG.rows + (kt * nt - 1) * max(0, CFG.rows + 1 - m)
        assert len(p.result_cycles) == m * nt


def test_cycle_model_back_to_back_jobs_have_no_bubbles():
    jobs = [(5, 9, 4), (3, 20, 7), (4, 1, 1)]                   # every M > rows = 2
    p = perf.predict(CFG, jobs)
    tiles = [kt * nt for kt, nt in (perf.tiles(CFG, k, n) for _, k, n in jobs)]
    rows = [m for (m, _, _), t in zip(jobs, tiles) for _ in range(t)]
    assert p.row_starts == [CFG.rows + 1 + sum(rows[:i]) for i in range(len(rows))]
    assert p.stall_weight == CFG.rows and p.jobs_done == 3
    assert p.cycles == CFG.rows + 1 + sum(rows) + CFG.latency


def test_cycle_model_weight_port_hand_derived():
    """rows = 2, so the weight buffer holds D = 4 beats. M = 5, K = 48: six K-tiles of 2 beats; the loader takes
    them from s = 1, 4, 9, 14, 19, 24 (s_t = max(s_{t-1} + 2, a_{t-1} + 1), a_t = max(s_t + 2, a_{t-1} + 5):
    a = 3, 8, 13, ...), i.e. beats in w = 1 2 4 5 9 10 14 15 19 20 24 25. The port takes beats 0-3 in cycles 0-3,
    then beat j in max(p_{j-1} + 1, w_{j-4} + 1): 4, 5, 6, 7, max(8, 10) = 10, max(11, 11) = 11, max(12, 15) = 15,
    max(16, 16) = 16."""
    p = perf.predict(CFG, [(5, 48, 3)])
    assert p.loads == [1, 4, 9, 14, 19, 24]
    assert p.weight_accepts == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 15, 16]


def test_cycle_model_rows_offered_late():
    """A host whose first row comes in cycle 6 (after the 6 weight beats of a 3-tile job) instead of 3 = s_0 + rows:
    with M = 5 > rows every later cycle moves by 3, and the engine counts the 3 cycles it waited as input stalls."""
    ideal, late = perf.predict(CFG, [(5, 17, 3)]), perf.predict(CFG, [(5, 17, 3)], acts_from=6)
    assert late.weight_accepts == ideal.weight_accepts == list(range(6))
    assert late.row_starts == [a + 3 for a in ideal.row_starts] and late.row_starts[0] == 6
    assert late.result_cycles == [r + 3 for r in ideal.result_cycles]
    assert late.cycles == perf.job_cycles(CFG, 5, 17, 3) + 3
    assert (late.stall_input, late.stall_weight) == (3, ideal.stall_weight)
    assert perf.predict(CFG, [(5, 17, 3)], acts_from=2) == ideal          # rows offered before they are wanted


def test_os_cycle_model_weight_beats_are_the_steps():
    os_cfg = dataclasses.replace(CFG, dataflow="os")
    p = perf.predict(os_cfg, [(3, 9, 3), (4, 1, 1)])
    # (3, 9, 3): 2 M-tiles × 1 N-tile of S = 3 steps, rows = 2: 1 2 3 | 4 5 6; (4, 1, 1): 2 tiles of one held step
    assert p.weight_accepts == [1, 2, 3, 4, 5, 6, 8, 10]
    with pytest.raises(ValueError, match="acts_from = 1"):
        perf.predict(os_cfg, [(3, 9, 3)], acts_from=1)


def test_cycle_model_rejects_out_of_range():
    with pytest.raises(ValueError, match="K = 51 is out of range"):
        perf.predict(CFG, [(1, 51, 1)])


OS_CFG = dataclasses.replace(CFG, dataflow="os")


def test_os_gemm_saturate_clamps_per_k_block_in_one_chain(seed):
    """Loop reference for the output-stationary engine: one clamp after every K-block over the whole K (no
    K-tile boundary), and a case where that differs from the weight-stationary K-tile order."""
    rng = np.random.default_rng(seed)
    cfg = dataclasses.replace(OS_CFG, acc_bits=10, overflow="saturate")
    lo, hi = -512, 511
    A, W = rand(cfg, rng, 4, 37, 5, density=1.0)
    want = np.zeros((4, 5), np.int64)
    for m in range(4):
        for n in range(5):
            acc = 0
            for r0 in range(0, 37, cfg.block):
                acc = min(max(acc + sum(int(A[m, i]) * int(W[i, n]) for i in range(r0, min(r0 + cfg.block, 37))),
                              lo), hi)
            want[m, n] = acc
    assert np.array_equal(golden.gemm_engine(cfg, A, W), want)
    # K-tile 0 saturates high; K-tile 1 (k = 8) adds +1·100 then −1·100: WS sums the tile first (0), OS clamps
    A1 = np.full((1, 16), 100)
    W1 = np.zeros((16, 1), np.int64)
    W1[[0, 4], 0] = 100, 100          # 2 × 10 000 saturates at 511 in both
    W1[8, 0], W1[12, 0] = 1, -1
    assert golden.gemm_engine(cfg, A1, W1)[0, 0] == 511 - 100
    assert golden.gemm_engine(dataclasses.replace(cfg, dataflow="ws"), A1, W1)[0, 0] == 511


def test_os_gemm_wrap_equals_ws(seed):
    rng = np.random.default_rng(seed)
    cfg = dataclasses.replace(OS_CFG, acc_bits=12, overflow="wrap", relu=True, out_bits=6)
    A, W = rand(cfg, rng, 9, 41, 11)
    assert np.array_equal(golden.gemm_engine(cfg, A, W, 3),
                          golden.gemm_engine(dataclasses.replace(cfg, dataflow="ws"), A, W, 3))


def test_os_driver_beats(seed):
    """OS beats: per N-tile, per M-tile, ⌈K/block⌉ joined steps; the beats are the OS core's formats (weights
    without the core's `last` bit); results in the WS order."""
    from hw.gemm import os_beats

    rng = np.random.default_rng(seed)
    cfg = dataclasses.replace(OS_CFG, out_bits=8, relu=True)
    A, W = rand(cfg, rng, 5, 19, 8)
    job = plan_gemm(cfg, A, W, shift=3)
    steps, mt, nt = perf.os_tiles(cfg, 5, 19, 8)
    assert (steps, mt, nt) == (5, 3, 3) and job.tile_beats == (steps,) * (mt * nt)
    assert len(job.acts) == len(job.weights) == steps * mt * nt
    values, indices, last = os_beats.os_weights_from_beats(cfg, job.weights[:steps])
    want_v, want_i = golden.padded_weights(cfg, W)
    assert np.array_equal(values, want_v[:steps, :cfg.cols]) and np.array_equal(indices, want_i[:steps, :cfg.cols])
    assert not last.any()
    # activation beat (nn, mm = 2, t = 4): rows 4 (real) and 5 (padding), K positions 16..19 (19 past K)
    Ap = np.zeros((6, 20), np.int64)
    Ap[:5, :19] = A
    assert job.acts[2 * steps + 4] == os_beats.os_act_beats(cfg, Ap[4:6, 16:20])[0]
    assert job.acts[mt * steps:2 * mt * steps] == job.acts[:mt * steps]        # A repeats per N-tile
    C = golden.gemm_engine(cfg, A, W, 3)
    assert job.result_beats == nt * 5
    assert np.array_equal(gemm_result(cfg, job, result_words(cfg, job, C)), C)


def test_os_cycle_model_closed_form_equals_recurrence(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        m, k, n = (int(rng.integers(1, t + 1)) for t in (OS_CFG.max_m, OS_CFG.max_k, OS_CFG.max_n))
        p = perf.predict(OS_CFG, [(m, k, n)])
        steps, mt, nt = perf.os_tiles(OS_CFG, m, k, n)
        assert perf.job_cycles(OS_CFG, m, k, n) == p.cycles
        assert p.busy_cycles == perf.ideal_cycles(OS_CFG, m, k, n) == steps * mt * nt
        assert p.stall_weight == (mt * nt - 1) * max(0, OS_CFG.rows - steps)
        assert len(p.result_cycles) == m * nt


def test_os_cycle_model_spot_values():
    """Hand-derived from the spec: 2×3 OS, 2:4 (block 4)."""
    # M = 3, K = 9, N = 3: 3 steps, 2 M-tiles, 1 N-tile; l_0 = 3, l_1 = 6; rows at l + cols + 1 + i
    p = perf.predict(OS_CFG, [(3, 9, 3)])
    assert p.row_starts == [1, 4] and p.result_cycles == [7, 8, 10] and p.cycles == 11
    # K = 1: 1 step per tile, the last steps wait for the output: l_0 = 1, l_1 = 3; stall 1
    p = perf.predict(OS_CFG, [(4, 1, 1)])
    assert p.result_cycles == [5, 6, 7, 8] and p.stall_weight == 1
