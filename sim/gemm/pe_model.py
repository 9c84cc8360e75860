"""Cycle model of the activation-sparse engine's PEs (``hw.gemm.act_pe.ActPE``, ``hw.gemm.outer_pe.OuterPE``) for
their unit tests: shadow/active weight banks, the pipeline delay of a step's products and counts, wrapping sums."""

import numpy as np
from amaranth.lib import data

__all__ = ["SlotPEModel", "random_steps"]


class SlotPEModel:
    """What a slot PE registers on each tick, from the inputs of that tick.

    Parameters
    ----------
    weights : numpy array
        The weights after reset (both banks), in the shape ``products`` reads.
    products : callable
        ``products(weights, values, positions)`` → the step's sum of products (a scalar or one per column).
    per_slot : int
        Products counted per slot (``keep`` for ``OuterPE``, 1 for ``ActPE``).
    slots, pipeline, acc_bits, count_bits : int
        Slots per step, the PE's ``pipeline`` (a step's products and counts reach ``psum_out`` that many enabled
        ticks late; after reset the staged steps are empty slots), the partial-sum and count widths.
    """

    def __init__(self, *, weights, products, per_slot, slots, pipeline, acc_bits, count_bits):
        self.active = self.shadow = weights
        self._products, self._per_slot, self._slots = products, per_slot, slots
        self._half, self._counts_mod = 1 << (acc_bits - 1), 1 << count_bits
        empty = np.zeros_like(np.asarray(products(weights, [0] * slots, [0] * slots)))
        self._staged = [(empty, 0, slots * per_slot)] * pipeline
        self.psum_out, self.counts, self.swaps = empty, (0, 0), 0

    def tick(self, *, en, we, swap, weights, values, positions, psum_in, macs_in, zeros_in):
        """One clock edge; updates ``psum_out``, ``counts`` (``(macs_out, zeros_out)``) and ``swaps``."""
        if not en:
            return
        used = self.shadow if swap else self.active
        filled = sum(v != 0 for v in values)
        step = (self._products(used, values, positions), filled * self._per_slot,
                (self._slots - filled) * self._per_slot)
        if self._staged:
            self._staged.append(step)
            step = self._staged.pop(0)
        self.psum_out = ((np.asarray(psum_in) + step[0] + self._half) % (2 * self._half)) - self._half
        self.counts = ((macs_in + step[1]) % self._counts_mod, (zeros_in + step[2]) % self._counts_mod)
        if swap:
            self.active, self.swaps = self.shadow, self.swaps + 1
        if we:
            self.shadow = weights


async def random_steps(ctx, dut, rng, model, *, steps, act_bits, act_signed, block, acc_bits, random_weights,
                       set_weights):
    """Drive ``dut`` (an ``ActPE`` or ``OuterPE``) for ``steps`` ticks of random enables, weight writes, swaps,
    slots (30 % zero values), partial sums and counts, and check every ``psum_out``, ``macs_out`` and ``zeros_out``
    against ``model`` (:class:`SlotPEModel`) after each tick. ``random_weights()`` draws a weight set in the
    model's shape and ``set_weights(ctx, W)`` puts it on ``w_data``. A PE built with ``lookahead`` also gets, on
    ``slots_next``/``swap_next``, the slots and swap of the next enabled tick (as its western neighbour's inputs
    in a mesh; random after the last one)."""
    a_lo, a_hi = ((-(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1) if act_signed else (0, (1 << act_bits) - 1))
    half = 1 << (acc_bits - 1)
    slots = len(dut.slots_in)
    columns = len(dut.psum_in) if isinstance(dut.psum_in, data.View) else None      # OuterPE: one sum per column
    ticks = []
    for _ in range(steps + 1):
        en, we, swap = rng.random() < 0.8, rng.random() < 0.2, rng.random() < 0.15
        ticks.append(dict(
            en=en, we=we, swap=swap, weights=random_weights(),
            values=[int(v) if rng.random() > 0.3 else 0 for v in rng.integers(a_lo, a_hi, size=slots, endpoint=True)],
            positions=rng.integers(0, block, size=slots).tolist(),
            psum_in=rng.integers(-half, half, size=columns) if columns else int(rng.integers(-half, half)),
            macs_in=int(rng.integers(0, 20)), zeros_in=int(rng.integers(0, 20))))
    lookahead = hasattr(dut, "slots_next")
    for t in range(steps):
        tick = ticks[t]
        set_weights(ctx, tick["weights"])
        for j in range(slots):
            ctx.set(dut.slots_in[j], {"value": tick["values"][j], "pos": tick["positions"][j]})
        if lookahead:
            upcoming = next((u for u in ticks[t + 1:] if u["en"]), ticks[-1])
            for j in range(slots):
                ctx.set(dut.slots_next[j], {"value": upcoming["values"][j], "pos": upcoming["positions"][j]})
            ctx.set(dut.swap_next, upcoming["swap"])
        if columns:
            for c in range(columns):
                ctx.set(dut.psum_in[c], int(tick["psum_in"][c]))
        else:
            ctx.set(dut.psum_in, tick["psum_in"])
        for port, key in ((dut.macs_in, "macs_in"), (dut.zeros_in, "zeros_in"), (dut.en, "en"), (dut.w_we, "we"),
                          (dut.swap_in, "swap")):
            ctx.set(port, tick[key])
        await ctx.tick()
        model.tick(**tick)
        got = [ctx.get(dut.psum_out[c]) for c in range(columns)] if columns else ctx.get(dut.psum_out)
        assert got == np.asarray(model.psum_out).tolist()
        assert (ctx.get(dut.macs_out), ctx.get(dut.zeros_out)) == model.counts
