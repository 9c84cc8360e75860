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
from sim.gemm.pe_model import SlotPEModel, random_steps
from sim.systolic.golden import random_nm_weights

PES = {
    # 2:4 weights, A-DBB 1:4: two K-blocks per PE; every pipeline depth
    **{f"2of4_a1_s8_p{p}": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4, act_keep=1,
                                pipeline=p) for p in range(5)},
    # dense 4:4 weights (no index: entry e at position e), unsigned activations, act_keep 2
    "4of4_a2_u6_p3": dict(act_bits=6, act_signed=False, weight_bits=5, acc_bits=11, keep=4, block=4, act_keep=2,
                          pipeline=3),
    # the weights looked up one enabled cycle early (slots_next/swap_next): the same outputs
    **{f"2of4_a1_s8_p{p}_ahead": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4,
                                      act_keep=1, pipeline=p, lookahead=True) for p in (0, 4)},
    "4of4_a2_u6_p2_ahead": dict(act_bits=6, act_signed=False, weight_bits=5, acc_bits=11, keep=4, block=4,
                                act_keep=2, pipeline=2, lookahead=True),
}


@pytest.mark.parametrize("name", PES)
def test_act_pe_random_steps(name, seed):
    args = PES[name]
    keep, block, act_keep = args["keep"], args["block"], args["act_keep"]
    group = keep // act_keep
    dut = ActPE(**args, count_bits=6)
    rng = np.random.default_rng(seed)
    steps = 300

    def random_weights():
        """The PE's ``group`` K-blocks, dense K positions."""
        return random_nm_weights(rng, k=group * block, n=1, keep=keep, block=block, weight_bits=args["weight_bits"],
                                 density=0.8)[:, 0]

    def set_weights(ctx, W):
        values, indices = compress_nm(W[:, None], keep=keep, block=block)
        for e in range(group * keep):
            ctx.set(dut.w_data[e].value, int(values[e // keep, 0, e % keep]))
            if keep < block:
                ctx.set(dut.w_data[e].index, int(indices[e // keep, 0, e % keep]))

    # slot j belongs to K-block j // act_keep and reads the weight at its position there
    model = SlotPEModel(weights=np.zeros(group * block, np.int64), per_slot=1, slots=keep,
                        products=lambda W, vals, pos: sum(v * int(W[(j // act_keep) * block + p])
                                                          for j, (v, p) in enumerate(zip(vals, pos))),
                        pipeline=args["pipeline"], acc_bits=args["acc_bits"], count_bits=6)

    async def bench(ctx):
        await random_steps(ctx, dut, rng, model, steps=steps, act_bits=args["act_bits"],
                           act_signed=args["act_signed"], block=block, acc_bits=args["acc_bits"],
                           random_weights=random_weights, set_weights=set_weights)
        assert model.swaps > 10

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
