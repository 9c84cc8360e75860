"""The outer-product PE (weights sparse along N, docs/gemm-actsparse.md) alone in the Amaranth simulator against a
numpy model; the weight format's tests are in test_actsparse.py."""

import numpy as np
import pytest
from hw.formats.nm_n import compress_n, prune_n
from hw.gemm.outer_pe import OuterPE
from sim.common.amaranth_bench import Bench
from sim.gemm.pe_model import SlotPEModel, random_steps


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
    # each slot's weight row read one enabled cycle early (slots_next/swap_next): the same outputs
    "2of4_a2_s8_p4_ahead": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4,
                                act_keep=2, pipeline=4, lookahead=True),
    "1of4_a1_u8_ahead": dict(act_bits=8, act_signed=False, weight_bits=8, acc_bits=10, keep=1, block=4, act_keep=1,
                             lookahead=True),
}


@pytest.mark.parametrize("name", PES)
def test_outer_pe_random_steps(name, seed):
    args = PES[name]
    keep, block, act_keep = args["keep"], args["block"], args["act_keep"]
    dut = OuterPE(**args, count_bits=6)
    rng = np.random.default_rng(seed)
    w_lo, w_hi = -(1 << (args["weight_bits"] - 1)), (1 << (args["weight_bits"] - 1)) - 1
    steps = 300

    def random_weights():
        W = rng.integers(w_lo, w_hi, size=(block, block), endpoint=True)
        return prune_n(np.where(rng.random(W.shape) < 0.2, 0, W), keep=keep, block=block)

    def set_weights(ctx, W):
        values, indices = compress_n(W, keep=keep, block=block)
        for kr in range(block):
            for e in range(keep):
                ctx.set(dut.w_data[kr * keep + e].value, int(values[kr, 0, e]))
                if keep < block:
                    ctx.set(dut.w_data[kr * keep + e].index, int(indices[kr, 0, e]))

    # slot j adds value_j times K row pos_j of the block's weights into every column
    model = SlotPEModel(weights=np.zeros((block, block), np.int64), per_slot=keep, slots=act_keep,
                        products=lambda W, vals, pos: sum(v * W[p] for v, p in zip(vals, pos)),
                        pipeline=args.get("pipeline", 0), acc_bits=args["acc_bits"], count_bits=6)

    async def bench(ctx):
        await random_steps(ctx, dut, rng, model, steps=steps, act_bits=args["act_bits"],
                           act_signed=args["act_signed"], block=block, acc_bits=args["acc_bits"],
                           random_weights=random_weights, set_weights=set_weights)
        assert model.swaps > 10

    tb = Bench(dut, within=steps + 1, why="1 tick per step, nothing awaits the PE")
    tb.add(bench)
    tb.run()
