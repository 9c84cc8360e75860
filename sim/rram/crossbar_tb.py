"""Stimulus and expected responses for the crossbar model's testbenches (Amaranth simulator and cocotb), and the
cocotb testbench :class:`XbarTB`.

A command is a tuple ``(op, xbar, row, col, level, drive)`` of ints (``drive`` a tuple of ``ou_rows`` ints);
:func:`encode` turns it into the ``cmd`` payload with the RTL's own layout, :func:`expected_words` runs the
numpy mirror and packs its responses the way the RTL does.
"""

import random

from cocotb.triggers import ClockCycles, RisingEdge

from hw.formats.mapping import max_level, ou_groups
from hw.rram.crossbar import Op, command_layout, encode_codes, encode_command
from sim.common.testbench import Testbench
from sim.rram.xbar import CrossbarMirror

__all__ = ["LATENCY", "random_commands", "encode", "expected_words", "layout_of", "xbar_params", "XbarTB"]

LATENCY = 2          # cmd handshake → rsp handshake, no backpressure


def xbar_params(d: dict) -> dict:
    """The model's keyword arguments from their JSON (the stuck cells back to tuples)."""
    return {**d, "stuck": [tuple(s) for s in d.get("stuck", [])]}


def layout_of(params: dict):
    return command_layout(**{k: params[k] for k in ("n_xbars", "xbar_rows", "xbar_cols", "cell_bits", "ou_rows",
                                                     "dac_bits")})


def random_commands(params: dict, count: int, rng: random.Random) -> list[tuple]:
    """``count`` commands mixing every op and corner: writes (also to stuck cells), read-backs of the cell just
    written, OU reads over every group (edge groups too) with random or full drives, addresses and group
    indices beyond the array where the field is wide enough, and the reserved op 3."""
    p = params
    layout = layout_of(p)
    wide = {f: (1 << layout[f].shape.width) - 1 for f in ("xbar", "row", "col")}
    row_groups, col_groups = ou_groups(p["xbar_rows"], p["ou_rows"]), ou_groups(p["xbar_cols"], p["ou_cols"])
    top_level, max_drive = max_level(p["cell_bits"]), (1 << p["dac_bits"]) - 1
    stuck = list(p.get("stuck", ()))
    out = []
    while len(out) < count:
        k = rng.random()
        x = rng.randrange(p["n_xbars"]) if rng.random() < 0.95 else rng.randint(0, wide["xbar"])
        if k < 0.45:
            if stuck and rng.random() < 0.1:
                x, r, c, _ = rng.choice(stuck)
            else:
                r, c = rng.randrange(p["xbar_rows"]), rng.randrange(p["xbar_cols"])
                if rng.random() < 0.03:
                    r, c = rng.randint(0, wide["row"]), rng.randint(0, wide["col"])
            lvl = rng.choice([0, top_level, rng.randint(0, top_level)])
            out.append((Op.WRITE.value, x, r, c, lvl, ()))
            if rng.random() < 0.5:                    # verify read right behind the write
                out.append((Op.READ_CELL.value, x, r, c, 0, ()))
        elif k < 0.6:
            r, c = rng.randrange(p["xbar_rows"]), rng.randrange(p["xbar_cols"])
            if rng.random() < 0.05:
                r, c = rng.randint(0, wide["row"]), rng.randint(0, wide["col"])
            out.append((Op.READ_CELL.value, x, r, c, 0, ()))
        elif k < 0.97:
            g, h = rng.randrange(row_groups), rng.randrange(col_groups)
            if rng.random() < 0.05:
                g, h = rng.randint(0, wide["row"]), rng.randint(0, wide["col"])
            if rng.random() < 0.3:
                drive = (max_drive,) * p["ou_rows"]
            else:
                drive = tuple(rng.randint(0, max_drive) for _ in range(p["ou_rows"]))
            out.append((Op.READ_OU.value, x, g, h, 0, drive))
        else:
            out.append((3, x, 0, 0, 0, ()))
    return out[:count]


def encode(params: dict, commands) -> list[int]:
    """``cmd`` payload words of ``commands``; op 3 is encoded raw (it is not an :class:`Op` member)."""
    layout = layout_of(params)
    words = []
    for op, x, r, c, lvl, drive in commands:
        if op == 3:
            words.append(encode_command(layout, Op.WRITE, xbar=x) | (3 << layout["op"].offset))
        else:
            words.append(encode_command(layout, op, xbar=x, row=r, col=c, level=lvl, drive=drive or None))
    return words


def expected_words(params: dict, commands, mirror: CrossbarMirror | None = None) -> list[int]:
    """The ``rsp`` words the model must produce for ``commands`` (run on ``mirror``, or a fresh one)."""
    mirror = mirror or CrossbarMirror(**params)
    out = []
    for resp in mirror.run([(op, x, r, c, lvl, drive or (0,) * params["ou_rows"])
                            for op, x, r, c, lvl, drive in commands]):
        out.append(resp if isinstance(resp, int) else encode_codes(resp, adc_bits=params["adc_bits"]))
    return out


class XbarTB(Testbench):
    """One command source, one response sink and the in-order scoreboard, fed by the mirror.

    ``params`` are the model's keyword arguments; the other parameters are
    :class:`~sim.common.testbench.Testbench`'s.
    """

    SOURCES = ("cmd",)
    SINKS = ("rsp",)
    RESULTS = "rsp"

    def __init__(self, dut, params, *, seed, gap=0.0, stall=0.0):
        super().__init__(dut, seed=seed, gap=gap, stall=stall)
        self.params = params

    async def run(self, commands, mirror):
        """Send ``commands`` and wait for their responses, each checked against ``mirror`` run on them."""
        self.scoreboard.expect(expected_words(self.params, commands, mirror))
        self.allow(len(commands) + LATENCY)             # one command per cycle
        await self.send({"cmd": encode(self.params, commands)})
        await self.wait_results(len(self.scoreboard.expected))

    async def finish(self):
        """Nothing extra may follow; every response arrived and matched."""
        await self.settle(8)
        self.scoreboard.assert_done()
        assert len(self.results.values) == len(self.scoreboard.expected), \
            f"{len(self.results.values)} responses, expected {len(self.scoreboard.expected)}"

    async def reset(self):
        """Pulse ``rst`` for 2 cycles between commands (nothing in flight): the cells keep their levels."""
        await RisingEdge(self.dut.clk)
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
