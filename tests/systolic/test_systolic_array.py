"""SparseSystolicArray in the Amaranth simulator: bit-exact results, weight reloads, backpressure, cycle model."""

import random

import numpy as np
import pytest

from gen.systolic.config import SystolicConfig
from gen.systolic.verilog import build as build_array
from hw.systolic import beats
from sim.systolic import golden
from gen.systolic import perf
from sim.common.amaranth_bench import Bench, bound
from sim.common.amaranth_streams import get_all, put_all

CONFIGS = {
    "2x3_2of4_s8": SystolicConfig(rows=2, cols=3, keep=2, block=4),
    "2x2_dense1_u8": SystolicConfig(rows=2, cols=2, keep=1, block=1, act_signed=False),
    "3x2_1of4_sat12": SystolicConfig(rows=3, cols=2, keep=1, block=4, acc_bits=12, overflow="saturate"),
    "1x1_4of4_wrap10": SystolicConfig(rows=1, cols=1, keep=4, block=4, acc_bits=10, overflow="wrap"),
    "2x3_2of4_s8_p1": SystolicConfig(rows=2, cols=3, keep=2, block=4, pe_pipeline=1),
    "3x2_1of4_sat12_p2": SystolicConfig(rows=3, cols=2, keep=1, block=4, acc_bits=12, overflow="saturate",
                                        pe_pipeline=2),
    "2x2_4of4_wrap12_p4": SystolicConfig(rows=2, cols=2, keep=4, block=4, acc_bits=12, overflow="wrap",
                                         pe_pipeline=4),
}


def make_jobs(cfg, rng, n_jobs, m_range):
    """Random (W, A) pairs obeying the config, extremes included."""
    jobs = []
    for _ in range(n_jobs):
        W = golden.random_nm_weights(rng, k=cfg.k, n=cfg.cols, keep=cfg.keep, block=cfg.block,
                                     weight_bits=cfg.weight_bits)
        A = golden.random_acts(rng, m=int(rng.integers(*m_range)), k=cfg.k, act_bits=cfg.act_bits,
                               act_signed=cfg.act_signed)
        jobs.append((W, A))
    return jobs


def simulate(cfg, jobs, *, seed, gap, stall):
    """Load each job's weights then stream its activations; return results, transfer cycles and counters."""
    dut = build_array(cfg)
    prng, crng = random.Random(seed), random.Random(seed + 1)
    total = sum(len(A) for _, A in jobs)
    log = {"w": [], "a": []}
    out = {}
    # ideal host: each load follows the previous job's last row directly (no drain), then the last job drains
    model = sum(perf.load_cycles(cfg) + len(A) for _, A in jobs) + perf.latency(cfg)
    bench = Bench(dut, within=bound(model, gap=gap, stall=stall), model=model)

    async def producer(ctx):
        now = 0
        for W, A in jobs:
            values, indices = golden.compress_nm(W, keep=cfg.keep, block=cfg.block)
            cyc, now = await put_all(ctx, dut.weights, beats.weight_beats(cfg, values, indices),
                                     rng=prng, gap=gap, start=now, bench=bench)
            log["w"].append(cyc)
            cyc, now = await put_all(ctx, dut.acts, beats.act_beats(cfg, A), rng=prng, gap=gap, start=now,
                                     bench=bench)
            log["a"].append(cyc)

    async def consumer(ctx):
        out["words"], out["cycles"], out["stalls"] = await get_all(ctx, dut.results, total, rng=crng, stall=stall,
                                                                   bench=bench)
        await ctx.tick()   # counters update at the edge of the last transfer
        out["counters"] = {name: ctx.get(getattr(dut, name))
                           for name in ("cycles", "busy_cycles", "stall_cycles", "zero_skips")}

    bench.add(producer)
    bench.add(consumer)
    bench.run()
    return out, log


def expected(cfg, jobs):
    results = [golden.array_job(cfg, W, A) for W, A in jobs]
    C, skips = [r[2] for r in results], sum(r[3] for r in results)
    return np.concatenate(C), skips


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("gap,stall", [(0.0, 0.0), (0.3, 0.4)], ids=["streaming", "gaps+backpressure"])
def test_array_bit_exact(name, gap, stall, seed):
    cfg = CONFIGS[name]
    jobs = make_jobs(cfg, np.random.default_rng(seed), n_jobs=3, m_range=(1, 12))
    out, log = simulate(cfg, jobs, seed=seed, gap=gap, stall=stall)
    C, skips = expected(cfg, jobs)
    got = beats.results_from_beats(cfg, out["words"])
    assert got.shape == C.shape, f"{got.shape[0]} result rows, expected {C.shape[0]}"
    for m in range(len(C)):
        assert np.array_equal(got[m], C[m]), f"result row {m}: got {got[m]}, expected {C[m]}"
    counters = out["counters"]
    assert counters["zero_skips"] == skips
    assert counters["cycles"] == out["cycles"][-1] + 2   # counted from reset, read one tick after the last transfer
    assert counters["busy_cycles"] <= counters["cycles"]
    if gap == 0 and stall == 0:
        acts = [c for cyc in log["a"] for c in cyc]
        assert [r - a for r, a in zip(out["cycles"], acts)] == [perf.latency(cfg)] * len(acts)
        # A reload needs no drain: the first weight beat follows the last activation row directly.
        for prev_acts, weights in zip(log["a"], log["w"][1:]):
            assert weights == list(range(prev_acts[-1] + 1, prev_acts[-1] + 1 + perf.load_cycles(cfg)))
    assert counters["stall_cycles"] == out["stalls"]


@pytest.mark.parametrize("name", CONFIGS)
def test_array_cycles_match_closed_form(name, seed):
    cfg = CONFIGS[name]
    jobs = make_jobs(cfg, np.random.default_rng(seed), n_jobs=1, m_range=(20, 21))
    out, log = simulate(cfg, jobs, seed=seed, gap=0.0, stall=0.0)
    m = len(jobs[0][1])
    assert out["cycles"][-1] - log["w"][0][0] + 1 == perf.job_cycles(cfg, m)
    assert out["cycles"][-1] - log["a"][0][0] + 1 == perf.stream_cycles(cfg, m)
    assert out["counters"]["busy_cycles"] == perf.stream_cycles(cfg, m)
    assert out["counters"]["stall_cycles"] == 0


@pytest.mark.parametrize("name", CONFIGS)
def test_acts_wait_for_a_started_load(name, seed):
    """Activations offered while a load is part-way (weight beats with gaps) wait and meet the new weights."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    (W, A), = make_jobs(cfg, rng, n_jobs=1, m_range=(5, 6))
    values, indices, C, _ = golden.array_job(cfg, W, A)
    dut = build_array(cfg)
    wrng = random.Random(seed)
    log = {}
    model = perf.job_cycles(cfg, len(A))
    bench = Bench(dut, within=bound(model, gap=0.9), model=model)

    async def weights(ctx):
        log["w"], _ = await put_all(ctx, dut.weights, beats.weight_beats(cfg, values, indices), rng=wrng, gap=0.9,
                                    bench=bench)

    async def acts(ctx):
        # start once the load has begun
        now = await bench.until(ctx, dut.weights.valid & dut.weights.ready, what="the first weight beat")
        log["a"], _ = await put_all(ctx, dut.acts, beats.act_beats(cfg, A), start=now, bench=bench)

    async def results(ctx):
        log["r"], _, _ = await get_all(ctx, dut.results, len(A), bench=bench)

    for testbench in (weights, acts, results):
        bench.add(testbench)
    bench.run()
    assert np.array_equal(beats.results_from_beats(cfg, log["r"]), C)
    assert log["a"][0] > log["w"][-1], "an activation row was accepted before the load completed"
