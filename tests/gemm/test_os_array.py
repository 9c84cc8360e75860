"""SparseOSArray in the Amaranth simulator: bit-exact tiles, back-to-back tiles, backpressure, cycle model."""

import gc
import random
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

from hw.gemm import os_beats
from hw.gemm.os_array import SparseOSArray
from sim.gemm import os_golden as golden
from gen.gemm import os_perf as perf
from sim.common.amaranth_bench import Bench, bound
from sim.common.amaranth_streams import get_all, put_all
from sim.gemm.os_core import OSCoreParams, build_os_array

CONFIGS = {
    "2x3_2of4_s8": OSCoreParams(rows=2, cols=3, keep=2, block=4),
    "3x2_1of1_u8": OSCoreParams(rows=3, cols=2, keep=1, block=1, act_signed=False),
    "3x3_1of4_sat12": OSCoreParams(rows=3, cols=3, keep=1, block=4, acc_bits=12, overflow="saturate"),
    "2x2_4of4_a6w5_wrap10": OSCoreParams(rows=2, cols=2, keep=4, block=4, act_bits=6, weight_bits=5, acc_bits=10),
    "1x1_2of4_sat8": OSCoreParams(rows=1, cols=1, keep=2, block=4, acc_bits=8, overflow="saturate"),
    "4x1_2of8_u4": OSCoreParams(rows=4, cols=1, keep=2, block=8, act_bits=4, act_signed=False),
    "2x3_2of4_s8_p4": OSCoreParams(rows=2, cols=3, keep=2, block=4, pe_pipeline=4),
    "3x2_1of4_sat12_p2": OSCoreParams(rows=3, cols=2, keep=1, block=4, acc_bits=12, overflow="saturate",
                                      pe_pipeline=2),
}
COUNTERS = ("cycles", "busy_cycles", "stall_cycles", "zero_skips")


def make_tiles(p, rng, k_blocks):
    return [golden.random_os_tile(rng, p, t) for t in k_blocks]


def simulate(p, tiles, *, seed, gap, stall):
    """Stream every tile's steps (acts and weights with independent gaps); collect results and counters."""
    dut = build_os_array(p)
    arng, wrng, crng = random.Random(seed), random.Random(seed + 1), random.Random(seed + 2)
    acts, weights = [], []
    for W, A in tiles:
        values, indices, _, _ = golden.os_tile(p, W, A)
        acts += os_beats.os_act_beats(p, A)
        weights += os_beats.os_weight_beats(p, values, indices)
    out = {}
    k_blocks = [W.shape[0] // p.block for W, _ in tiles]
    model = perf.stream_cycles(p, k_blocks)
    bench = Bench(dut, within=bound(model, gap=gap, stall=stall), model=model)

    async def act_source(ctx):
        out["a"], _ = await put_all(ctx, dut.acts, acts, rng=arng, gap=gap, bench=bench)

    async def weight_source(ctx):
        out["w"], _ = await put_all(ctx, dut.weights, weights, rng=wrng, gap=gap, bench=bench)

    async def sink(ctx):
        out["words"], out["r"], out["stalls"] = await get_all(ctx, dut.results, p.rows * len(tiles),
                                                              rng=crng, stall=stall, bench=bench)
        for _ in range(3):       # nothing may follow the expected beats
            await ctx.tick()
            assert not ctx.get(dut.results.valid), "a result beat beyond the expected count"
        out["counters"] = {name: ctx.get(getattr(dut, name)) for name in COUNTERS}

    for testbench in (act_source, weight_source, sink):
        bench.add(testbench)
    bench.run()
    return out


def check(p, tiles, out):
    """Every result word, the count and every counter against the golden model and the spec."""
    expected = [golden.os_tile(p, W, A) for W, A in tiles]
    C = np.concatenate([e[2] for e in expected])
    got = os_beats.os_results_from_beats(p, out["words"])
    assert got.shape == C.shape, f"{got.shape[0]} result rows, expected {C.shape[0]}"
    for n in range(len(C)):
        assert np.array_equal(got[n], C[n]), f"tile {n // p.rows} row {n % p.rows}: got {got[n]}, expected {C[n]}"
    assert out["a"] == out["w"], "the activation and weight streams did not transfer together"
    counters = out["counters"]
    assert counters["zero_skips"] == sum(e[3] for e in expected)
    assert counters["stall_cycles"] == out["stalls"]
    assert counters["cycles"] == out["r"][-1] + 4      # counted from reset, read three ticks after the last beat
    # busy: every cycle from a tile's first step to its last result beat, except stalled ones.
    covered, first = set(), 0
    for k, (W, A) in enumerate(tiles):
        t = W.shape[0] // p.block
        covered.update(range(out["a"][first], out["r"][(k + 1) * p.rows - 1] + 1))
        first += t
    assert counters["busy_cycles"] == len(covered) - out["stalls"]


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("gap,stall", [(0.0, 0.0), (0.3, 0.4)], ids=["streaming", "gaps+backpressure"])
def test_os_array_bit_exact(name, gap, stall, seed):
    p = CONFIGS[name]
    rng = np.random.default_rng(seed)
    k_blocks = [int(t) for t in rng.integers(1, 2 * p.rows + 2, size=5)] + [1, p.rows, 1]
    tiles = make_tiles(p, rng, k_blocks)
    out = simulate(p, tiles, seed=seed, gap=gap, stall=stall)
    check(p, tiles, out)
    if gap == 0 and stall == 0:
        start = out["a"][0]
        assert [r - start for r in out["r"]] == perf.result_cycles(p, k_blocks)
        lasts = np.cumsum(k_blocks) - 1
        assert [out["a"][i] - start for i in lasts] == perf.last_step_cycles(p, k_blocks)
        assert out["counters"]["busy_cycles"] == perf.stream_cycles(p, k_blocks)
    if stall:
        assert out["stalls"] > 0, "backpressure was never exercised"


@pytest.mark.parametrize("name", CONFIGS)
def test_os_array_single_tile_closed_form(name, seed):
    p = CONFIGS[name]
    rng = np.random.default_rng(seed)
    t = int(rng.integers(1, 3 * p.rows + 2))
    out = simulate(p, make_tiles(p, rng, [t]), seed=seed, gap=0.0, stall=0.0)
    assert out["r"][-1] - out["a"][0] + 1 == perf.tile_cycles(p, t)
    assert out["r"][0] - out["a"][-1] == perf.latency(p)
    assert out["counters"]["busy_cycles"] == perf.tile_cycles(p, t)
    assert out["counters"]["stall_cycles"] == 0


@pytest.mark.parametrize("name", ["2x3_2of4_s8", "3x3_1of4_sat12"])
def test_os_array_extremes_and_zeros(name, seed):
    """All-extreme operands (wrap/saturate corners), then all-zero activations (every multiplier gated)."""
    p = CONFIGS[name]
    rng = np.random.default_rng(seed)
    W, A = golden.random_os_tile(rng, p, 2 * p.rows + 3, density=1.0)
    a_lo, a_hi = (-(1 << (p.act_bits - 1)), (1 << (p.act_bits - 1)) - 1) if p.act_signed else (0, (1 << p.act_bits) - 1)
    W[W != 0] = -(1 << (p.weight_bits - 1))
    A[:] = a_lo if p.act_signed else a_hi
    A[1::2] = a_hi
    tiles = [(W, A), (W, A * 0)]
    out = simulate(p, tiles, seed=seed, gap=0.1, stall=0.3)
    check(p, tiles, out)
    assert out["counters"]["zero_skips"] >= perf.macs(p, 2 * p.rows + 3)


@pytest.mark.parametrize("kwargs,message", [
    (dict(rows=0), "rows = 0"),
    (dict(cols=300), "cols = 300"),
    (dict(keep=5), "keep = 5"),
    (dict(block=3), "block = 3"),
    (dict(overflow="check"), "overflow = 'check'"),
    (dict(counter_bits=0), "counter_bits = 0"),
])
def test_os_array_rejects_bad_parameters(kwargs, message):
    args = dict(rows=2, cols=2, act_bits=8, act_signed=True, weight_bits=8, acc_bits=32, keep=2, block=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)    # the half-built component is never elaborated
        with pytest.raises(ValueError, match=message):
            SparseOSArray(**(args | kwargs))
        gc.collect()


def test_os_array_rejects_non_bool_advance_on_ready():
    args = dict(rows=2, cols=2, act_bits=8, act_signed=True, weight_bits=8, acc_bits=32, keep=2, block=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="advance_on_ready = 1"):
            SparseOSArray(**args, advance_on_ready=1)
        gc.collect()
