"""ConversionSteps (hw/rram/steps.py) in the Amaranth simulator alone: every column's conversion cycle and every
entry's cycle count against the stall rule of the spec (hw.formats.mapping.conversion_cycles), one entry per cycle."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.formats.mapping import accumulator_banks, conversion_cycles
from hw.rram.steps import ConversionSteps


def reference_steps(mask, outputs, adcs):
    """Per column, the cycle of the activation that converts it: groups of ``adcs`` converted columns in column
    order, one after the other; in a group, a bank takes one output per cycle, outputs in the order of their first
    column."""
    banks = accumulator_banks(adcs)
    cols = np.flatnonzero(mask)
    steps, base = {}, 0
    for start in range(0, len(cols), adcs):
        group = cols[start:start + adcs]
        seen = {}                       # bank -> distinct outputs in order of first column
        for c in group:
            order = seen.setdefault(outputs[c] % banks, [])
            if outputs[c] not in order:
                order.append(outputs[c])
            steps[c] = base + order.index(outputs[c])
        base += max(len(v) for v in seen.values())
    return steps, max(base, 1)


@pytest.mark.parametrize("ou_cols,adcs", [(8, 8), (8, 3)])
def test_steps_match_the_stall_rule(ou_cols, adcs):
    seed = 1200 + 10 * ou_cols + adcs
    print(f"seed = {seed}")
    rng = np.random.default_rng(seed)
    n = 40
    masks = rng.random((n, ou_cols)) < rng.choice([0.3, 0.7, 1.0], size=(n, 1))
    # few distinct outputs so that groups often share a bank (stalls) and an output (bit slices)
    outs = np.where(masks, rng.integers(0, rng.choice([2, 5, 12], size=(n, 1)), size=(n, ou_cols)), -1)
    dut = ConversionSteps(ou_cols=ou_cols, adcs=adcs, output_bits=6, tag_bits=10)
    got = []

    async def bench(ctx):
        for i in range(n + dut.LATENCY + 1):
            if i < n:
                ctx.set(dut.valid, 1)
                ctx.set(dut.mask, int(sum(int(b) << c for c, b in enumerate(masks[i]))))
                for c in range(ou_cols):
                    ctx.set(dut.outputs[c], int(outs[i, c]))
                ctx.set(dut.tag, i)
            else:
                ctx.set(dut.valid, 0)
            await ctx.tick()
            if ctx.get(dut.o_valid):
                got.append((ctx.get(dut.o_tag), [ctx.get(dut.step[c]) for c in range(ou_cols)], ctx.get(dut.last)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [t for t, _, _ in got] == list(range(n))
    for i, (_, steps, last) in enumerate(got):
        want, cycles = reference_steps(masks[i], outs[i], adcs)
        assert cycles == conversion_cycles(masks[i], outs[i], adcs)
        assert last == cycles - 1, (i, masks[i], outs[i])
        assert {c: steps[c] for c in want} == want, (i, masks[i], outs[i])


def test_steps_reject_bad_parameters():
    with pytest.raises(ValueError, match="adcs = 9"):
        ConversionSteps(ou_cols=8, adcs=9, output_bits=6, tag_bits=4)
    with pytest.raises(TypeError, match="ou_cols"):
        ConversionSteps(ou_cols=8.0, adcs=2, output_bits=6, tag_bits=4)
