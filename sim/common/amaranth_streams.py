"""Stream helpers for async Amaranth testbenches (``amaranth.sim``), in the style of Glasgow's.

``put_all``/``get_all`` move beats with seeded random input gaps and output backpressure, and return the
cycle of every transfer: the number of ticks the helper had awaited when the transfer happened, counting from
the helper's start (testbenches added together share this time base). Given the
:class:`sim.common.amaranth_bench.Bench` they run in (``bench=``), they register the beat they wait for, which
the bench names if its cycle bound runs out.
"""

from contextlib import nullcontext

__all__ = ["put_all", "get_all"]


def _name(stream):
    """``acts`` for a stream whose valid signal is ``acts__valid``."""
    return getattr(stream.valid, "name", "stream").removesuffix("__valid")


async def put_all(ctx, stream, payloads, *, rng=None, gap=0.0, start=0, bench=None):
    """Send every payload in order, idling before each beat with probability ``gap`` per cycle.

    Returns ``(cycles, now)``: the transfer cycle of each beat, and the helper's cycle count at return.
    ``start`` is the cycle count at which the helper was called (to chain several calls).
    """
    now, cycles = start, []
    payloads = list(payloads)
    for i, payload in enumerate(payloads):
        while rng is not None and rng.random() < gap:
            await ctx.tick()
            now += 1
        ctx.set(stream.valid, 1)
        ctx.set(stream.payload.as_value(), payload)
        with bench.waiting(f"{_name(stream)}.ready (beat {i + 1} of {len(payloads)})") if bench else nullcontext():
            while True:
                _, _, ready = await ctx.tick().sample(stream.ready)
                now += 1
                if ready:
                    cycles.append(now - 1)
                    break
        ctx.set(stream.valid, 0)
    return cycles, now


async def get_all(ctx, stream, count, *, rng=None, stall=0.0, bench=None):
    """Receive ``count`` beats, holding ``ready`` low each cycle with probability ``stall``.

    Returns ``(payloads, cycles, stalls)``: the transfer cycle of each beat (counted from the call), and the
    number of cycles the stream was valid while ``ready`` was low.
    """
    out, cycles, now, stalls = [], [], 0, 0
    while len(out) < count:
        ready = rng is None or rng.random() >= stall
        ctx.set(stream.ready, ready)
        what = f"{_name(stream)}.valid (beat {len(out) + 1} of {count})"
        with bench.waiting(what) if bench else nullcontext():
            _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload.as_value())
        now += 1
        if valid and ready:
            out.append(payload)
            cycles.append(now - 1)
        elif valid:
            stalls += 1
    ctx.set(stream.ready, 0)
    return out, cycles, stalls
