"""AccumulatorBuffer in the Amaranth simulator: random rows, back-to-back same-address accumulation, stalls."""

import gc
import random
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

from hw.gemm.accumulator import AccumulatorBuffer
from sim.common.amaranth_bench import Bench

CASES = {
    # depth 1 and 2: nearly every row hits the address of the one before it (an M = 1 or 2 job's K-tiles)
    "c3_acc12_d1_wrap": dict(cols=3, acc_bits=12, depth=1, overflow="wrap"),
    "c2_acc10_d2_sat": dict(cols=2, acc_bits=10, depth=2, overflow="saturate"),
    "c4_acc16_d5_wrap": dict(cols=4, acc_bits=16, depth=5, overflow="wrap"),
    # the forwarding decision registered one advance early (the next row's write flag on `next`)
    "c3_acc12_d1_wrap_ahead": dict(cols=3, acc_bits=12, depth=1, overflow="wrap", forward_ahead=True),
    "c4_acc16_d2_sat_ahead": dict(cols=4, acc_bits=16, depth=2, overflow="saturate", forward_ahead=True),
    # the write registered (lands on the next advance): the last two rows' writes forwarded
    "c3_acc12_d1_wrap_wreg": dict(cols=3, acc_bits=12, depth=1, overflow="wrap", write_register=True),
    "c4_acc16_d2_sat_ahead_wreg": dict(cols=4, acc_bits=16, depth=2, overflow="saturate", forward_ahead=True,
                                       write_register=True),
    "c2_acc10_d3_wrap_ahead_wreg": dict(cols=2, acc_bits=10, depth=3, overflow="wrap", forward_ahead=True,
                                        write_register=True),
    # the unused read register cleared (a first row flagged on `ahead`), in every forwarding arrangement
    "c3_acc12_d1_wrap_clear": dict(cols=3, acc_bits=12, depth=1, overflow="wrap", clear_unused=True),
    "c4_acc16_d2_sat_ahead_clear": dict(cols=4, acc_bits=16, depth=2, overflow="saturate", forward_ahead=True,
                                        clear_unused=True),
    "c3_acc12_d1_wrap_wreg_clear": dict(cols=3, acc_bits=12, depth=1, overflow="wrap", write_register=True,
                                        clear_unused=True),
    "c2_acc10_d3_sat_ahead_wreg_clear": dict(cols=2, acc_bits=10, depth=3, overflow="saturate", forward_ahead=True,
                                             write_register=True, clear_unused=True),
}
CYCLES = 500


def _reduce(x, acc_bits, overflow):
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    if overflow == "saturate":
        return min(max(x, lo), hi)
    return (x - lo) % (1 << acc_bits) + lo


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_accumulator_rmw(name, stall, seed):
    p = CASES[name]
    cols, bits, depth = p["cols"], p["acc_bits"], p["depth"]
    prng = random.Random(seed)
    dut = AccumulatorBuffer(**p)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def new_row():
        # bubbles, first rows, rows that do not write (a job's last K-tile) and same-address runs
        return dict(valid=prng.random() < 0.8, m=prng.randrange(depth), first=prng.random() < 0.25,
                    write=prng.random() < 0.8, psums=[prng.randint(lo, hi) for _ in range(cols)])

    ref = [[0] * cols for _ in range(depth)]
    counts = {"checked": 0, "same_address": 0}
    bench = Bench(dut, within=CYCLES + 10, why="a fixed number of cycles")

    async def drive(ctx):
        # the row present, one and two advances ahead; the pipeline starts empty (no read issued for the first two)
        pipe = [dict(new_row(), valid=False), dict(new_row(), valid=False), new_row()]
        previous = None
        for _ in range(CYCLES):
            advance = prng.random() >= stall
            row = pipe[0]
            ctx.set(dut.advance, advance)
            ctx.set(dut.ahead.m, pipe[2]["m"])
            if p.get("clear_unused"):
                ctx.set(dut.ahead.first, pipe[2]["first"])
            else:
                ctx.set(dut.row.first, row["first"])
            if p.get("forward_ahead"):
                ctx.set(dut.next.write, pipe[1]["valid"] and pipe[1]["write"])
            for field in ("valid", "m", "write"):
                ctx.set(getattr(dut.row, field), row[field])
            for c in range(cols):
                ctx.set(dut.row.psums[c], row["psums"][c])
            if row["valid"]:
                want = [_reduce(row["psums"][c] + (0 if row["first"] else ref[row["m"]][c]), bits, p["overflow"])
                        for c in range(cols)]
                got = [ctx.get(dut.sums[c]) for c in range(cols)]
                assert got == want, f"row {row}: sums {got}, expected {want}"
                counts["checked"] += 1
            await ctx.tick()
            if advance:
                if row["valid"] and row["write"]:
                    counts["same_address"] += previous is not None and previous == row["m"] and not row["first"]
                    ref[row["m"]] = want
                    previous = row["m"]
                elif row["valid"]:
                    previous = None
                pipe = pipe[1:] + [new_row()]

    bench.add(drive)
    bench.run()
    print(f"{counts['checked']} rows checked, {counts['same_address']} back-to-back same-address accumulations")
    assert counts["checked"] > CYCLES * (1 - stall) * 0.5
    assert counts["same_address"] > 10


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(cols=0, acc_bits=8, depth=4), ValueError, "cols = 0"),
    (dict(cols=2, acc_bits=8, depth=4, overflow="clip"), ValueError, "overflow = 'clip'"),
    (dict(cols=2, acc_bits="8", depth=4), TypeError, "acc_bits = '8'"),
    (dict(cols=2, acc_bits=8, depth=4, forward_ahead=1), TypeError, "forward_ahead = 1 is not a bool"),
    (dict(cols=2, acc_bits=8, depth=4, write_register=1), TypeError, "write_register = 1 is not a bool"),
    (dict(cols=2, acc_bits=8, depth=4, clear_unused="yes"), TypeError, "clear_unused = 'yes' is not a bool"),
])
def test_accumulator_bad_parameters(kwargs, exc, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)    # the half-built component is never elaborated
        with pytest.raises(exc, match=message):
            AccumulatorBuffer(**kwargs)
        gc.collect()
