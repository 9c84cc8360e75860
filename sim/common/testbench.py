"""The base of the design testbenches: clock and reset, one agent per stream, an in-order scoreboard on the result
stream, counter read-out, and a cycle budget from the cycle model for every wait on the DUT.

Built like cocotb's ``examples/matrix_multiplier``: agents (:mod:`sim.common.stream`) drive and sample the ports,
the design's golden model predicts each result beat, and a :class:`~sim.common.scoreboard.Scoreboard` compares them
as they leave. A design's testbench (``sim/<design>/tb.py``) names its streams and counters in class attributes and
adds its operations; the cocotb test modules (``sim/<design>/cocotb_*.py``) drive those.

Cycle budget
------------
Each operation that queues work calls :meth:`Testbench.allow` with the cycles the design's cycle model gives for it
(an ideal host); that moves the testbench's *deadline* by :func:`cycle_budget` of them. Every wait on the DUT (a
send, the results, an idle flag) is bounded by the cycles left until the deadline, and fails with an
``AssertionError`` naming what it waited for, the bound and the seed.
"""

from __future__ import annotations

import math
import random

import numpy as np
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from sim.common.scoreboard import Scoreboard
from sim.common.stream import StreamSink, StreamSource, clock_and_reset, random_pauses, timeout_error

__all__ = ["Testbench", "cycle_budget", "SOAK_GAP", "SOAK_STALL", "write_soak_report"]

# The soak runs (make bench, section soak): probability of an input gap on every source and of backpressure on
# every sink, each cycle.
SOAK_GAP, SOAK_STALL = 0.3, 0.3


def cycle_budget(model_cycles: int, *, gap: float = 0.0, stall: float = 0.0, margin: int = 100) -> int:
    """Cycles allowed for work the cycle model says takes ``model_cycles`` with an ideal host.

    Twice ``model_cycles``, stretched by the mean slowdown of random input gaps (probability ``gap`` per cycle) and
    output backpressure (``stall``), plus ``margin`` for the fixed costs and the randomness of short runs.
    """
    return math.ceil(2 * model_cycles / ((1.0 - gap) * (1.0 - stall))) + margin


class Testbench:
    """Clock, reset, stream agents, scoreboard, counters and the cycle budget of one DUT.

    Parameters
    ----------
    dut : cocotb handle
    seed : int
        Seeds :attr:`rng` (the stimulus) and, independently per agent, the gap and backpressure patterns.
    gap : float
        Probability per cycle that a source idles before its next beat (input gaps).
    stall : float
        Probability per cycle that a sink holds ``ready`` low (output backpressure).
    formatter : callable, optional
        Renders a result beat in the scoreboard's messages.

    Attributes
    ----------
    sources, sinks : dict of str to agent
        A :class:`~sim.common.stream.StreamSource` per name in :attr:`SOURCES`, a
        :class:`~sim.common.stream.StreamSink` per name in :attr:`SINKS` (after :meth:`start`).
    scoreboard : Scoreboard
        Checks every beat of the :attr:`RESULTS` sink as it transfers.
    counter : CycleCounter
        The clock's cycle counter, from the first cycle out of reset.
    counters_at_start : dict
        :meth:`read_counters` right after :meth:`start` (when :attr:`COUNTERS` is not empty).

    Notes
    -----
    Subclasses set :attr:`SOURCES`, :attr:`SINKS`, :attr:`RESULTS` (the sink the scoreboard checks), :attr:`ZERO`
    (other inputs held at 0 through reset), :attr:`COUNTERS` (counter output ports) and :attr:`STATUS` (other output
    ports :meth:`read_counters` reads with them).
    """

    SOURCES: tuple[str, ...] = ()
    SINKS: tuple[str, ...] = ()
    RESULTS: str | None = None
    ZERO: tuple[str, ...] = ()
    COUNTERS: tuple[str, ...] = ()
    STATUS: tuple[str, ...] = ()

    def __init__(self, dut, *, seed: int, gap: float = 0.0, stall: float = 0.0, formatter=None) -> None:
        self.dut = dut
        self.seed, self.gap, self.stall = seed, gap, stall
        self.rng = np.random.default_rng(seed)
        self.scoreboard = Scoreboard(self.RESULTS or "results", dut._log, formatter=formatter)
        self.sources: dict[str, StreamSource] = {}
        self.sinks: dict[str, StreamSink] = {}
        self.deadline = 0

    @property
    def results(self) -> StreamSink:
        """The sink whose beats the scoreboard checks."""
        return self.sinks[self.RESULTS]

    def pause_generator(self, name: str, rng: random.Random):
        """Pause generator of stream ``name``: random gaps on a source, random backpressure on a sink; ``None``
        at probability 0. Override for a stream that needs another pattern."""
        probability = self.gap if name in self.SOURCES else self.stall
        return random_pauses(rng, probability) if probability else None

    async def start(self, clock_ns: int = 10) -> None:
        """Start the clock, reset for 2 cycles with every stream idle, create the agents, read the counters."""
        dut = self.dut
        self.counter = await clock_and_reset(dut, sources=self.SOURCES, sinks=self.SINKS, zero=self.ZERO,
                                             clock_ns=clock_ns)
        patterns = random.Random(self.seed)       # one sub-seed per agent: patterns independent of each other
        for name in self.SOURCES:
            self.sources[name] = StreamSource(dut, name, dut.clk, counter=self.counter,
                                              pause=self.pause_generator(name, random.Random(patterns.random())))
        for name in self.SINKS:
            self.sinks[name] = StreamSink(dut, name, dut.clk, counter=self.counter,
                                          pause=self.pause_generator(name, random.Random(patterns.random())),
                                          callback=self.scoreboard.check if name == self.RESULTS else None)
        self.deadline = self.counter.cycle
        if self.COUNTERS:
            self.counters_at_start = await self.read_counters()

    # ---- the cycle budget -------------------------------------------------------------------------------------------

    def allow(self, model_cycles: int) -> None:
        """Work the cycle model says takes ``model_cycles`` (ideal host) was queued: extend the deadline by its
        :func:`cycle_budget`, counted from now or from the current deadline, whichever is later."""
        self.deadline = (max(self.deadline, self.counter.cycle)
                         + cycle_budget(model_cycles, gap=self.gap, stall=self.stall))

    @property
    def remaining(self) -> int:
        """Cycles left until the deadline (at least 1)."""
        return max(1, self.deadline - self.counter.cycle)

    async def send(self, beats: dict[str, list[int]]) -> None:
        """Send each stream's beats (all streams at once); returns when all have transferred, within the deadline."""
        queued = {name: self.sources[name].send_nowait(b) for name, b in beats.items()}
        for name, count in queued.items():
            await self.sources[name].wait_sent(count, timeout_cycles=self.remaining)

    async def wait_results(self, count: int, what: str = "") -> list[int]:
        """Wait, within the deadline, until ``count`` result beats have transferred."""
        return await self.results.wait_for(count, timeout_cycles=self.remaining,
                                           what=f"{count} result beats{' (' + what + ')' if what else ''}")

    async def wait_until(self, condition, what: str) -> None:
        """Check ``condition()`` in ``ReadOnly`` of each cycle until it holds, within the deadline."""
        bound = self.remaining
        for _ in range(bound):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if condition():
                return
        raise timeout_error(what, bound, f"cycle {self.counter.cycle}")

    async def settle(self, cycles: int = 3) -> None:
        """Let ``cycles`` cycles pass: a beat the DUT should not produce would arrive (and fail the scoreboard)."""
        await ClockCycles(self.dut.clk, cycles)

    # ---- soak accounting -------------------------------------------------------------------------------------------

    def soak_report(self) -> dict:
        """Beats that crossed every port, and the result beats lost or duplicated against the golden model.

        ``lost`` counts expected result beats that never transferred and ``duplicated`` result beats beyond the
        expected ones (the scoreboard also fails on either, as on any wrong word); ``unsent`` counts queued input
        beats the DUT never took. All three are 0 in a passing run."""
        beats = {name: len(src.handshake_cycles) for name, src in self.sources.items()}
        beats |= {name: len(sink) for name, sink in self.sinks.items()}
        expected, received = len(self.scoreboard.expected), len(self.results)
        return {"beats": sum(beats.values()), "per_stream": beats, "checked": self.scoreboard.matched,
                "lost": max(0, expected - received), "duplicated": max(0, received - expected),
                "unsent": sum(src.queued - len(src.handshake_cycles) for src in self.sources.values()),
                "cycles": self.counter.cycle, "gap": self.gap, "stall": self.stall, "seed": self.seed}

    # ---- counters -----------------------------------------------------------------------------------------------------

    async def read_counters(self) -> dict[str, int]:
        """The :attr:`COUNTERS` and :attr:`STATUS` ports and the cycle number (``"at"``), read at one instant;
        returns after the next edge."""
        await ReadOnly()
        values = {name: int(getattr(self.dut, name).value) for name in self.COUNTERS + self.STATUS}
        values["at"] = self.counter.cycle
        await RisingEdge(self.dut.clk)
        return values

    def counter_deltas(self, end: dict[str, int], bits: int) -> dict[str, int]:
        """How far each of :attr:`COUNTERS` advanced from :attr:`counters_at_start` to ``end`` (``bits``-bit
        counters wrap); checks that ``cycles``, when it is one of them, advanced with the clock."""
        start = self.counters_at_start
        got = {name: (end[name] - start[name]) % (1 << bits) for name in self.COUNTERS}
        if "cycles" in got:
            assert got["cycles"] == end["at"] - start["at"], \
                f"cycles counter advanced {got['cycles']}, the clock ticked {end['at'] - start['at']} times"
        return got


def write_soak_report(tb: Testbench, path) -> dict:
    """Write :meth:`Testbench.soak_report` of ``tb`` as JSON to ``path`` (the ``soak_report`` knob); returns it."""
    import json
    from pathlib import Path

    report = tb.soak_report()
    Path(path).write_text(json.dumps(report, indent=1) + "\n")
    return report
