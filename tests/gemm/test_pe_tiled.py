"""SparsePE with ``tiled=True`` (the GEMM engine's PE): shadow weight bank, swap tag, counts over real lanes only."""

import numpy as np
import pytest

from hw import bits
from hw.systolic.pe import SparsePE
from sim.common.amaranth_bench import Bench


@pytest.mark.parametrize("pipeline", [0, 1, 2, 4])
def test_tiled_pe_shadow_swap_and_lane_counts(seed, pipeline):
    """psum/zeros/macs out = this cycle's inputs plus the products and counts of the row ``pipeline`` cycles ago,
    computed with the weights that row met (shadow or active) and its lane count."""
    rng = np.random.default_rng(seed)
    keep, block = 2, 4
    pe = SparsePE(act_bits=8, act_signed=True, weight_bits=8, acc_bits=24, keep=keep, block=block, zero_bits=4,
                  tiled=True, pipeline=pipeline)

    def weights():
        idx = np.sort(rng.choice(block, keep, replace=False))
        val = rng.integers(-128, 128, keep)
        return val, idx, bits.pack(pe.w_data.shape(), {"value": val[None], "index": idx[None]})[0]

    steps = 300

    async def bench(ctx):
        ctx.set(pe.en, 1)
        active = (np.zeros(keep, int), np.zeros(keep, int))     # reset: every entry (value and index) is 0
        shadow = None
        history = [(0, 0, 0)] * pipeline                          # the pipeline registers reset to 0
        for step in range(steps):
            write = rng.random() < 0.4
            swap = shadow is not None and rng.random() < 0.5
            new = weights() if write else None
            act = rng.integers(-128, 128, block) * (rng.random(block) < 0.7)
            lanes = int(rng.integers(0, block + 1))
            psum = int(rng.integers(-1000, 1000))
            ctx.set(pe.w_we, write)
            if write:
                ctx.set(pe.w_data.as_value(), new[2])
            ctx.set(pe.swap_in, swap)
            ctx.set(pe.lanes_in, lanes)
            ctx.set(pe.act_in.as_value(), bits.pack(pe.act_in.shape(), act[None])[0])
            ctx.set(pe.psum_in, psum)
            ctx.set(pe.zeros_in, 1)
            ctx.set(pe.macs_in, 2)
            await ctx.tick()
            used = shadow if swap else active        # a swapping row computes with the shadow bank
            if swap:
                active = shadow
            if write:
                shadow = new[:2]                      # the write lands after the swap read it
            val, idx = used
            sel = act[idx]
            real = idx < lanes
            history.append((int((sel * val).sum()), int(((sel == 0) & real).sum()), int(((sel != 0) & real).sum())))
            products, zeros, macs = history.pop(0)
            assert ctx.get(pe.psum_out) == psum + products, f"step {step}"
            assert ctx.get(pe.zeros_out) == 1 + zeros
            assert ctx.get(pe.macs_out) == 2 + macs
            assert ctx.get(pe.swap_out) == swap and ctx.get(pe.lanes_out) == lanes

    tb = Bench(pe, within=steps + 1, why="1 tick per step, nothing awaits the PE")
    tb.add(bench)
    tb.run()
