"""cocotb testbench for ``RramTile``: host driver, tile golden model, scoreboard, fault-log and register checks.

Stream agents from :mod:`sim.common.stream` drive ``program``/``tables``/``inputs`` and collect ``outputs``/``faults``;
:class:`sim.rram.golden.TileGolden` follows every operation in the same order and predicts each output beat
(checked by a :class:`~sim.common.scoreboard.Scoreboard` as it leaves), the fault log and every register. Beats come
from :mod:`sim.rram.driver`, which uses :mod:`hw.rram.beats`, the one definition of the formats.
"""

from types import SimpleNamespace

import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from gen.rram import perf
from hw.rram import beats
from sim.rram import driver
from sim.rram.golden import TileGolden
from sim.common.testbench import Testbench

__all__ = ["RramTileTB"]


class RramTileTB(Testbench):
    """Drives one ``RramTile`` DUT and checks it against :class:`TileGolden`.

    Parameters
    ----------
    dut : cocotb handle
    cfg : gen.rram.config.RramTileConfig
        The config the DUT was generated from.
    seed, gap, stall
        :class:`~sim.common.testbench.Testbench`'s (``stall`` applies to ``outputs``; the fault FIFO is popped
        only by :meth:`pop_faults`).

    Attributes
    ----------
    codes_seen : set of int
        Every error code the tile's STATUS showed in :meth:`check_registers` (each equal to the golden model's).
    """

    SOURCES = ("program", "tables", "inputs")
    SINKS = ("outputs", "faults")
    RESULTS = "outputs"
    ZERO = ("reg_addr",)

    def __init__(self, dut, cfg, *, seed, gap=0.0, stall=0.0):
        super().__init__(dut, seed=seed, gap=gap, stall=stall)
        self.cfg = cfg
        self.golden = TileGolden(cfg)
        self.popping = False            # fault FIFO popped only while True (so it can fill up and overflow)
        self.faults_popped = 0
        self.expected_outputs = 0
        self.codes_seen = set()

    def pause_generator(self, name, rng):
        if name == "faults":
            return iter(lambda: not self.popping, None)
        return super().pause_generator(name, rng)

    # ---- operations -----------------------------------------------------------------------------------------

    async def program(self, levels, mask=None):
        """Program the cells of ``levels`` that ``mask`` selects (all by default); the golden model does the same."""
        g = self.golden.counters
        before = dict(g)
        self.golden.program(levels, mask)
        words = driver.program_beats(self.cfg, levels, mask)
        # accept + write-verify iterations, plus the push of each failed cell into the fault log
        self.allow(len(words) + 4 * (g["verify_iters"] - before["verify_iters"])
                   + (g["fault_count"] - before["fault_count"]))
        await self.send({"program": words})

    async def program_cell(self, xbar, row, col, level):
        """One program beat for any address, inside the tile or not (a bad-input test); the golden model does the
        same."""
        g = self.golden.counters
        iters = g["verify_iters"]
        self.golden.program_cell(xbar, row, col, level)
        word, = beats.pack_beats(beats.program_layout(beats.params_of(self.cfg)),
                                 {"xbar": [xbar], "row": [row], "col": [col], "level": [level]}, beats=1)
        self.allow(1 + 4 * (g["verify_iters"] - iters) + 1)
        await self.send({"program": [word]})

    async def load_tables(self, tables):
        """Send the table beats; returns the error code the golden model expects (0: tables valid)."""
        code = self.golden.load_tables(tables)
        words = driver.table_beats(self.cfg, tables)
        self.allow(len(words))
        await self.send({"tables": words})
        return code

    def _schedule(self):
        """The tables the golden model holds, as the cycle model takes them (None without valid tables)."""
        g, cfg = self.golden, self.cfg
        if not g.tables_valid:
            return None
        rows = len(g.ous)
        return SimpleNamespace(
            n_inputs=g.n_inputs, n_outputs=g.n_outputs,
            ou_xbar=np.array([o[0] for o in g.ous], dtype=np.int64),
            ou_col_mask=np.array([o[4] for o in g.ous], dtype=bool).reshape(rows, cfg.ou_cols),
            ou_col_output=np.array([o[5] for o in g.ous], dtype=np.int64).reshape(rows, cfg.ou_cols))

    def _mvm_cycles(self):
        """:func:`gen.rram.perf.mvm_cycles` of the tables the golden model holds (no tables: none)."""
        schedule = self._schedule()
        return 0 if schedule is None else perf.mvm_cycles(self.cfg, schedule)

    async def mvm(self, x):
        """Send one input vector; its expected output beats go to the scoreboard. Returns the golden y (or None)."""
        self.allow(len(x) + self._mvm_cycles())
        y = self.golden.mvm(x)
        if y is not None:
            last = np.zeros(len(y), dtype=np.int64)
            last[-1] = 1
            self.scoreboard.expect(beats.pack_beats(beats.output_layout(beats.params_of(self.cfg)),
                                                    {"value": y, "last": last}))
            self.expected_outputs += len(y)
        await self.send({"inputs": driver.input_beats(self.cfg, x)})
        return y

    # ---- observation ------------------------------------------------------------------------------------------

    async def reserved_table_beat(self):
        """One table beat of the reserved kind 2 (rejected: BAD_SEQUENCE); the golden model does the same."""
        self.golden.reserved_beat()
        self.allow(1)
        await self.send({"tables": [beats.TABLE_RESERVED]})

    async def read_regs(self):
        """Every register, by name (one cycle each), plus ``"at"``: the cycle number when CYCLES was read."""
        out = {}
        for addr, (name, _) in beats.REGISTERS.items():
            await RisingEdge(self.dut.clk)
            self.dut.reg_addr.value = addr
            await ReadOnly()
            out[name] = int(self.dut.reg_data.value)
            if name == "CYCLES":
                out["at"] = self.counter.cycle
        await RisingEdge(self.dut.clk)
        return out

    async def idle(self):
        """Wait, within the deadline, until every beat was sent, every expected output arrived and STATUS.busy is
        low."""
        await self.wait_results(self.expected_outputs)
        await RisingEdge(self.dut.clk)
        self.dut.reg_addr.value = beats.REGISTER_ADDR["STATUS"]
        busy = beats.STATUS_BITS["busy"]
        await self.wait_until(lambda: all(s.idle for s in self.sources.values())
                              and not int(self.dut.reg_data.value) >> busy & 1, "every beat sent and STATUS.busy low")
        await self.settle(5)

    async def pop_faults(self):
        """Pop the whole fault FIFO and check it equals the golden log (addresses and order)."""
        expected = self.golden.pop_faults()
        faults = self.sinks["faults"]
        self.popping = True
        self.allow(len(expected))
        await faults.wait_for(len(faults) + len(expected), timeout_cycles=self.remaining,
                              what=f"{len(expected)} fault-log entries")
        await self.settle(5)
        self.popping = False
        got = driver.faults_from_beats(self.cfg, faults.values[-len(expected):] if expected else [])
        assert len(faults.values) == self.faults_popped + len(expected), \
            f"fault FIFO gave {len(faults.values) - self.faults_popped} entries, golden log {len(expected)}"
        assert got == expected, f"fault log {got}, golden {expected}"
        self.faults_popped = len(faults.values)
        return got

    async def check_registers(self):
        """Wait for idle, then compare every register but CYCLES with the golden model, and CYCLES with the clock."""
        await self.idle()
        regs = await self.read_regs()
        g, mask = self.golden, (1 << self.cfg.counter_bits) - 1
        for name, value in g.counters.items():
            assert regs[name.upper()] == value & mask, f"register {name.upper()} = {regs[name.upper()]}, golden {value}"
        status = regs["STATUS"]
        expected = ((g.tables_valid << beats.STATUS_BITS["tables_valid"])
                    | (g.fault_overflow << beats.STATUS_BITS["fault_overflow"]) | (g.error << beats.STATUS_BITS["error"]))
        assert status == expected, f"STATUS = {status:#x}, golden {expected:#x} (error code {g.error})"
        self.codes_seen.add(status >> beats.STATUS_BITS["error"] & 0xF)
        # Both count rising edges since reset was released.
        assert regs["CYCLES"] == regs["at"] & mask, f"CYCLES = {regs['CYCLES']}, clock at {regs['at']}"
        self.scoreboard.assert_done(self.expected_outputs)
        return regs
