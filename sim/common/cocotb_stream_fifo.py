"""cocotb self-test of the stream agents and the scoreboard (:mod:`sim.common.stream`, :mod:`sim.common.scoreboard`)
on ``stream_fifo``.

Run by ``tests/test_stream_infra.py``. The DUT has three independent stream channels:

======  ======  =============================================================  ========
in      out     what                                                           latency
======  ======  =============================================================  ========
``i``   ``o``   ``SyncFIFOBuffered(width=16, depth=4)``                        2
``wi``  ``wo``  wires: ``wo.valid = wi.valid``, ``wi.ready = wo.ready``        0
``pi``  ``po``  2 register stages, 130-bit payload, ``ready`` combinational    2
======  ======  =============================================================  ========

Latency is from input handshake to output handshake when nothing stalls. The wire channel has ``ready``
and ``valid`` combinational through the DUT, so the source and the sink see one handshake: equal
cycle numbers prove that both sample race-free.

Settings (:func:`sim.common.tbenv.settings`): the stimulus seed and the knobs ``beats``, ``in_pause``, ``out_pause``
and ``failing`` (runs ``deliberately_failing``).
"""

import random

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from sim.common.scoreboard import Scoreboard
from sim.common.stream import (StreamMonitor, StreamSink, StreamSource, clock_and_reset, no_pauses,
                               random_pauses)
from sim.common.tbenv import knob, settings
from sim.common.testbench import cycle_budget

CHANNELS = {"fifo": ("i", "o", 2), "wire": ("wi", "wo", 0), "pipe": ("pi", "po", 2)}


async def reset(dut):
    """Start the clock and hold ``rst`` for 3 cycles with every stream idle; returns the cycle counter."""
    return await clock_and_reset(dut, sources=[src for src, _, _ in CHANNELS.values()],
                                 sinks=[dst for _, dst, _ in CHANNELS.values()], cycles=3)


@cocotb.test()
async def random_traffic(dut):
    """Seeded random beats, input gaps and output backpressure on all channels at once. Passive monitors beside
    every source and sink see the same beats at the same cycles."""
    s = settings()
    counter = await reset(dut)
    rng = random.Random(s.seed)
    n, in_pause, out_pause = s.knob("beats", 500), s.knob("in_pause", 0.3), s.knob("out_pause", 0.3)
    channels = []
    for name, (src, dst, latency) in CHANNELS.items():
        width = len(getattr(dut, f"{src}__payload"))
        beats = [rng.getrandbits(width) for _ in range(n)]
        sb = Scoreboard(name, dut._log)
        sb.expect(beats)
        source = StreamSource(dut, src, dut.clk, pause=random_pauses(random.Random(rng.getrandbits(64)), in_pause))
        sink = StreamSink(dut, dst, dut.clk, callback=sb.check,
                          pause=random_pauses(random.Random(rng.getrandbits(64)), out_pause))
        monitors = StreamMonitor(dut, src, dut.clk), StreamMonitor(dut, dst, dut.clk)
        channels.append((name, latency, beats, sb, source, sink, monitors))
    for _, _, beats, _, source, _, _ in channels:
        source.send_nowait(beats)
    deadline = counter.cycle + cycle_budget(n + 2, gap=in_pause, stall=out_pause)
    for name, latency, beats, sb, source, sink, _ in channels:
        await sink.wait_for(n, timeout_cycles=max(1, deadline - counter.cycle), what=f"{name}: {n} beats out")
        await source.wait_sent(n, timeout_cycles=max(1, deadline - counter.cycle))
    await ClockCycles(dut.clk, 20)           # extra beats would arrive now and fail sb.check
    for name, latency, beats, sb, source, sink, (in_mon, out_mon) in channels:
        sb.assert_done(n)
        assert in_mon.values == beats, f"{name}: the input monitor saw other beats than the source sent"
        assert in_mon.handshake_cycles == source.handshake_cycles, f"{name}: input monitor and source disagree"
        assert out_mon.values == sink.values, f"{name}: the output monitor saw other beats than the sink took"
        assert out_mon.handshake_cycles == sink.handshake_cycles, f"{name}: output monitor and sink disagree"
        assert out_mon.stall_cycles == sink.stall_cycles, f"{name}: output monitor and sink count other stalls"
        lat = [o - i for i, o in zip(source.handshake_cycles, sink.handshake_cycles)]
        if name == "wire":
            assert lat == [0] * n, f"wire: source and sink saw different handshake cycles: {lat[:20]}"
        assert min(lat) >= latency, f"{name}: a beat left {min(lat)} cycles after entering (< {latency})"
        dut._log.info("%s: %d beats, %d stall cycles, last handshake at cycle %d", name, n,
                      sink.stall_cycles, sink.handshake_cycles[-1])
        assert sink.stall_cycles > 0, f"{name}: backpressure never stalled the DUT"


@cocotb.test()
async def full_throughput(dut):
    """Without pauses every channel moves one beat per cycle with its fixed latency."""
    await reset(dut)
    n = 64
    for name, (src, dst, latency) in CHANNELS.items():
        width = len(getattr(dut, f"{src}__payload"))
        beats = [(k * 0x9E3779B97F4A7C15) % (1 << width) for k in range(n)]
        source = StreamSource(dut, src, dut.clk, pause=no_pauses())
        sink = StreamSink(dut, dst, dut.clk)
        await source.send(beats[: n // 2], timeout_cycles=n // 2 + 1)
        await source.send(beats[n // 2:], timeout_cycles=n // 2 + 1)    # a second send continues without a gap
        await sink.wait_for(n, timeout_cycles=n + 10)
        sb = Scoreboard(name, dut._log)
        sb.expect(beats)
        sb.compare(sink.values)
        sb.assert_done(n)
        for what, cycles in (("input", source.handshake_cycles), ("output", sink.handshake_cycles)):
            gaps = {b - a for a, b in zip(cycles, cycles[1:])}
            assert gaps == {1}, f"{name}: {what} handshakes not back-to-back, gaps {sorted(gaps)}"
        lat = {o - i for i, o in zip(source.handshake_cycles, sink.handshake_cycles)}
        assert lat == {latency}, f"{name}: latency {sorted(lat)}, expected {latency}"
        assert sink.stall_cycles == 0


@cocotb.test()
async def passive_monitor_drives_nothing(dut):
    """A monitor alone on ``o`` leaves ``o__ready`` as this test drives it and records exactly the beats that
    transfer under it: none while ready is low, then one per ready cycle, in order."""
    counter = await reset(dut)
    monitor = StreamMonitor(dut, "o", dut.clk)
    source = StreamSource(dut, "i", dut.clk)
    beats = list(range(1, 9))
    source.send_nowait(beats)
    ready_cycles = []
    for k in range(40):
        await RisingEdge(dut.clk)
        ready = k >= 10 and k % 3 != 0           # low for 10 cycles (the FIFO fills), then 2 of every 3
        dut.o__ready.value = int(ready)
        if ready:
            ready_cycles.append(counter.cycle + 1)   # a transfer in this cycle happens at the next edge
        await ReadOnly()
        assert int(dut.o__ready.value) == ready, f"o__ready is {dut.o__ready.value}, the test drove {int(ready)}"
        if k == 9:
            assert monitor.values == [] and monitor.stall_cycles > 0, "the monitor took beats while ready was low"
    assert monitor.values == beats, f"monitor saw {monitor.values}, sent {beats}"
    assert set(monitor.handshake_cycles) <= set(ready_cycles), "a recorded handshake with ready low"
    assert source.idle


@cocotb.test()
async def timeouts_are_reported(dut):
    """``wait_for`` and ``send`` fail with a message naming the stream, what was awaited, the bound and the seed."""
    await reset(dut)
    sink = StreamSink(dut, "o", dut.clk, pause=iter(lambda: True, None))     # never ready
    try:
        await sink.wait_for(1, timeout_cycles=10)
    except AssertionError as e:
        assert "timeout: o: waiting for 1 beats not done within 10 cycles" in str(e), str(e)
        assert "rerun with SPARSEGEN_SEED=" in str(e), str(e)
    else:
        raise AssertionError("wait_for did not time out")
    source = StreamSource(dut, "i", dut.clk)
    try:
        await source.send(range(10), timeout_cycles=20)          # the FIFO holds fewer than 10 beats
    except AssertionError as e:
        assert "timeout: i: sending beat" in str(e) and "of 10 not done within 20 cycles" in str(e), str(e)
        assert "rerun with SPARSEGEN_SEED=" in str(e), str(e)
    else:
        raise AssertionError("send did not time out")


@cocotb.test(skip=not knob("failing", False))
async def deliberately_failing(dut):
    """Only with the knob ``failing``: a wrong expectation, to check that pytest sees the failure."""
    await reset(dut)
    sb = Scoreboard("wire", dut._log)
    sb.expect([1, 2, 3])
    sink = StreamSink(dut, "wo", dut.clk, callback=sb.check)
    await StreamSource(dut, "wi", dut.clk).send([1, 2, 4], timeout_cycles=10)
    await sink.wait_for(3, timeout_cycles=10)
    sb.assert_done(3)
