"""SparseOSPE alone in the Amaranth simulator: random steps, bubbles and enables against a scalar model."""

import numpy as np
import pytest

from hw.gemm.os_pe import SparseOSPE
from sim.common.amaranth_bench import Bench

PES = {
    "2of4_s8_wrap12": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4, overflow="wrap"),
    "1of4_u8_sat10": dict(act_bits=8, act_signed=False, weight_bits=8, acc_bits=10, keep=1, block=4,
                          overflow="saturate"),
    "4of4_s6_sat12": dict(act_bits=6, act_signed=True, weight_bits=5, acc_bits=12, keep=4, block=4,
                          overflow="saturate"),
    # pipelined: the accumulator sees every step `pipeline` enabled cycles late
    "2of4_s8_wrap12_p4": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4,
                              overflow="wrap", pipeline=4),
    "1of4_u8_sat10_p2": dict(act_bits=8, act_signed=False, weight_bits=8, acc_bits=10, keep=1, block=4,
                             overflow="saturate", pipeline=2),
}


@pytest.mark.parametrize("name", PES)
def test_os_pe_random_steps(name, seed):
    args = PES[name]
    keep, block, acc_bits = args["keep"], args["block"], args["acc_bits"]
    dut = SparseOSPE(**args, zero_bits=4)
    rng = np.random.default_rng(seed)
    a_lo, a_hi = ((-(1 << (args["act_bits"] - 1)), (1 << (args["act_bits"] - 1)) - 1) if args["act_signed"]
                  else (0, (1 << args["act_bits"]) - 1))
    w_lo, w_hi = -(1 << (args["weight_bits"] - 1)), (1 << (args["weight_bits"] - 1)) - 1
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1

    steps = 300

    delay = args.get("pipeline", 0)

    async def bench(ctx):
        acc, done, tile_open, checked = 0, 0, False, 0
        seen = [(0, 0)] * (delay + 1)    # (acc, done) of the model after each enabled cycle, oldest first
        for _ in range(steps):
            en, valid = rng.random() < 0.8, rng.random() < 0.7
            last = bool(rng.random() < 0.3)
            acts = [int(a) if rng.random() > 0.25 else 0 for a in rng.integers(a_lo, a_hi, size=block, endpoint=True)]
            index = sorted(rng.choice(block, size=keep, replace=False).tolist()) if keep < block else list(range(keep))
            wvals = rng.integers(w_lo, w_hi, size=keep, endpoint=True).tolist()
            zeros_in = int(rng.integers(0, 8))
            for b in range(block):
                ctx.set(dut.act_in[b], acts[b])
            for s in range(keep):
                ctx.set(dut.w_in[s].value, wvals[s])
                if keep < block:
                    ctx.set(dut.w_in[s].index, index[s])
            ctx.set(dut.step_in, {"valid": valid, "first": not tile_open, "last": last})
            ctx.set(dut.zeros_in, zeros_in)
            ctx.set(dut.en, en)
            await ctx.tick()
            if en:
                selected = [acts[index[s]] for s in range(keep)]
                zeros = sum(a == 0 for a in selected) if valid else 0
                if valid:
                    total = (0 if not tile_open else acc) + sum(a * w for a, w in zip(selected, wvals))
                    acc = min(max(total, lo), hi) if args["overflow"] == "saturate" else \
                        ((total - lo) % (1 << acc_bits)) + lo
                    tile_open = not last
                done = int(valid and last)
                assert ctx.get(dut.zeros_out) == (zeros_in + zeros) % 16
                assert [ctx.get(dut.act_out[b]) for b in range(block)] == acts
                assert [ctx.get(dut.w_out[s].value) for s in range(keep)] == wvals
                assert ctx.get(dut.step_out.valid) == valid and ctx.get(dut.step_out.last) == last
                seen = seen[1:] + [(acc, done)]
            assert ctx.get(dut.acc) == seen[0][0], "accumulator"
            assert ctx.get(dut.done) == seen[0][1]
            checked += seen[0][1]
        assert checked > 10

    tb = Bench(dut, within=steps + 1, why="1 tick per step, nothing awaits the PE")
    tb.add(bench)
    tb.run()
