"""SparsePE with ``tiled=True`` (the GEMM engine's PE): shadow weight bank, swap tag, counts over real lanes only."""

import numpy as np
import pytest

from hw import bits
from hw.systolic.pe import SparsePE
from sim.common.amaranth_bench import Bench


@pytest.mark.parametrize("pipeline, lookahead", [(0, False), (1, False), (2, False), (4, False), (0, True),
                                                 (4, True)])
def test_tiled_pe_shadow_swap_and_lane_counts(seed, pipeline, lookahead):
    """psum/zeros/macs out = this cycle's inputs plus the products and counts of the row ``pipeline`` cycles ago,
    computed with the weights that row met (shadow or active) and its lane count; random enables (a disabled cycle
    changes nothing). With ``lookahead`` the PE also gets the next enabled cycle's row on ``*_next``."""
    rng = np.random.default_rng(seed)
    keep, block = 2, 4
    pe = SparsePE(act_bits=8, act_signed=True, weight_bits=8, acc_bits=24, keep=keep, block=block, zero_bits=4,
                  tiled=True, pipeline=pipeline, lookahead=lookahead)

    def weights():
        idx = np.sort(rng.choice(block, keep, replace=False))
        val = rng.integers(-128, 128, keep)
        return val, idx, bits.pack(pe.w_data.shape(), {"value": val[None], "index": idx[None]})[0]

    steps = 300
    rows, written = [], False
    for _ in range(steps + 1):
        en = rng.random() < 0.8
        write = rng.random() < 0.4
        rows.append(dict(en=en, write=write, swap=written and rng.random() < 0.5, new=weights() if write else None,
                         act=rng.integers(-128, 128, block) * (rng.random(block) < 0.7),
                         lanes=int(rng.integers(0, block + 1)), psum=int(rng.integers(-1000, 1000))))
        written = written or (en and write)
    # the first enabled row is the reset state of the inputs (in a mesh every PE input is a register, loaded only
    # while enabled), which the lookahead registers' reset values stand for
    rows[0].update(en=True, swap=False, act=np.zeros(block, int), lanes=0)

    def put_row(ctx, row, suffix):
        ctx.set(getattr(pe, f"swap_{suffix}"), row["swap"])
        ctx.set(getattr(pe, f"lanes_{suffix}"), row["lanes"])
        ctx.set(getattr(pe, f"act_{suffix}").as_value(), bits.pack(pe.act_in.shape(), row["act"][None])[0])

    async def bench(ctx):
        active = (np.zeros(keep, int), np.zeros(keep, int))     # reset: every entry (value and index) is 0
        shadow = None
        history = [(0, 0, 0)] * pipeline                          # the pipeline registers reset to 0
        out = (0, 0, 0, 0, 0)
        for step in range(steps):
            row = rows[step]
            ctx.set(pe.en, row["en"])
            ctx.set(pe.w_we, row["write"])
            if row["write"]:
                ctx.set(pe.w_data.as_value(), row["new"][2])
            put_row(ctx, row, "in")
            if lookahead:
                put_row(ctx, next((r for r in rows[step + 1:] if r["en"]), rows[-1]), "next")
            ctx.set(pe.psum_in, row["psum"])
            ctx.set(pe.zeros_in, 1)
            ctx.set(pe.macs_in, 2)
            await ctx.tick()
            if row["en"]:
                swap, write, act, lanes = row["swap"], row["write"], row["act"], row["lanes"]
                used = shadow if swap else active        # a swapping row computes with the shadow bank
                if swap:
                    active = shadow
                if write:
                    shadow = row["new"][:2]               # the write lands after the swap read it
                val, idx = used
                sel = act[idx]
                real = idx < lanes
                history.append((int((sel * val).sum()), int(((sel == 0) & real).sum()),
                                int(((sel != 0) & real).sum())))
                products, zeros, macs = history.pop(0)
                out = (row["psum"] + products, 1 + zeros, 2 + macs, swap, lanes)
            got = tuple(ctx.get(x) for x in (pe.psum_out, pe.zeros_out, pe.macs_out, pe.swap_out, pe.lanes_out))
            assert got == out, f"step {step}"

    tb = Bench(pe, within=steps + 1, why="1 tick per step, nothing awaits the PE")
    tb.add(bench)
    tb.run()
