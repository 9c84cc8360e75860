"""The activation-indexed PE (weights sparse along K, docs/gemm-actsparse.md) alone in the Amaranth simulator against a
numpy model, at every pipeline depth; the engine's tests are in test_gemm_engine*.py."""

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from hw.formats.nm import compress_nm
from hw.gemm.act_pe import ActPE
from sim.common.amaranth_bench import Bench
from sim.systolic.golden import random_nm_weights

PES = {
    # 2:4 weights, A-DBB 1:4: two K-blocks per PE; every pipeline depth
    **{f"2of4_a1_s8_p{p}": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4, act_keep=1,
                                pipeline=p) for p in range(5)},
    # dense 4:4 weights (no index: entry e at position e), unsigned activations, act_keep 2
    "4of4_a2_u6_p3": dict(act_bits=6, act_signed=False, weight_bits=5, acc_bits=11, keep=4, block=4, act_keep=2,
                          pipeline=3),
}


@pytest.mark.parametrize("name", PES)
def test_act_pe_random_steps(name, seed):
    args = PES[name]
    keep, block, act_keep, acc_bits, pipeline = (args[k] for k in ("keep", "block", "act_keep", "acc_bits",
                                                                   "pipeline"))
    group = keep // act_keep
    dut = ActPE(**args, count_bits=6)
    rng = np.random.default_rng(seed)
    a_lo, a_hi = ((-(1 << (args["act_bits"] - 1)), (1 << (args["act_bits"] - 1)) - 1) if args["act_signed"]
                  else (0, (1 << args["act_bits"]) - 1))
    half = 1 << (acc_bits - 1)
    steps = 300

    async def bench(ctx):
        # weights: (group·block,) dense K positions of the PE's blocks
        active = shadow = np.zeros(group * block, np.int64)
        psum_out, counts, swapped = 0, (0, 0), 0
        # the products and counts of the enabled step `pipeline` steps ago (after reset: empty slots)
        staged = [(0, 0, keep)] * pipeline
        for _ in range(steps):
            en, we, swap = rng.random() < 0.8, rng.random() < 0.2, rng.random() < 0.15
            W = random_nm_weights(rng, k=group * block, n=1, keep=keep, block=block, weight_bits=args["weight_bits"],
                                  density=0.8)[:, 0]
            values, indices = compress_nm(W[:, None], keep=keep, block=block)
            for e in range(group * keep):
                ctx.set(dut.w_data[e].value, int(values[e // keep, 0, e % keep]))
                if keep < block:
                    ctx.set(dut.w_data[e].index, int(indices[e // keep, 0, e % keep]))
            vals = [int(v) if rng.random() > 0.3 else 0 for v in rng.integers(a_lo, a_hi, size=keep, endpoint=True)]
            pos = rng.integers(0, block, size=keep).tolist()
            psum_in = int(rng.integers(-half, half))
            macs_in, zeros_in = int(rng.integers(0, 20)), int(rng.integers(0, 20))
            for j in range(keep):
                ctx.set(dut.slots_in[j], {"value": vals[j], "pos": pos[j]})
            ctx.set(dut.psum_in, psum_in)
            ctx.set(dut.macs_in, macs_in)
            ctx.set(dut.zeros_in, zeros_in)
            ctx.set(dut.en, en)
            ctx.set(dut.w_we, we)
            ctx.set(dut.swap_in, swap)
            await ctx.tick()
            if en:
                used = shadow if swap else active
                filled = sum(v != 0 for v in vals)
                # slot j belongs to block j // act_keep and reads the weight at its position there
                step = (sum(vals[j] * int(used[(j // act_keep) * block + pos[j]]) for j in range(keep)),
                        filled, keep - filled)
                if pipeline:
                    staged.append(step)
                    step = staged.pop(0)
                psum_out = ((psum_in + step[0] + half) % (2 * half)) - half
                counts = ((macs_in + step[1]) % 64, (zeros_in + step[2]) % 64)
                if swap:
                    active, swapped = shadow, swapped + 1
                if we:
                    shadow = W
            assert ctx.get(dut.psum_out) == psum_out
            assert (ctx.get(dut.macs_out), ctx.get(dut.zeros_out)) == counts
        assert swapped > 10

    tb = Bench(dut, within=steps + 1, why="1 tick per step, nothing awaits the PE")
    tb.add(bench)
    tb.run()


def test_act_pe_rejects_bad_pipeline():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)    # the half-built component is never elaborated
        with pytest.raises(ValueError, match="pipeline = 5"):
            ActPE(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4, act_keep=1,
                  count_bits=6, pipeline=5)
        gc.collect()
