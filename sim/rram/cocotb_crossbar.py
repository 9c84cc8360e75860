"""cocotb tests of the emitted CrossbarModel Verilog (run by tests/rram/test_crossbar_cocotb.py).

Settings (:func:`sim.common.tbenv.settings`): the model's parameters, the stimulus seed and the knob ``commands``
(command count). Every response is compared, in order, with :class:`sim.rram.xbar.CrossbarMirror` run on the same
commands.
"""

import random

import cocotb

from sim.common.tbenv import settings
from sim.rram.crossbar_tb import LATENCY, XbarTB, random_commands, xbar_params
from sim.rram.xbar import CrossbarMirror

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


async def _start(dut, *, gap, stall):
    s = settings(xbar_params)
    tb = XbarTB(dut, s.config, seed=s.seed, gap=gap, stall=stall)
    await tb.start()
    return tb, s


@cocotb.test()
async def random_gaps_and_backpressure(dut):
    """Random command mix with input gaps and response backpressure: every response exact, none lost or extra."""
    tb, s = await _start(dut, gap=0.3, stall=0.4)
    params, mirror = s.config, _mirror(s.config)
    await tb.run(random_commands(params, s.knob("commands", 400), random.Random(s.seed)), mirror)
    await tb.finish()
    assert tb.results.stall_cycles > 0, "backpressure was never exercised"
    if params.get("pulse_error"):
        assert mirror.writes_missed > 0, "the pulse-error path was not exercised"


@cocotb.test()
async def full_rate_timing(dut):
    """No gaps, no backpressure: one command per cycle, each response exactly LATENCY cycles after its command."""
    tb, s = await _start(dut, gap=0.0, stall=0.0)
    params = s.config
    commands = random_commands(params, s.knob("commands", 400) // 2, random.Random(s.seed + 1))
    await tb.run(commands, _mirror(params))
    await tb.finish()
    cmd = tb.sources["cmd"].handshake_cycles
    assert cmd == list(range(cmd[0], cmd[0] + len(commands))), "commands were not accepted one per cycle"
    reads = [t for t, (op, *_) in zip(cmd, commands) if op in (1, 2)]
    assert tb.results.handshake_cycles == [t + LATENCY for t in reads]


@cocotb.test()
async def program_verify_and_reset(dut):
    """Program every cell, read all back and every OU; then reset: the cells keep their levels (non-volatile)
    and the LFSRs restart from the seed, so the mirror continues with fresh LFSRs on the same levels."""
    tb, s = await _start(dut, gap=0.1, stall=0.1)
    params, rng = s.config, random.Random(s.seed + 2)
    n, rows, cols = params["n_xbars"], params["xbar_rows"], params["xbar_cols"]
    top, max_drive = (1 << params["cell_bits"]) - 1, (1 << params["dac_bits"]) - 1
    groups = [(x, g, h) for x in range(n) for g in range(-(-rows // params["ou_rows"]))
              for h in range(-(-cols // params["ou_cols"]))]
    cells = [(x, r, c) for x in range(n) for r in range(rows) for c in range(cols)]
    commands = [(0, x, r, c, rng.randint(0, top), ()) for x, r, c in cells]
    commands += [(1, x, r, c, 0, ()) for x, r, c in cells]
    commands += [(2, x, g, h, 0, tuple(rng.randint(0, max_drive) for _ in range(params["ou_rows"])))
                 for x, g, h in groups]
    mirror = _mirror(params)
    await tb.run(commands, mirror)
    assert len(tb.results.values) == len(cells) + len(groups)

    await tb.reset()
    after = _mirror(params)                       # the levels survive the reset, the LFSRs restart
    tail = [(2, x, g, h, 0, (max_drive,) * params["ou_rows"]) for x, g, h in groups]
    tail += [(0, x, r, c, top - int(mirror.levels[x, r, c]), ()) for x, r, c in rng.sample(cells, 20)]
    tail += [(1, x, r, c, 0, ()) for x, r, c in cells[:40]]
    await tb.run(tail, after)
    await tb.finish()

