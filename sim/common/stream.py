"""cocotb agents for ``amaranth.lib.stream`` ports: a source, a sink and a passive monitor.

An Amaranth stream named ``acts`` becomes the Verilog ports ``acts__valid``, ``acts__ready`` and
``acts__payload`` (one flat vector, LSB first). A beat transfers on a rising ``clk`` edge where
``valid && ready``.

- :class:`StreamSource` (a stream into the DUT) drives ``valid`` and ``payload`` and records the handshake
  cycle of every beat it sends;
- :class:`StreamSink` (a stream out of the DUT) drives ``ready`` and records every beat taken, the stall
  cycles and any break of the stream rule;
- :class:`StreamMonitor` (any stream) drives nothing and records the same from ``valid && ready`` alone.

Cycle numbers
-------------
:class:`CycleCounter` numbers the rising edges of ``clk`` it sees: the first edge after it started is
cycle 1, the next cycle 2, and so on. The *handshake cycle* of a transfer is the number of the rising
edge at which it happens, so two transfers at consecutive edges differ by exactly 1, and a beat that
enters a pipeline at cycle t and leaves it at cycle t + L has latency L. Every agent of one clock shares
one counter (:meth:`CycleCounter.shared`), so their cycle numbers are comparable.

Sampling and driving (race-free on Verilator and Icarus)
--------------------------------------------------------
Each agent runs one loop per clock cycle:

1. ``await RisingEdge(clk)``: the DUT has just captured the previous cycle's inputs.
2. Drive this cycle's outputs (source: ``valid``/``payload``; sink: ``ready``; monitor: nothing). cocotb
   applies the writes after the edge has been evaluated (Verilator: inertial writes; Icarus: in the
   ReadWrite phase), so the DUT never sees them at this edge.
3. ``await ReadOnly()``: every value of this cycle has settled, including a DUT ``ready`` that
   depends combinationally on another port (downstream ``ready``, another stream's ``valid``).
   ``valid && ready`` seen here is the transfer that happens at the *next* rising edge, so it is
   recorded with cycle number ``counter.cycle + 1``.

Nothing is read right after the edge, where Icarus may still show pre-edge values of the DUT's
registers, and nothing is written in ``ReadOnly``. An idle source sleeps on an event instead of the
clock; :meth:`StreamSource.send` wakes it in the same time step, so beats queued right after an edge
are offered in that cycle whichever coroutine the simulator resumed first. Reset is not looked at:
create the agents after releasing ``rst``, or keep ``valid`` low while it is high.

Pause generators (in the style of cocotbext-axi)
------------------------------------------------
The source and the sink take a pause generator (constructor argument ``pause`` or
:meth:`set_pause_generator`): any iterable of bools, consumed one item per clock cycle. ``True`` means
"not this cycle": no new beat is offered (source) or ``ready`` is low (sink); ``None`` never pauses. A
finite iterable that runs out counts as ``False`` from then on. :func:`random_pauses` makes a seeded one.

Bounded waits
-------------
:meth:`StreamSource.send` and :meth:`StreamSink.wait_for` / :meth:`StreamMonitor.wait_for` take a
``timeout_cycles`` bound and raise ``AssertionError`` naming the stream, what was awaited, the bound and
the seed's replay hint when it passes: a DUT that never answers fails the test instead of hanging it.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, ReadOnly, RisingEdge, current_gpi_trigger

from sim.common.tbenv import replay_hint

__all__ = ["CycleCounter", "StreamSource", "StreamSink", "StreamMonitor", "clock_and_reset", "random_pauses",
           "no_pauses", "timeout_error"]


async def clock_and_reset(dut, *, sources=(), sinks=(), zero=(), clock_ns=10, cycles=2) -> "CycleCounter":
    """Start ``dut.clk``, hold ``dut.rst`` high for ``cycles`` rising edges with every input stream idle, release it.

    ``sources`` / ``sinks`` name the DUT's input / output streams: their ``<name>__valid`` / ``<name>__ready`` are
    driven low during reset; ``zero`` names other inputs driven to 0. Returns the shared :class:`CycleCounter`,
    which counts from the first cycle out of reset.
    """
    Clock(dut.clk, clock_ns, unit="ns").start()
    dut.rst.value = 1
    for name in sources:
        getattr(dut, f"{name}__valid").value = 0
    for name in sinks:
        getattr(dut, f"{name}__ready").value = 0
    for name in zero:
        getattr(dut, name).value = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    return CycleCounter.shared(dut.clk, restart=True)


def random_pauses(rng: random.Random, probability: float) -> Iterator[bool]:
    """Infinite pause generator: ``True`` with ``probability`` each cycle, drawn from ``rng`` (seeded)."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1], not {probability!r}")
    while True:
        yield rng.random() < probability


def no_pauses() -> Iterator[bool]:
    """Infinite pause generator that never pauses (full throughput)."""
    return itertools.repeat(False)


def timeout_error(what: str, bound: int, detail: str = "") -> AssertionError:
    """The error of a bounded wait that ran out: what was awaited, the bound, ``detail`` and the replay hint."""
    return AssertionError(f"timeout: {what} not done within {bound} cycles" + (f" ({detail})" if detail else "")
                          + f"; {replay_hint()}")


def _bit(handle, what: str) -> bool:
    """Value of a 1-bit signal; X/Z is an error (``bool()`` of an unresolved bit is too cryptic)."""
    value = handle.value
    if not value.is_resolvable:
        raise AssertionError(f"{what} is {value!s} (not 0/1)")
    return bool(value)


def _in_readonly() -> bool:
    try:
        return isinstance(current_gpi_trigger(), ReadOnly)
    except RuntimeError:              # no GPI trigger has fired yet: start of simulation
        return False


class CycleCounter:
    """Counts rising edges of ``clk``; ``cycle`` is the number of the latest edge (0 before the first).

    Parameters
    ----------
    clk : cocotb handle
        The clock.

    Notes
    -----
    The counter increments right after each edge, before any ``ReadOnly`` of that time step, so an agent
    reading ``cycle`` in ``ReadOnly`` after edge n always sees n.
    """

    _shared: dict = {}

    def __init__(self, clk) -> None:
        self.clk = clk
        self.cycle = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        edge = RisingEdge(self.clk)
        while True:
            await edge
            self.cycle += 1

    @classmethod
    def shared(cls, clk, *, restart: bool = False) -> CycleCounter:
        """The one counter of ``clk`` in the running test (a new one after the previous test ended, or when
        ``restart``: cycle 0 is now)."""
        counter = cls._shared.get(clk)
        if restart and counter is not None and not counter._task.done():
            counter._task.cancel()
            counter = None
        if counter is None or counter._task.done():    # cocotb cancels a test's tasks when it ends
            counter = cls._shared[clk] = cls(clk)
        return counter


class _Agent:
    """The ports of one stream, its clock and the shared cycle counter."""

    def __init__(self, dut, name: str, clk, counter: CycleCounter | None) -> None:
        self.name = name
        self.clk = clk
        self._valid = getattr(dut, f"{name}__valid")
        self._ready = getattr(dut, f"{name}__ready")
        self._payload = getattr(dut, f"{name}__payload")
        self.counter = counter or CycleCounter.shared(clk)


class _Pausing:
    """The pause generator of an agent that drives a handshake signal (cocotbext-axi's ``set_pause_generator``)."""

    _pause: Iterator[bool] | None = None

    def set_pause_generator(self, generator: Iterable[bool] | None = None) -> None:
        """Use ``generator`` (an iterable of bools, one per cycle, ``True`` = pause) from the next cycle on;
        ``None``: never pause."""
        self._pause = iter(generator) if generator is not None else None

    def _paused(self) -> bool:
        return next(self._pause, False) if self._pause is not None else False


class StreamSource(_Agent, _Pausing):
    """Source of a stream into the DUT: drives ``<name>__valid``/``__payload``, watches ``<name>__ready``.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    name : str
        Stream port prefix (``"acts"`` for ``acts__valid`` …).
    clk : cocotb handle
        The clock.
    pause : iterable of bool, optional
        Pause generator (:meth:`set_pause_generator`): ``True`` keeps ``valid`` low for that cycle. It only
        acts between beats: an offered beat holds ``valid`` and ``payload`` until it transfers (the stream rule).
    counter : CycleCounter, optional
        Defaults to :meth:`CycleCounter.shared` of ``clk``.

    Attributes
    ----------
    handshake_cycles : list of int
        Handshake cycle of every beat sent so far, in order.

    Notes
    -----
    ``valid`` is low and ``payload`` 0 until the first beat; between beats ``payload`` keeps the last
    beat. :meth:`send` called right after a rising edge (e.g. when an earlier ``send`` returned)
    offers its first beat in that cycle, so consecutive sends run back to back. The pause generator
    is consumed one item per cycle only while beats are queued or on the bus.
    """

    def __init__(self, dut, name: str, clk, *, pause: Iterable[bool] | None = None,
                 counter: CycleCounter | None = None) -> None:
        super().__init__(dut, name, clk, counter)
        self.set_pause_generator(pause)
        self.handshake_cycles: list[int] = []
        self._queue: deque[int] = deque()
        self._queued = 0                     # beats ever queued; send() waits for handshakes to reach it
        self._wake = Event()
        self._valid.value = 0
        self._payload.value = 0
        self._task = cocotb.start_soon(self._run())

    @property
    def queued(self) -> int:
        """Beats ever queued on this source."""
        return self._queued

    @property
    def idle(self) -> bool:
        """No beat waiting or on the bus."""
        return len(self.handshake_cycles) == self._queued

    def send_nowait(self, beats: Iterable[int]) -> int:
        """Queue ``beats`` and return at once; returns how many beats have been queued in all (for
        :meth:`wait_sent`)."""
        beats = [int(b) for b in beats]
        self._queue.extend(beats)
        self._queued += len(beats)
        self._wake.set()
        return self._queued

    async def send(self, beats: Iterable[int], *, timeout_cycles: int) -> None:
        """Send ``beats`` in order; returns right after the rising edge at which the last one transfers.

        Raises ``AssertionError`` when they have not all transferred within ``timeout_cycles`` cycles.
        """
        await self.wait_sent(self.send_nowait(beats), timeout_cycles=timeout_cycles)

    async def wait_sent(self, count: int, *, timeout_cycles: int) -> None:
        """Wait until ``count`` beats (counted since construction) have transferred, at most ``timeout_cycles``."""
        edge = RisingEdge(self.clk)
        for _ in range(timeout_cycles):
            if len(self.handshake_cycles) >= count:
                return
            await edge
        if len(self.handshake_cycles) < count:
            raise timeout_error(f"{self.name}: sending beat {len(self.handshake_cycles)} of {count}", timeout_cycles,
                                f"cycle {self.counter.cycle}, {self.name}__ready={self._ready.value!s}")

    async def _run(self) -> None:
        edge = RisingEdge(self.clk)
        offered = False                   # a beat is on the bus, not yet taken
        valid = False                     # what we last wrote to valid
        while True:
            # Here we are just after a rising edge (or at start-up), where writes are allowed.
            if not offered and not self._queue:
                if valid:
                    valid = False
                    self._valid.value = 0
                # Idle: sleep until send() instead of waking every cycle. send() called right after
                # an edge wakes us in that same time step, so its first beat is offered in this cycle
                # whether the test or this task saw the edge first.
                self._wake.clear()
                await self._wake.wait()
                if _in_readonly():        # send() from a ReadOnly callback: too late for this cycle
                    await edge
            paused = self._paused()
            if not offered and self._queue and not paused:
                self._payload.value = self._queue.popleft()
                offered = True
            if offered != valid:
                valid = offered
                self._valid.value = int(valid)
            await ReadOnly()
            if offered and _bit(self._ready, f"{self.name}__ready"):
                self.handshake_cycles.append(self.counter.cycle + 1)   # transfers at the next edge
                offered = False
            await edge


class StreamMonitor(_Agent):
    """Passive monitor of any stream: records the beats that transfer (``valid && ready``), drives nothing.

    Parameters
    ----------
    dut : cocotb handle
        The top level.
    name : str
        Stream port prefix.
    clk : cocotb handle
        The clock.
    callback : callable, optional
        Called with each beat's payload (an ``int``) in ``ReadOnly`` just before the edge at which it
        transfers, e.g. ``Scoreboard.check``. It must not write signals.
    check_protocol : bool
        Fail when the stream rule breaks: ``valid`` dropped, or ``payload`` changed, while a beat was
        offered and not taken.
    counter : CycleCounter, optional
        Defaults to :meth:`CycleCounter.shared` of ``clk``.

    Attributes
    ----------
    values : list of int
        Payloads of the beats transferred so far, in order.
    handshake_cycles : list of int
        Their handshake cycles.
    stall_cycles : int
        Cycles seen with ``valid && !ready``.
    """

    def __init__(self, dut, name: str, clk, *, callback: Callable[[int], object] | None = None,
                 check_protocol: bool = True, counter: CycleCounter | None = None) -> None:
        super().__init__(dut, name, clk, counter)
        self.callback = callback
        self.check_protocol = check_protocol
        self.values: list[int] = []
        self.handshake_cycles: list[int] = []
        self.stall_cycles = 0
        self._held = None                 # payload offered but not taken last cycle
        self._start()

    def _start(self) -> None:
        self._task = cocotb.start_soon(self._run())

    def __len__(self) -> int:
        return len(self.values)

    async def wait_for(self, n: int, *, timeout_cycles: int, what: str | None = None) -> list[int]:
        """Wait until ``n`` beats have transferred; return the first ``n`` payloads.

        Returns right after the rising edge at which beat ``n`` transfers (at once if it already has).
        Raises ``AssertionError`` naming ``what`` (default: the beat count) after ``timeout_cycles`` cycles
        without reaching ``n``.
        """
        edge = RisingEdge(self.clk)
        for _ in range(timeout_cycles):
            if len(self.values) >= n:
                return self.values[:n]
            await edge
        if len(self.values) >= n:
            return self.values[:n]
        raise timeout_error(f"{self.name}: waiting for {what or f'{n} beats'}", timeout_cycles,
                            f"got {len(self.values)} of {n} beats by cycle {self.counter.cycle}, "
                            f"{self.stall_cycles} stall cycles, {self.name}__valid={self._valid.value!s}")

    def _ready_now(self) -> bool:
        return _bit(self._ready, f"{self.name}__ready")

    def _observe(self) -> None:
        """In ``ReadOnly``: record the beat that transfers at the next edge, or the stall, and check the rule."""
        if not _bit(self._valid, f"{self.name}__valid"):
            if self.check_protocol and self._held is not None:
                raise AssertionError(f"{self.name}: valid dropped at cycle {self.counter.cycle} "
                                     f"before beat {len(self.values)} was taken (stream rule)")
            self._held = None
            return
        try:
            value = int(self._payload.value)   # cheaper than .is_resolvable on wide vectors
        except ValueError:
            raise AssertionError(f"{self.name}: payload is {self._payload.value!s} while valid "
                                 f"(cycle {self.counter.cycle})") from None
        if self.check_protocol and self._held is not None and value != self._held:
            raise AssertionError(f"{self.name}: payload changed at cycle {self.counter.cycle} "
                                 f"while beat {len(self.values)} waited (stream rule)")
        if self._ready_now():
            self._held = None
            self.values.append(value)
            self.handshake_cycles.append(self.counter.cycle + 1)   # transfers at the next edge
            if self.callback is not None:
                self.callback(value)
        else:
            self.stall_cycles += 1
            self._held = value

    def _drive(self) -> None:
        """Right after an edge: drive this cycle's outputs (a monitor drives none)."""

    async def _run(self) -> None:
        edge = RisingEdge(self.clk)
        if _in_readonly():                # created in a ReadOnly callback: this cycle is already being sampled
            await edge
            self._drive()
        while True:
            # From the cycle of construction on: created right after an edge, the agent sees a transfer at the
            # next one.
            await ReadOnly()
            self._observe()
            await edge
            self._drive()


class StreamSink(StreamMonitor, _Pausing):
    """Sink of a stream out of the DUT: drives ``<name>__ready``, collects the beats that transfer.

    A :class:`StreamMonitor` that also drives ``ready``: same parameters and attributes, plus

    Parameters
    ----------
    pause : iterable of bool, optional
        Backpressure generator (:meth:`set_pause_generator`): ``True`` drives ``ready`` low for that cycle.
        Default: always ready.

    Notes
    -----
    The pause generator decides ``ready`` from the cycle of construction on.
    """

    def __init__(self, dut, name: str, clk, *, pause: Iterable[bool] | None = None,
                 callback: Callable[[int], object] | None = None, check_protocol: bool = True,
                 counter: CycleCounter | None = None) -> None:
        self._ready_driven = False        # what we last wrote to ready
        super().__init__(dut, name, clk, callback=callback, check_protocol=check_protocol, counter=counter)
        self.set_pause_generator(pause)
        if _in_readonly():                # no writes now: ready is driven from the next edge on
            return
        self._ready.value = 0
        self._drive()

    def _ready_now(self) -> bool:
        return self._ready_driven

    def _drive(self) -> None:
        want = not self._paused()
        if want != self._ready_driven:
            self._ready_driven = want
            self._ready.value = int(want)
