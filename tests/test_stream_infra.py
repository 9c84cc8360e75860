"""Self-test of the cocotb infrastructure in ``sim/tb`` on a small stream DUT, on Verilator and Icarus."""

import hashlib
import json
import os
import random

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.paths import build_dir
from sim.common.runner import SIMULATORS, require_simulator, run_cocotb
from sim.common.scoreboard import Scoreboard
from sim.common.stream import random_pauses



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


@pytest.fixture(scope="session")
def stream_verilog():
    """Verilog of ``stream_fifo`` in ``<build>/selftest/``, named by content (written atomically for xdist)."""
    text = verilog.convert(StreamSelfTest(), name="stream_fifo", emit_src=False)
    path = build_dir() / "selftest" / f"stream_fifo-{hashlib.sha256(text.encode()).hexdigest()[:12]}.v"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def run(sim, verilog_path, **kwargs):
    require_simulator(sim)
    return run_cocotb(verilog=verilog_path, top="stream_fifo", test_module="sim.common.cocotb_stream_fifo", sim=sim, **kwargs)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_stream_agents(sim, stream_verilog):
    seed = int(os.environ.get("STREAM_TB_SEED", random.randrange(2**32)))
    print(f"stimulus seed {seed} (rerun: STREAM_TB_SEED={seed})")
    run(sim, stream_verilog, extra_env={"STREAM_TB_CONFIG": json.dumps({"beats": 500, "seed": seed})})


@pytest.mark.parametrize("sim", SIMULATORS)
def test_failing_cocotb_test_fails_pytest(sim, stream_verilog):
    with pytest.raises(pytest.fail.Exception) as failure:
        run(sim, stream_verilog, testcase="deliberately_failing", extra_env={"STREAM_TB_FAILING": "1"})
    message = str(failure.value)
    assert "1 of 1 cocotb tests failed" in message and "--- deliberately_failing (COCOTB_RANDOM_SEED=" in message
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
