"""Self-test of the cocotb infrastructure in ``sim/common`` (stream agents, scoreboard, runner, seeds) on a small
stream DUT, on Verilator and Icarus."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from sim.common.designs import Component
from sim.common.runner import SIMULATORS, run_design
from sim.common.scoreboard import Scoreboard
from sim.common.stream import random_pauses
from sim.common.testbench import cycle_budget


class StreamSelfTest(wiring.Component):
    """Three independent channels (see ``sim/common/cocotb_stream_fifo.py``): FIFO, wires, register pipe."""

    i: In(stream.Signature(16))
    o: Out(stream.Signature(16))
    wi: In(stream.Signature(8))
    wo: Out(stream.Signature(8))
    pi: In(stream.Signature(130))
    po: Out(stream.Signature(130))

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=16, depth=4)
        m.d.comb += [
            q.w_data.eq(self.i.payload), q.w_en.eq(self.i.valid), self.i.ready.eq(q.w_rdy),
            self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy), q.r_en.eq(self.o.ready),
        ]
        wiring.connect(m, wiring.flipped(self.wi), wiring.flipped(self.wo))
        # Two register stages whose ready is combinational: ready = !full || downstream ready.
        src = self.pi
        for k in range(2):
            out = self.po if k == 1 else stream.Signature(130).create(path=(f"stage{k}",))
            m.d.comb += src.ready.eq(~out.valid | out.ready)
            with m.If(src.valid & src.ready):
                m.d.sync += [out.payload.eq(src.payload), out.valid.eq(1)]
            with m.Elif(out.ready):
                m.d.sync += out.valid.eq(0)
            src = out
        return m


DESIGN = Component("stream_fifo", StreamSelfTest)
MODULE = "sim.common.cocotb_stream_fifo"


@pytest.mark.parametrize("sim", SIMULATORS)
def test_stream_agents(sim, seed):
    run_design(DESIGN, MODULE, sim, seed=seed, knobs={"beats": 500})


@pytest.mark.parametrize("sim", SIMULATORS)
def test_failing_cocotb_test_fails_pytest(sim, seed):
    with pytest.raises(pytest.fail.Exception) as failure:
        run_design(DESIGN, MODULE, sim, seed=seed, testcase="deliberately_failing", knobs={"failing": 1})
    message = str(failure.value)
    assert "1 of 1 cocotb tests failed" in message
    assert f"--- deliberately_failing (rerun with SPARSEGEN_SEED={seed})" in message
    assert "mismatch at index 2" in message and "results.xml" in message


def test_scoreboard():
    sb = Scoreboard("beats", formatter=lambda w: f"lo={w & 0xF}")
    sb.expect([1, 2, 0x13])
    sb.compare([1, 2])
    with pytest.raises(AssertionError, match=r"1 of 3 expected items missing; first missing is #2: 0x13"):
        sb.assert_done(3)
    with pytest.raises(AssertionError, match=r"mismatch at index 2:\n  expected 0x13 \(lo=3\)\n  actual   0x14"):
        sb.check(0x14)
    sb.check(0x13)
    with pytest.raises(AssertionError, match=r"unexpected extra item #3 \(only 3 expected\): 0x7"):
        sb.check(7)
    with pytest.raises(AssertionError, match="3 items were expected"):
        sb.assert_done(4)
    sb.assert_done(3)


def test_random_pauses_are_seeded():
    draw = lambda: [next(g) for g in [random_pauses(random.Random(5), 0.25)] for _ in range(1000)]
    first = draw()
    assert first == draw() and 150 < sum(first) < 350


def test_cycle_budget():
    assert cycle_budget(100) == 300
    assert cycle_budget(100, gap=0.5, margin=0) == 400
    assert cycle_budget(30, gap=0.5, stall=0.75, margin=7) == 487      # 60 / (0.5 · 0.25) + 7
    assert cycle_budget(1, gap=0.5, margin=0) == 4
