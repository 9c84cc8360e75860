"""The mesh builder (hw/systolic/mesh.py) alone in the Amaranth simulator, with a probe PE that only registers
what it receives: every west/north feed reaches PE (r, c) exactly r + c enabled cycles after it entered (skew
plus one register per hop), south chains start from 0 in row 0 and pass through every row, a weight beat is
written only by the PE of its row after c enabled cycles, de-skewed drains align a row, and a low enable freezes
all of it. Reference: a cycle-by-cycle list model written from the module docstring."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.systolic.mesh import build_mesh

W = 8          # width of every probe value


class ProbePE(wiring.Component):
    """``act`` east, ``tag`` south (a north feed), ``sum`` south chain (adds ``act ^ tag`` mod 2**W), a weight
    register loaded by ``w_we``; every output registered while ``en``."""

    def __init__(self):
        super().__init__({"en": In(1), "act_in": In(W), "act_out": Out(W), "tag_in": In(W), "tag_out": Out(W),
                          "sum_in": In(W), "sum_out": Out(W), "w_we": In(1), "w_data": In(W), "weight": Out(W)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += [self.act_out.eq(self.act_in), self.tag_out.eq(self.tag_in),
                         self.sum_out.eq(self.sum_in + (self.act_in ^ self.tag_in))]
            with m.If(self.w_we):
                m.d.sync += self.weight.eq(self.w_data)
        return m


class MeshTop(wiring.Component):
    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        super().__init__({"en": In(1), "west": In(W).array(rows), "north": In(W).array(cols),
                          "w_valid": In(1), "w_row": In(8), "w_cols": In(W).array(cols),
                          "drain": Out(W).array(cols)})

    def elaborate(self, platform):
        m = Module()
        self.mesh = build_mesh(m, rows=self.rows, cols=self.cols, pe_class=ProbePE, pe_params={}, en=self.en,
                               west={"act": list(self.west)}, north={"tag": list(self.north)}, south=("sum",),
                               load=(self.w_valid, self.w_row, list(self.w_cols)))
        for c, v in enumerate(self.mesh.deskew(self.mesh.bottom("sum_out"), "drain")):
            m.d.comb += self.drain[c].eq(v)
        return m


@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 4), (4, 2)])
def test_mesh_feeds_chains_load_and_enable(rows, cols, seed):
    rng = np.random.default_rng(seed + 31 * rows + cols)
    print(f"seed {seed}")
    n = 30
    west = rng.integers(0, 1 << W, (n, rows))
    north = rng.integers(0, 1 << W, (n, cols))
    en = rng.random(n) < 0.7
    w_valid = rng.random(n) < 0.5
    w_row = rng.integers(0, rows + 1, n)            # rows: a row no PE has (written by none)
    w_cols = rng.integers(0, 1 << W, (n, cols))
    dut = MeshTop(rows, cols)

    # reference: a line of n registers loading while en shows, at cycle t, the input of the n-th most recent
    # enabled cycle before t (0 until there were n), and the input itself when n = 0
    k = np.cumsum(en) - en                          # enabled cycles before cycle t
    def seen(inputs, t, n):
        if n == 0:
            return inputs[t]
        before = np.flatnonzero(en[:t])
        return inputs[before[-n]] if len(before) >= n else 0

    async def bench(ctx):
        weights = np.zeros((rows, cols), np.int64)
        pending = []                                # (enabled step it lands, r, c, value)
        for t in range(n):
            ctx.set(dut.en, int(en[t]))
            for r in range(rows):
                ctx.set(dut.west[r], int(west[t, r]))
            for c in range(cols):
                ctx.set(dut.north[c], int(north[t, c]))
                ctx.set(dut.w_cols[c], int(w_cols[t, c]))
            ctx.set(dut.w_valid, int(w_valid[t]))
            ctx.set(dut.w_row, int(w_row[t]))
            for r in range(rows):
                for c in range(cols):
                    pe = dut.mesh.pes[r][c]
                    a, g = seen(west[:, r], t, r + c), seen(north[:, c], t, c + r)
                    assert ctx.get(pe.act_in) == a, (t, r, c, "act")
                    assert ctx.get(pe.tag_in) == g, (t, r, c, "tag")
                    assert ctx.get(pe.en) == en[t]
                    if r == 0:
                        assert ctx.get(pe.sum_in) == 0, (t, c)
                    else:
                        assert ctx.get(pe.sum_in) == ctx.get(dut.mesh.pes[r - 1][c].sum_out), (t, r, c)
            # the weight beat of this cycle reaches column c after c enabled cycles
            if en[t] and w_valid[t] and w_row[t] < rows:
                for c in range(cols):
                    pending.append((k[t] + c, int(w_row[t]), c, int(w_cols[t, c])))
            for step, r, c, v in list(pending):
                if en[t] and step == k[t]:
                    weights[r, c] = v
                    pending.remove((step, r, c, v))
            await ctx.tick()
            got = np.array([[ctx.get(dut.mesh.pes[r][c].weight) for c in range(cols)] for r in range(rows)])
            np.testing.assert_array_equal(got, weights, err_msg=f"weights after cycle {t}")
        # drains: the bottom row's column c is delayed cols - 1 - c enabled cycles (checked with en held high)
        history = []
        for t in range(cols + 2):
            ctx.set(dut.en, 1)
            history.append([ctx.get(dut.mesh.pes[-1][c].sum_out) for c in range(cols)])
            for c in range(cols):
                lag = cols - 1 - c
                if t >= lag:
                    assert ctx.get(dut.drain[c]) == history[t - lag][c], (t, c)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
