"""SparsePE in the Amaranth simulator: one-cycle MAC with index muxing, zero gating, wrap and saturate."""

import numpy as np
import pytest

from hw import bits
from hw.systolic.pe import SparsePE
from sim.common.amaranth_bench import Bench

CASES = [  # act_bits, act_signed, weight_bits, acc_bits, keep, block, overflow
    (8, True, 8, 24, 2, 4, "wrap"),
    (8, False, 8, 20, 1, 4, "wrap"),
    (4, True, 4, 8, 3, 8, "saturate"),
    (8, True, 8, 10, 4, 4, "wrap"),       # dense, small accumulator: wraps often
    (6, False, 5, 9, 2, 2, "saturate"),
]


def _range(width, signed):
    return (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)


def _extremes_or_random(rng, lo, hi, size):
    """Random values with the extremes and zero over-represented."""
    choice = rng.integers(0, 4, size)
    return np.where(choice == 0, lo, np.where(choice == 1, hi, np.where(choice == 2, 0, rng.integers(lo, hi + 1, size))))


@pytest.mark.parametrize("case", CASES, ids=lambda c: "a{}{}w{}acc{}_{}of{}_{}".format(c[0], "s" if c[1] else "u", *c[2:]))
def test_pe_matches_spec(case, seed):
    act_bits, act_signed, weight_bits, acc_bits, keep, block, overflow = case
    rng = np.random.default_rng(seed)
    pe = SparsePE(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits, acc_bits=acc_bits,
                  keep=keep, block=block, zero_bits=4, overflow=overflow)
    a_lo, a_hi = _range(act_bits, act_signed)
    w_lo, w_hi = _range(weight_bits, True)
    p_lo, p_hi = _range(acc_bits, True)
    steps = 200
    checked = []

    async def bench(ctx):
        for step in range(steps):
            values = _extremes_or_random(rng, w_lo, w_hi, keep)
            indices = (np.sort(rng.choice(block, keep, replace=False)) if pe.index_bits else np.arange(keep))
            fields = {"value": values[None, :]}
            if pe.index_bits:
                fields["index"] = indices[None, :]
            ctx.set(pe.w_data.as_value(), bits.pack(pe.w_data.shape(), fields)[0])
            ctx.set(pe.w_we, 1)
            ctx.set(pe.en, 1)
            await ctx.tick()
            ctx.set(pe.w_we, 0)
            for _ in range(3):
                act = _extremes_or_random(rng, a_lo, a_hi, block)
                psum = int(_extremes_or_random(rng, p_lo, p_hi, 1)[0])
                zeros_in = int(rng.integers(0, 8))
                en = bool(rng.integers(0, 4))          # 1 in 4 cycles disabled: outputs must hold
                before = (ctx.get(pe.psum_out), ctx.get(pe.zeros_out), ctx.get(pe.act_out.as_value()))
                ctx.set(pe.act_in.as_value(), bits.pack(pe.act_in.shape(), act[None, :])[0])
                ctx.set(pe.psum_in, psum)
                ctx.set(pe.zeros_in, zeros_in)
                ctx.set(pe.en, en)
                await ctx.tick()
                after = (ctx.get(pe.psum_out), ctx.get(pe.zeros_out), ctx.get(pe.act_out.as_value()))
                if not en:
                    assert after == before, f"step {step}: outputs changed while en=0"
                    continue
                selected = act[indices]
                exact = psum + int(np.dot(selected, values))
                expect = (min(max(exact, p_lo), p_hi) if overflow == "saturate"
                          else (exact - p_lo) % (1 << acc_bits) + p_lo)
                assert after[0] == expect, (f"step {step}: psum_out {after[0]} != {expect} "
                                            f"(act {act}, weights {values} at {indices}, psum_in {psum})")
                assert after[1] == (zeros_in + int(np.sum(selected == 0))) % 16
                assert after[2] == bits.pack(pe.act_in.shape(), act[None, :])[0]
                checked.append(step)

    # nothing here waits for the PE: the testbench always takes exactly 4 ticks per step
    tb = Bench(pe, within=4 * steps + 1, why="4 ticks per step")
    tb.add(bench)
    tb.run()
    assert len(checked) > steps  # about 3/4 of 3·steps cycles are enabled and checked


@pytest.mark.parametrize("pipeline", [1, 2, 3, 4])
@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: "a{}{}w{}acc{}_{}of{}_{}".format(c[0], "s" if c[1] else "u", *c[2:]))
def test_pipelined_pe_matches_spec(case, pipeline, seed):
    """With ``pipeline`` stages, psum_out after an enabled cycle is psum_in of that cycle plus the products of
    the activations (and the weights they met) ``pipeline`` enabled cycles earlier; act_out still takes one."""
    act_bits, act_signed, weight_bits, acc_bits, keep, block, overflow = case
    rng = np.random.default_rng(seed)
    pe = SparsePE(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits, acc_bits=acc_bits,
                  keep=keep, block=block, zero_bits=4, overflow=overflow, pipeline=pipeline)
    a_lo, a_hi = _range(act_bits, act_signed)
    w_lo, w_hi = _range(weight_bits, True)
    p_lo, p_hi = _range(acc_bits, True)
    cycles = 600
    checked = []

    async def bench(ctx):
        history = []          # (products, zeros) of each enabled cycle, oldest first
        values = indices = None
        for cycle in range(cycles):
            en = bool(rng.integers(0, 4))
            write = values is None or bool(rng.integers(0, 5) == 0)     # weight writes mid-stream too
            if write:
                new_values = _extremes_or_random(rng, w_lo, w_hi, keep)
                new_indices = (np.sort(rng.choice(block, keep, replace=False)) if pe.index_bits
                               else np.arange(keep))
                fields = {"value": new_values[None, :]}
                if pe.index_bits:
                    fields["index"] = new_indices[None, :]
                ctx.set(pe.w_data.as_value(), bits.pack(pe.w_data.shape(), fields)[0])
            ctx.set(pe.w_we, write)
            act = _extremes_or_random(rng, a_lo, a_hi, block)
            psum = int(_extremes_or_random(rng, p_lo, p_hi, 1)[0])
            zeros_in = int(rng.integers(0, 8))
            ctx.set(pe.act_in.as_value(), bits.pack(pe.act_in.shape(), act[None, :])[0])
            ctx.set(pe.psum_in, psum)
            ctx.set(pe.zeros_in, zeros_in)
            ctx.set(pe.en, en)
            before = (ctx.get(pe.psum_out), ctx.get(pe.zeros_out))
            await ctx.tick()
            after = (ctx.get(pe.psum_out), ctx.get(pe.zeros_out))
            if not en:
                assert after == before, f"cycle {cycle}: outputs changed while en=0"
                continue
            # this cycle's activations meet the weights registered before it (a write lands at the clock edge)
            if values is not None:
                selected = act[indices]
                history.append((int(np.dot(selected, values)), int(np.sum(selected == 0))))
            else:
                history.append(None)
            if write:
                values, indices = new_values, new_indices
            if len(history) > pipeline and history[-1 - pipeline] is not None:
                product, zeros = history[-1 - pipeline]
                exact = psum + product
                expect = (min(max(exact, p_lo), p_hi) if overflow == "saturate"
                          else (exact - p_lo) % (1 << acc_bits) + p_lo)
                assert after[0] == expect, f"cycle {cycle}: psum_out {after[0]} != {expect}"
                assert after[1] == (zeros_in + zeros) % 16, f"cycle {cycle}: zeros_out"
                checked.append(cycle)

    tb = Bench(pe, within=cycles + 1, why="1 tick per cycle, nothing awaits the PE")
    tb.add(bench)
    tb.run()
    assert len(checked) > cycles // 2
