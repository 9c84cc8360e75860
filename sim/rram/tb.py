"""cocotb testbench for ``RramTile``: host driver, tile golden model, scoreboard, fault-log and register checks.

Stream agents from :mod:`sim.common.stream` drive ``program``/``tables``/``inputs`` and collect ``outputs``/``faults``;
:class:`sim.rram.golden.TileGolden` follows every operation in the same order and predicts each output beat
(checked by a :class:`~sim.common.scoreboard.Scoreboard` as it leaves), the fault log and every register. Beats come
from :mod:`sim.rram.driver`, which uses :mod:`hw.rram.beats`, the one definition of the formats.
"""

import random

import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.rram import beats
from sim.rram import driver
from sim.rram.golden import TileGolden
from sim.common.scoreboard import Scoreboard
from sim.common.stream import StreamDriver, StreamMonitor, clock_and_reset, random_pauses

__all__ = ["RramTileTB"]


class RramTileTB:
    """Drives one ``RramTile`` DUT and checks it against :class:`TileGolden`.

    Parameters
    ----------
    dut : cocotb handle
    cfg : gen.rram.config.RramTileConfig
        The config the DUT was generated from.
    seed : int
        Seeds the gap/backpressure patterns.
    gap : float
        Probability per cycle that a driver idles before its next beat (input gaps).
    stall : float
        Probability per cycle that ``outputs__ready`` is low (output backpressure).
    """

    def __init__(self, dut, cfg, *, seed, gap=0.0, stall=0.0):
        self.dut, self.cfg = dut, cfg
        self.golden = TileGolden(cfg)
        self._seed, self._gap, self._stall = seed, gap, stall
        self.popping = False            # fault FIFO popped only while True (so it can fill up and overflow)
        self.faults_popped = 0
        self.expected_outputs = 0
        self.scoreboard = Scoreboard("outputs", dut._log)

    async def start(self, clock_ns=10):
        """Start the clock, reset for 2 cycles, then create the agents (fault FIFO not popped until asked)."""
        dut = self.dut
        self.counter = await clock_and_reset(dut, sources=("program", "tables", "inputs"), sinks=("outputs", "faults"),
                                             zero=("reg_addr",), clock_ns=clock_ns)
        seeds = random.Random(self._seed)

        def pauses():
            return random_pauses(random.Random(seeds.random()), self._gap)
        self.program_drv = StreamDriver(dut, "program", dut.clk, counter=self.counter, pause=pauses())
        self.tables_drv = StreamDriver(dut, "tables", dut.clk, counter=self.counter, pause=pauses())
        self.inputs_drv = StreamDriver(dut, "inputs", dut.clk, counter=self.counter, pause=pauses())
        self.outputs = StreamMonitor(dut, "outputs", dut.clk, counter=self.counter, callback=self.scoreboard.check,
                                     pause=random_pauses(random.Random(seeds.random()), self._stall))
        self.faults = StreamMonitor(dut, "faults", dut.clk, counter=self.counter,
                                    pause=iter(lambda: not self.popping, None))

    # ---- operations -----------------------------------------------------------------------------------------

    async def program(self, levels, mask=None):
        """Program the cells of ``levels`` that ``mask`` selects (all by default); the golden model does the same."""
        self.golden.program(levels, mask)
        await self.program_drv.send(driver.program_beats(self.cfg, levels, mask))

    async def load_tables(self, tables):
        """Send the table beats; returns the error code the golden model expects (0: tables valid)."""
        code = self.golden.load_tables(tables)
        await self.tables_drv.send(driver.table_beats(self.cfg, tables))
        return code

    async def mvm(self, x):
        """Send one input vector; its expected output beats go to the scoreboard. Returns the golden y (or None)."""
        y = self.golden.mvm(x)
        if y is not None:
            last = np.zeros(len(y), dtype=np.int64)
            last[-1] = 1
            self.scoreboard.expect(beats.pack_beats(beats.output_layout(beats.params_of(self.cfg)),
                                                    {"value": y, "last": last}))
            self.expected_outputs += len(y)
        await self.inputs_drv.send(driver.input_beats(self.cfg, x))
        return y

    # ---- observation ------------------------------------------------------------------------------------------

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

    async def idle(self, timeout_cycles=200_000):
        """Wait until every beat was sent, every expected output arrived and STATUS.busy is low."""
        await self.outputs.wait_for(self.expected_outputs, timeout_cycles)
        for _ in range(timeout_cycles):
            await RisingEdge(self.dut.clk)
            if self.program_drv.idle and self.tables_drv.idle and self.inputs_drv.idle:
                self.dut.reg_addr.value = beats.REGISTER_ADDR["STATUS"]
                await ReadOnly()
                if not int(self.dut.reg_data.value) >> beats.STATUS_BITS["busy"] & 1:
                    break
        else:
            raise AssertionError(f"tile still busy after {timeout_cycles} cycles")
        for _ in range(5):                        # anything extra would show up here
            await RisingEdge(self.dut.clk)

    async def pop_faults(self, timeout_cycles=1000):
        """Pop the whole fault FIFO and check it equals the golden log (addresses and order)."""
        expected = self.golden.pop_faults()
        self.popping = True
        await self.faults.wait_for(len(self.faults) + len(expected), timeout_cycles)
        for _ in range(5):
            await RisingEdge(self.dut.clk)
        self.popping = False
        got = driver.faults_from_beats(self.cfg, self.faults.values[-len(expected):] if expected else [])
        assert len(self.faults.values) == self.faults_popped + len(expected), \
            f"fault FIFO gave {len(self.faults.values) - self.faults_popped} entries, golden log {len(expected)}"
        assert got == expected, f"fault log {got}, golden {expected}"
        self.faults_popped = len(self.faults.values)
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
        # Both count rising edges since reset was released.
        assert regs["CYCLES"] == regs["at"] & mask, f"CYCLES = {regs['CYCLES']}, clock at {regs['at']}"
        self.scoreboard.assert_done(self.expected_outputs)
        return regs
