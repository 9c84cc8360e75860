"""cocotb tests of the generated output-stationary core (run by tests/gemm/test_os_array_cocotb.py).

Settings (:func:`sim.common.tbenv.settings`): the core's parameters (:class:`sim.gemm.os_core.OSCoreParams`), the
stimulus seed, and the knobs ``bench`` / ``os_tiles`` (the JSON report file and ``"n,T"`` of the ``throughput``
benchmark, which runs only then).
"""

import json
import time

import cocotb

from gen.gemm import os_perf as perf
from sim.common.tbenv import knob, settings
from sim.gemm.os_core import OSCoreParams
from sim.gemm.os_tb import OSArrayTB


async def _start(dut, *, gap=0.0, stall=0.0):
    s = settings(OSCoreParams)
    tb = OSArrayTB(dut, s.config, seed=s.seed, gap=gap, stall=stall)
    await tb.start()
    return tb, s.config


@cocotb.test()
async def streaming_back_to_back(dut):
    """Back-to-back tiles, short (T < rows) and long, no gaps, no backpressure: every beat at its closed-form cycle."""
    tb, p = await _start(dut)
    k_blocks = [2 * p.rows + 1, 1, p.rows, max(1, p.rows - 1), 3, p.rows + 2]
    await tb.run_tiles([tb.random_tile(t) for t in k_blocks])
    got = await tb.finish()
    acts, res = tb.sources["acts"].handshake_cycles, tb.results.handshake_cycles
    assert [r - acts[0] for r in res] == perf.result_cycles(p, k_blocks), "result beats off the cycle model"
    assert res[-1] - acts[0] + 1 == perf.stream_cycles(p, k_blocks)
    assert got["busy_cycles"] == perf.stream_cycles(p, k_blocks)
    assert got["stall_cycles"] == 0


@cocotb.test()
async def random_gaps_and_backpressure(dut):
    """Random tiles with random input gaps on both streams and output backpressure: every beat exact, none lost."""
    tb, p = await _start(dut, gap=0.3, stall=0.4)
    k_blocks = [int(t) for t in tb.rng.integers(1, 2 * p.rows + 3, size=8)]
    await tb.run_tiles([tb.random_tile(t, density=0.6) for t in k_blocks])
    got = await tb.finish()
    assert got["stall_cycles"] > 0, "backpressure was never exercised"


@cocotb.test()
async def extremes_and_zeros(dut):
    """All-extreme operands (wrap/saturate corners), then all-zero activations (every multiplier gated)."""
    tb, p = await _start(dut, stall=0.2)
    t = 2 * p.rows + 3
    W, A = tb.random_tile(t, density=1.0)
    a_lo, a_hi = (-(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1) if p.act_signed else (0, (1 << p.act_bits) - 1)
    W[W != 0] = -(1 << (p.weight_bits - 1))
    A[:] = a_lo if p.act_signed else a_hi
    A[1::2] = a_hi
    await tb.run_tiles([(W, A), (W, A * 0)])
    got = await tb.finish()
    assert got["zero_skips"] >= perf.macs(p, t)


@cocotb.test(skip=not knob("bench", ""))
async def throughput(dut):
    """Benchmark: ``os_tiles`` = "n,T": n back-to-back tiles of T K-blocks; writes cycles and wall time as JSON to
    ``bench``."""
    tb, p = await _start(dut)
    n, t = (int(x) for x in knob("os_tiles", "16,8").split(","))
    tiles = [tb.random_tile(t) for _ in range(n)]
    t0, c0 = time.perf_counter(), tb.counter.cycle
    await tb.run_tiles(tiles)
    got = await tb.finish()
    wall, cycles = time.perf_counter() - t0, tb.counter.cycle - c0
    acts, res = tb.sources["acts"].handshake_cycles, tb.results.handshake_cycles
    with open(knob("bench", ""), "w") as f:
        json.dump({"tiles": n, "k_blocks": t, "stream_cycles": res[-1] - acts[0] + 1,
                   "closed_form": perf.stream_cycles(p, [t] * n), "busy_cycles": got["busy_cycles"],
                   "macs": n * perf.macs(p, t), "sim_cycles": cycles, "wall_s": wall}, f)
