"""Amaranth-simulator testbenches under a cycle bound: a design that stops making progress fails the test within
the bound, naming what the testbenches were waiting for, instead of hanging it.

::

    model = perf.predict(cfg, shapes).cycles
    bench = Bench(dut, within=bound(model), model=model)
    bench.add(producer)          # async def producer(ctx): ... await bench.until(ctx, dut.x.valid, what="x.valid")
    bench.add(consumer)
    bench.run()                  # AssertionError after `within` cycles if a testbench has not returned

:func:`sim.common.amaranth_streams.put_all` / :func:`~sim.common.amaranth_streams.get_all` take ``bench=`` and
register the beat they wait for, so the failure reads e.g. ``timeout: 120 cycles (cycle model: 28) and still
waiting for results.valid (beat 7 of 12)``.
"""

import math
from contextlib import contextmanager
from itertools import count

from amaranth.sim import Simulator

__all__ = ["Bench", "bound"]


def bound(model: int, *, gap: float = 0.0, stall: float = 0.0) -> int:
    """A generous cycle bound for a run that the cycle model puts at ``model`` cycles for an ideal host.

    A stream that idles with probability ``gap`` per cycle (inputs), or is held with probability ``stall``
    (outputs), takes ``1/(1 − p)`` cycles per beat on average; the run's expected stretch is at most
    ``1 + gap/(1 − gap) + stall/(1 − stall)``. The bound is twice the stretched count plus 100 cycles for short
    runs and fixed testbench overheads.
    """
    stretch = 1 + gap / (1 - gap) + stall / (1 - stall)
    return math.ceil(2 * model * stretch) + 100


class Bench:
    """One simulation of ``dut`` (clock ``period``) whose testbenches must all return within ``within`` cycles.

    ``model`` (the cycle model's count for the run) and ``why`` (how ``within`` was chosen, when there is no
    model) only go into the failure message.
    """

    def __init__(self, dut, *, within, model=None, why=None, period=1e-6):
        if within < 1:
            raise ValueError(f"within = {within} must be at least 1 cycle")
        self.sim = Simulator(dut)
        self.sim.add_clock(period)
        self.within, self.model, self.why = int(within), model, why
        self._running = []               # names of the testbenches that have not returned
        self._waits = {}                 # token → what a testbench is waiting for now
        self._tokens = count()

    def add(self, testbench, *, name=None, background=False):
        """Add a testbench ``async def testbench(ctx)``. A ``background`` one (a monitor that never returns) does
        not keep the simulation running."""
        if background:
            self.sim.add_testbench(testbench, background=True)
            return
        name = name or testbench.__name__

        async def tracked(ctx):
            self._running.append(name)
            await testbench(ctx)
            self._running.remove(name)

        self.sim.add_testbench(tracked)

    @contextmanager
    def waiting(self, what):
        """Name what the enclosed ticks wait for (shown if the bound runs out meanwhile)."""
        token = next(self._tokens)
        self._waits[token] = what
        try:
            yield
        finally:
            del self._waits[token]

    async def until(self, ctx, condition, *, what):
        """Wait until ``condition`` holds; return the number of ticks taken.

        ``condition`` is a value-like, sampled at each clock edge as ``ctx.tick().until`` does (at least one tick),
        or a zero-argument callable on testbench state, checked now and after each tick (0 ticks if it holds).
        """
        with self.waiting(what):
            ticks = 0
            if callable(condition):
                while not condition():
                    await ctx.tick()
                    ticks += 1
                return ticks
            while True:
                _, _, done = await ctx.tick().sample(condition)
                ticks += 1
                if done:
                    return ticks

    def run(self):
        """Run until every testbench has returned; fail after ``within`` cycles."""
        async def watchdog(ctx):
            # one-shot ticks, not ctx.tick().repeat(): an async generator left suspended in a background
            # testbench when the simulation ends warns when it is garbage-collected
            for _ in range(self.within):
                await ctx.tick()
            raise AssertionError(self._timeout_message())

        self.sim.add_testbench(watchdog, background=True)
        self.sim.run()

    def _timeout_message(self):
        why = f"cycle model: {self.model}" if self.model is not None else None
        why = ", ".join(part for part in (why, self.why) if part)
        waits = "; ".join(self._waits.values()) or "nothing registered"
        return (f"timeout: {self.within} cycles{f' ({why})' if why else ''} and still waiting for {waits} "
                f"(testbenches not done: {', '.join(self._running)})")
