"""cocotb tests of a generated SparseSystolicArray (run by tests/systolic/test_systolic_array_cocotb.py).

Settings (:func:`sim.common.tbenv.settings`): the config, the stimulus seed, and the knobs ``rows`` (activation
rows per job) and ``bench`` (the JSON report file of the ``throughput`` benchmark, which runs only then).
"""

import json
import time

import cocotb

from gen.systolic.config import SystolicConfig
from gen.systolic import perf
from sim.common.tbenv import knob, settings
from sim.common.testbench import SOAK_GAP, SOAK_STALL, write_soak_report
from sim.systolic.tb import SystolicArrayTB


async def _start(dut, *, gap=0.0, stall=0.0):
    s = settings(SystolicConfig)
    tb = SystolicArrayTB(dut, s.config, seed=s.seed, gap=gap, stall=stall)
    await tb.start()
    return tb, s.config, s.knob("rows", 24)


@cocotb.test()
async def streaming_back_to_back(dut):
    """Three jobs streamed with no gaps and no backpressure: exact latency, no-drain reloads, job cycles."""
    tb, cfg, rows = await _start(dut)
    ms = [rows, 1, rows // 2 + 1]
    for m in ms:
        await tb.run_job(*tb.random_job(m))
    await tb.finish()
    acts, res, w = (tb.sources["acts"].handshake_cycles, tb.results.handshake_cycles,
                     tb.sources["weights"].handshake_cycles)
    assert [r - a for a, r in zip(acts, res)] == [perf.latency(cfg)] * len(acts), "latency differs from rows + cols"
    # Job 0 from its first weight beat to its last result is the closed form.
    assert res[ms[0] - 1] - w[0] + 1 == perf.job_cycles(cfg, ms[0])
    # Reloads need no drain: each load starts right after the previous job's last activation row.
    end = 0
    for i, m in enumerate(ms):
        load = w[i * cfg.rows:(i + 1) * cfg.rows]
        if i:
            assert load[0] == acts[end - 1] + 1, f"load {i} started at {load[0]}, last row at {acts[end - 1]}"
        assert acts[end] == load[-1] + 1, f"job {i}: first row {acts[end]} did not follow its load at {load[-1]}"
        end += m


@cocotb.test()
async def random_gaps_and_backpressure(dut):
    """Four jobs with random input gaps and output backpressure: every beat exact, none lost or duplicated."""
    tb, cfg, rows = await _start(dut, gap=0.3, stall=0.4)
    for m in (rows, 3, 1, rows):
        await tb.run_job(*tb.random_job(m, density=0.6))
    got = await tb.finish()
    assert got["stall_cycles"] > 0, "backpressure was never exercised"


@cocotb.test()
async def extremes_and_zeros(dut):
    """All-extreme activations and weights (wrap/saturate corners), then all-zero activations (every MAC skipped)."""
    tb, cfg, rows = await _start(dut, stall=0.2)
    W, A = tb.random_job(rows, density=1.0)
    a_lo, a_hi = (-(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1) if cfg.act_signed else (0, (1 << cfg.act_bits) - 1)
    w_lo = -(1 << (cfg.weight_bits - 1))
    W[W != 0] = w_lo
    A[:] = a_lo if cfg.act_signed else a_hi
    A[1::2] = a_hi
    await tb.run_job(W, A)
    await tb.run_job(W, A * 0)
    got = await tb.finish()
    assert got["zero_skips"] >= len(A) * cfg.rows * cfg.cols * cfg.keep


@cocotb.test(skip=not knob("bench", ""))
async def throughput(dut):
    """Benchmark: one load plus ``rows`` back-to-back rows; writes cycles and wall time as JSON to ``bench``."""
    tb, cfg, rows = await _start(dut)
    W, A = tb.random_job(rows)
    t0, c0 = time.perf_counter(), tb.counter.cycle
    await tb.run_job(W, A)
    await tb.finish()
    wall, cycles = time.perf_counter() - t0, tb.counter.cycle - c0
    w, res = tb.sources["weights"].handshake_cycles, tb.results.handshake_cycles
    with open(knob("bench", ""), "w") as f:
        json.dump({"m": rows, "job_cycles": res[-1] - w[0] + 1, "closed_form": perf.job_cycles(cfg, rows),
                   "sim_cycles": cycles, "wall_s": wall}, f)


@cocotb.test(skip=not knob("soak_beats", 0))
async def soak(dut):
    """Soak (``make bench``, section ``soak``): jobs of random length and density with random gaps on both input
    streams and backpressure on the results until at least ``soak_beats`` beats have crossed the ports; every result
    word against the golden model, counters exact (:meth:`SystolicArrayTB.finish`). The beat counts go to the
    ``soak_report`` file."""
    tb, cfg, rows = await _start(dut, gap=SOAK_GAP, stall=SOAK_STALL)
    target, queued = knob("soak_beats", 0), 0
    while queued < target:
        m = int(tb.rng.integers(1, 2 * rows + 1))
        await tb.run_job(*tb.random_job(m, density=float(tb.rng.choice([1.0, 0.75, 0.4]))))
        queued += cfg.rows + 2 * m               # weight beats, activation rows, result rows
    await tb.finish()
    report = write_soak_report(tb, knob("soak_report", ""))
    assert report["beats"] >= target and report["lost"] == report["duplicated"] == report["unsent"] == 0, report
