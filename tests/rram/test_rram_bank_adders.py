"""BankAdders (hw/rram/bank_adders.py) in the Amaranth simulator alone: every bank's sum and output of every cycle
against numpy, LATENCY cycles later, one selection per cycle with no gaps."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.rram.bank_adders import BankAdders


@pytest.mark.parametrize("ou_cols,banks", [(8, 8), (5, 2), (16, 4)])
def test_bank_sums_exact(ou_cols, banks):
    seed = 1500 + ou_cols * 10 + banks
    print(f"seed = {seed}")
    rng = np.random.default_rng(seed)
    n, term_bits = 60, 14
    lo, hi = -(1 << (term_bits - 1)), (1 << (term_bits - 1)) - 1
    terms = rng.integers(lo, hi + 1, size=(n, ou_cols))
    terms[rng.random((n, ou_cols)) < 0.1] = lo                      # the extremes, where a width would wrap
    terms[rng.random((n, ou_cols)) < 0.1] = hi
    outputs = rng.integers(0, 40, size=(n, ou_cols))
    # bank b selects the columns of one output (the rule the conversion stage keeps)
    sel = np.zeros((n, banks, ou_cols), dtype=bool)
    for i in range(n):
        for b in range(banks):
            if rng.random() < 0.8:
                chosen = (rng.random(ou_cols) < 0.6) & ~sel[i, :b].any(axis=0)
                if chosen.any():
                    outputs[i, chosen] = outputs[i, np.flatnonzero(chosen)[0]]
                sel[i, b] = chosen
    dut = BankAdders(ou_cols=ou_cols, banks=banks, term_bits=term_bits, output_bits=7, tag_bits=8)
    got = []

    async def bench(ctx):
        for i in range(n + dut.LATENCY):
            row = min(i, n - 1)
            for b in range(banks):
                ctx.set(dut.sel[b], int(sum(int(v) << c for c, v in enumerate(sel[row, b]))) if i < n else 0)
            for c in range(ou_cols):
                ctx.set(dut.terms[c], int(terms[row, c]))
                ctx.set(dut.outputs[c], int(outputs[row, c]))
            ctx.set(dut.tag, row)
            await ctx.tick()
            if i >= dut.LATENCY - 1:
                got.append((ctx.get(dut.o_tag), [(ctx.get(dut.o_valid[b]), ctx.get(dut.o_output[b]),
                                                  ctx.get(dut.o_sum[b])) for b in range(banks)]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [t for t, _ in got[:n]] == list(range(n))
    for i, (_, rows) in enumerate(got[:n]):
        for b, (valid, out, total) in enumerate(rows):
            assert valid == int(sel[i, b].any()), (i, b)
            assert total == int((terms[i] * sel[i, b]).sum()), (i, b)
            if valid:
                assert out == outputs[i, np.flatnonzero(sel[i, b])[0]], (i, b)


def test_bank_adders_reject_bad_parameters():
    with pytest.raises(ValueError, match="banks = 0"):
        BankAdders(ou_cols=8, banks=0, term_bits=14, output_bits=7, tag_bits=2)
