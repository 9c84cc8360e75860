"""cocotb tests of the emitted CrossbarModel Verilog (run by tests/rram/test_crossbar_cocotb.py).

The pytest side passes the model's parameters as JSON in ``SPARSEGEN_XBAR_PARAMS``, the stimulus seed in
``SPARSEGEN_SEED`` and the command count in ``SPARSEGEN_COMMANDS``. Every response is compared, in order,
with :class:`sim.rram.xbar.CrossbarMirror` run on the same commands.
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from sim.rram.xbar import CrossbarMirror
from sim.rram.crossbar_tb import encode, expected_words, random_commands
from sim.common.scoreboard import Scoreboard
from sim.common.stream import StreamDriver, StreamMonitor, random_pauses

LATENCY = 2          # cmd handshake → rsp handshake, no backpressure

# The cells are non-volatile: a reset between cocotb tests (which share one simulation) keeps their levels,
# and only the LFSRs restart. Each test's mirror therefore starts from the levels the previous test left.
_LEVELS = {}


def _mirror(params):
    """A mirror right after a reset: fresh LFSRs, the cell levels the previous test left behind."""
    mirror = CrossbarMirror(**params)
    if "levels" in _LEVELS:
        mirror.levels[:] = _LEVELS["levels"]
    _LEVELS["levels"] = mirror.levels            # shared: what this test writes carries over
    return mirror


def _setup():
    params = json.loads(os.environ["SPARSEGEN_XBAR_PARAMS"])
    params["stuck"] = [tuple(s) for s in params.get("stuck", [])]
    seed = int(os.environ.get("SPARSEGEN_SEED") or random.randrange(1 << 32))
    count = int(os.environ.get("SPARSEGEN_COMMANDS", "400"))
    cocotb.log.info("crossbar %s, seed=%d (replay with SPARSEGEN_SEED=%d)",
                    {k: v for k, v in params.items() if k != "stuck"}, seed, seed)
    return params, seed, count


async def _reset(dut):
    Clock(dut.clk, 10, unit="ns").start()
    dut.cmd__valid.value = 0
    dut.rsp__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


class XbarTB:
    """One command driver, one response monitor and an in-order scoreboard fed by the mirror."""

    def __init__(self, dut, params, *, rng, gap, stall):
        self.dut, self.params = dut, params
        self.sb = Scoreboard("rsp", dut._log)
        self.drv = StreamDriver(dut, "cmd", dut.clk, pause=random_pauses(rng, gap) if gap else None)
        self.mon = StreamMonitor(dut, "rsp", dut.clk, pause=random_pauses(rng, stall) if stall else None,
                                 callback=self.sb.check)
        self.expected = 0

    async def run(self, commands, mirror):
        """Send ``commands`` and wait for their responses, each checked against ``mirror`` run on them."""
        words = expected_words(self.params, commands, mirror)
        self.sb.expect(words)
        self.expected += len(words)
        await self.drv.send(encode(self.params, commands))
        await self.mon.wait_for(self.expected, timeout_cycles=20 * len(commands) + 100)

    async def finish(self):
        await ClockCycles(self.dut.clk, 8)           # nothing extra may follow
        self.sb.assert_done(self.expected)
        assert len(self.mon.values) == self.expected, f"{len(self.mon.values)} responses, expected {self.expected}"


@cocotb.test()
async def random_gaps_and_backpressure(dut):
    """Random command mix with input gaps and response backpressure: every response exact, none lost or extra."""
    params, seed, count = _setup()
    await _reset(dut)
    rng = random.Random(seed)
    tb, mirror = XbarTB(dut, params, rng=rng, gap=0.3, stall=0.4), _mirror(params)
    await tb.run(random_commands(params, count, rng), mirror)
    await tb.finish()
    assert tb.mon.stall_cycles > 0, "backpressure was never exercised"
    if params.get("pulse_error"):
        assert mirror.writes_missed > 0, "the pulse-error path was not exercised"


@cocotb.test()
async def full_rate_timing(dut):
    """No gaps, no backpressure: one command per cycle, each response exactly LATENCY cycles after its command."""
    params, seed, count = _setup()
    await _reset(dut)
    rng = random.Random(seed + 1)
    commands = random_commands(params, count // 2, rng)
    tb = XbarTB(dut, params, rng=rng, gap=0.0, stall=0.0)
    await tb.run(commands, _mirror(params))
    await tb.finish()
    drv, mon = tb.drv, tb.mon
    cmd = drv.handshake_cycles
    assert cmd == list(range(cmd[0], cmd[0] + len(commands))), "commands were not accepted one per cycle"
    reads = [t for t, (op, *_) in zip(cmd, commands) if op in (1, 2)]
    assert mon.handshake_cycles == [t + LATENCY for t in reads]


@cocotb.test()
async def program_verify_and_reset(dut):
    """Program every cell, read all back and every OU; then reset: the cells keep their levels (non-volatile)
    and the LFSRs restart from the seed, so the mirror continues with fresh LFSRs on the same levels."""
    params, seed, _ = _setup()
    await _reset(dut)
    rng = random.Random(seed + 2)
    n, rows, cols = params["n_xbars"], params["xbar_rows"], params["xbar_cols"]
    top, max_drive = (1 << params["cell_bits"]) - 1, (1 << params["dac_bits"]) - 1
    groups = [(x, g, h) for x in range(n) for g in range(-(-rows // params["ou_rows"]))
              for h in range(-(-cols // params["ou_cols"]))]
    cells = [(x, r, c) for x in range(n) for r in range(rows) for c in range(cols)]
    commands = [(0, x, r, c, rng.randint(0, top), ()) for x, r, c in cells]
    commands += [(1, x, r, c, 0, ()) for x, r, c in cells]
    commands += [(2, x, g, h, 0, tuple(rng.randint(0, max_drive) for _ in range(params["ou_rows"])))
                 for x, g, h in groups]
    tb, mirror = XbarTB(dut, params, rng=rng, gap=0.1, stall=0.1), _mirror(params)
    await tb.run(commands, mirror)
    assert len(tb.mon.values) == len(cells) + len(groups)

    await _reset_only(dut)
    after = _mirror(params)                       # the levels survive the reset, the LFSRs restart
    tail = [(2, x, g, h, 0, (max_drive,) * params["ou_rows"]) for x, g, h in groups]
    tail += [(0, x, r, c, top - int(mirror.levels[x, r, c]), ()) for x, r, c in rng.sample(cells, 20)]
    tail += [(1, x, r, c, 0, ()) for x, r, c in cells[:40]]
    await tb.run(tail, after)
    await tb.finish()


async def _reset_only(dut):
    await RisingEdge(dut.clk)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
