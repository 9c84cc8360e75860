"""The outer-product PE (weights sparse along N, docs/gemm-actsparse.md) alone in the Amaranth simulator against a
numpy model; the weight format's tests are in test_actsparse.py."""

import numpy as np
import pytest
from hw.formats.nm_n import compress_n, prune_n
from hw.gemm.outer_pe import OuterPE
from sim.common.amaranth_bench import Bench


PES = {
    "2of4_a2_s8": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4, act_keep=2),
    "1of4_a1_u8": dict(act_bits=8, act_signed=False, weight_bits=8, acc_bits=10, keep=1, block=4, act_keep=1),
    "4of4_a4_s6": dict(act_bits=6, act_signed=True, weight_bits=5, acc_bits=12, keep=4, block=4, act_keep=4),
    # products registered: the sums and counts take them one enabled cycle later
    "2of4_a2_s8_p1": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4, act_keep=2,
                          pipeline=1),
    "4of4_a3_s6_p1": dict(act_bits=6, act_signed=True, weight_bits=5, acc_bits=12, keep=4, block=4, act_keep=3,
                          pipeline=1),
    # operands, products (twice) and column sums registered: 4 enabled cycles later
    "2of4_a2_s8_p4": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4, act_keep=2,
                          pipeline=4),
    "4of4_a3_s6_p2": dict(act_bits=6, act_signed=True, weight_bits=5, acc_bits=12, keep=4, block=4, act_keep=3,
                          pipeline=2),
}


@pytest.mark.parametrize("name", PES)
def test_outer_pe_random_steps(name, seed):
    args = PES[name]
    keep, block, act_keep, acc_bits = args["keep"], args["block"], args["act_keep"], args["acc_bits"]
    dut = OuterPE(**args, count_bits=6)
    rng = np.random.default_rng(seed)
    a_lo, a_hi = ((-(1 << (args["act_bits"] - 1)), (1 << (args["act_bits"] - 1)) - 1) if args["act_signed"]
                  else (0, (1 << args["act_bits"]) - 1))
    w_lo, w_hi = -(1 << (args["weight_bits"] - 1)), (1 << (args["weight_bits"] - 1)) - 1
    half = 1 << (acc_bits - 1)
    steps = 300

    def random_weights():
        W = rng.integers(w_lo, w_hi, size=(block, block), endpoint=True)
        return prune_n(np.where(rng.random(W.shape) < 0.2, 0, W), keep=keep, block=block)

    pipeline = args.get("pipeline", 0)

    async def bench(ctx):
        active = shadow = np.zeros((block, block), np.int64)
        psum_out, counts, swapped = np.zeros(block, np.int64), (0, 0), 0
        # pipeline p: the products and counts of the enabled step p steps ago (after reset: empty slots)
        staged = [(np.zeros(block, np.int64), 0, act_keep * keep)] * pipeline
        for _ in range(steps):
            en, we, swap = rng.random() < 0.8, rng.random() < 0.2, rng.random() < 0.15
            W = random_weights()
            values, indices = compress_n(W, keep=keep, block=block)
            for kr in range(block):
                for e in range(keep):
                    ctx.set(dut.w_data[kr * keep + e].value, int(values[kr, 0, e]))
                    if keep < block:
                        ctx.set(dut.w_data[kr * keep + e].index, int(indices[kr, 0, e]))
            vals = [int(v) if rng.random() > 0.3 else 0 for v in rng.integers(a_lo, a_hi, size=act_keep,
                                                                               endpoint=True)]
            pos = rng.integers(0, block, size=act_keep).tolist()
            psum_in = rng.integers(-half, half, size=block)
            macs_in, zeros_in = int(rng.integers(0, 20)), int(rng.integers(0, 20))
            for j in range(act_keep):
                ctx.set(dut.slots_in[j], {"value": vals[j], "pos": pos[j]})
            for c in range(block):
                ctx.set(dut.psum_in[c], int(psum_in[c]))
            ctx.set(dut.macs_in, macs_in)
            ctx.set(dut.zeros_in, zeros_in)
            ctx.set(dut.en, en)
            ctx.set(dut.w_we, we)
            ctx.set(dut.swap_in, swap)
            await ctx.tick()
            if en:
                used = shadow if swap else active
                filled = sum(v != 0 for v in vals)
                step = (sum(vals[j] * used[pos[j]] for j in range(act_keep)), filled * keep, (act_keep - filled) * keep)
                if pipeline:
                    staged.append(step)
                    step = staged.pop(0)
                psum_out = ((psum_in + step[0] + half) % (2 * half)) - half
                counts = ((macs_in + step[1]) % 64, (zeros_in + step[2]) % 64)
                if swap:
                    active, swapped = shadow, swapped + 1
                if we:
                    shadow = W
            assert [ctx.get(dut.psum_out[c]) for c in range(block)] == psum_out.tolist()
            assert (ctx.get(dut.macs_out), ctx.get(dut.zeros_out)) == counts
        assert swapped > 10

    tb = Bench(dut, within=steps + 1, why="1 tick per step, nothing awaits the PE")
    tb.add(bench)
    tb.run()
