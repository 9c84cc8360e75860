"""cocotb testbench for ``SparseSystolicArray``: host driver, golden model, scoreboard and counter checks.

Structured like cocotb's ``examples/matrix_multiplier``: stream agents from :mod:`sim.common.stream` drive and
monitor the ports, :mod:`sim.systolic.golden` predicts every result beat and the zero-skip count, and a
:class:`~sim.common.scoreboard.Scoreboard` compares each beat as it leaves. Everything about beats comes from
:mod:`hw.systolic.beats`, the one definition of the formats.
"""

import random

import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.systolic import beats
from sim.systolic import golden
from gen.systolic import perf
from sim.common.scoreboard import Scoreboard
from sim.common.stream import StreamDriver, StreamMonitor, clock_and_reset, random_pauses

__all__ = ["ArrayTB", "SystolicArrayTB"]

COUNTERS = ("cycles", "busy_cycles", "stall_cycles", "zero_skips")


class ArrayTB:
    """What every array testbench shares: stimulus RNG, the ``acts``/``weights``/``results`` agents, the scoreboard
    and the counter read-out (``cycles``, ``busy_cycles``, ``stall_cycles``, ``zero_skips``).

    Parameters
    ----------
    dut : cocotb handle
    seed : int
        Seeds the stimulus and the gap/backpressure patterns.
    gap : float
        Probability per cycle that a driver idles before its next beat (input gaps).
    stall : float
        Probability per cycle that ``results__ready`` is low (output backpressure).
    formatter : callable
        Renders a result beat for the scoreboard's messages.
    """

    def __init__(self, dut, *, seed, gap, stall, formatter):
        self.dut = dut
        self.rng = np.random.default_rng(seed)
        self._seed, self._gap, self._stall = seed, gap, stall
        self.expected_skips = 0
        self.scoreboard = Scoreboard("results", dut._log, formatter=formatter)

    async def start(self, clock_ns=10):
        """Start the clock, reset for 2 cycles, then create the agents."""
        dut = self.dut
        self.counter = await clock_and_reset(dut, sources=("acts", "weights"), sinks=("results",), clock_ns=clock_ns)
        seeds = random.Random(self._seed)
        self.weights = StreamDriver(dut, "weights", dut.clk, counter=self.counter,
                                    pause=random_pauses(random.Random(seeds.random()), self._gap))
        self.acts = StreamDriver(dut, "acts", dut.clk, counter=self.counter,
                                 pause=random_pauses(random.Random(seeds.random()), self._gap))
        self.results = StreamMonitor(dut, "results", dut.clk, counter=self.counter,
                                     pause=random_pauses(random.Random(seeds.random()), self._stall),
                                     callback=self.scoreboard.check)
        self.counters_at_start = await self.read_counters()

    async def read_counters(self):
        """The DUT's counters and the testbench's cycle number (``"at"``), read at one instant."""
        await ReadOnly()
        values = {name: int(getattr(self.dut, name).value) for name in COUNTERS}
        values["at"] = self.counter.cycle
        await RisingEdge(self.dut.clk)
        return values


class SystolicArrayTB(ArrayTB):
    """Drives one ``SparseSystolicArray`` DUT and checks it against the golden model.

    ``cfg`` (:class:`gen.systolic.config.SystolicConfig`) is the config the DUT was generated from; the other parameters
    are :class:`ArrayTB`'s.
    """

    def __init__(self, dut, cfg, *, seed, gap=0.0, stall=0.0):
        self.cfg = cfg
        self.jobs = []          # (W, A) in the order sent
        super().__init__(dut, seed=seed, gap=gap, stall=stall,
                         formatter=lambda word: "C row " + str(beats.results_from_beats(cfg, [word])[0].tolist()))

    def random_job(self, m, density=0.75):
        """A random (W, A) for this config: extremes, zeros and partly filled blocks included."""
        cfg = self.cfg
        W = golden.random_nm_weights(self.rng, k=cfg.k, n=cfg.cols, keep=cfg.keep, block=cfg.block,
                                     weight_bits=cfg.weight_bits, density=density)
        A = golden.random_acts(self.rng, m=m, k=cfg.k, act_bits=cfg.act_bits, act_signed=cfg.act_signed)
        return W, A

    async def run_job(self, W, A):
        """Load W, then stream A; the expected results go to the scoreboard. Returns once A is sent."""
        cfg = self.cfg
        values, indices, C, skips = golden.array_job(cfg, W, A)
        self.scoreboard.expect(beats.result_beats(cfg, C))
        self.expected_skips += skips
        self.jobs.append((W, A))
        await self.weights.send(beats.weight_beats(cfg, values, indices))
        await self.acts.send(beats.act_beats(cfg, A))

    async def finish(self, timeout_cycles=None):
        """Wait for every expected result, then check the count, the counters and the stream timing."""
        cfg = self.cfg
        rows = sum(len(A) for _, A in self.jobs)
        if timeout_cycles is None:
            timeout_cycles = 50 * (rows + cfg.rows * len(self.jobs) + perf.latency(cfg)) + 1000
        await self.results.wait_for(rows, timeout_cycles)
        for _ in range(3):                     # anything extra would show up here
            await RisingEdge(self.dut.clk)
        self.scoreboard.assert_done(rows)
        end = await self.read_counters()
        start = self.counters_at_start
        got = {name: (end[name] - start[name]) % (1 << cfg.counter_bits) for name in COUNTERS}
        assert got["cycles"] == end["at"] - start["at"], \
            f"cycles counter advanced {got['cycles']}, the clock ticked {end['at'] - start['at']} times"
        assert got["zero_skips"] == self.expected_skips, \
            f"zero_skips counter {got['zero_skips']}, golden {self.expected_skips}"
        assert got["stall_cycles"] == self.results.stall_cycles, \
            f"stall_cycles counter {got['stall_cycles']}, monitor saw {self.results.stall_cycles}"
        # busy: cycles from an activation transfer to its result's transfer (union over rows), not stalled.
        acts, res = self.acts.handshake_cycles, self.results.handshake_cycles
        covered = set()
        for a, r in zip(acts, res):
            covered.update(range(a, r + 1))
        assert got["busy_cycles"] == len(covered) - self.results.stall_cycles, \
            f"busy_cycles counter {got['busy_cycles']}, spec gives {len(covered) - self.results.stall_cycles}"
        latencies = [r - a for a, r in zip(acts, res)]
        assert min(latencies) >= perf.latency(cfg), f"a result left after {min(latencies)} cycles"
        return got
