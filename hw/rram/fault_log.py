"""The fault log: a FIFO of the cells that failed write-verify, with a count that never loses one."""

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.checks import check_int

__all__ = ["FaultLog"]


class FaultLog(wiring.Component):
    """``depth`` entries of a cell-address layout, readable by the host as a stream; overflow is counted.

    Parameters
    ----------
    entry : data.Layout
        The logged address (``hw.rram.beats.cell_addr_layout``).
    depth : int
        FIFO entries, 1 … 4096.
    counter_bits : int
        Width of ``count`` and ``dropped`` (wrapping), 16 … 64.

    Members
    -------
    push : In(stream)
        A failed cell. ``push.ready`` is always 1: a push into a full FIFO is counted in ``dropped`` instead.
    pop : Out(stream)
        The logged addresses, oldest first (valid 1 cycle after the push at the earliest).
    count : Out(counter_bits)
        Pushes since reset (every failed cell, stored or dropped).
    dropped : Out(counter_bits)
        Pushes that found the FIFO full.
    overflow : Out(1)
        Sticky until reset: some push was dropped.
    """

    def __init__(self, *, entry, depth, counter_bits):
        if not isinstance(entry, data.Layout):
            raise TypeError(f"entry must be an amaranth.lib.data.Layout, not {entry!r}")
        check_int("depth", depth, 1, 4096)
        check_int("counter_bits", counter_bits, 16, 64)
        self.entry_layout, self.depth = entry, depth
        super().__init__({
            "push": In(stream.Signature(entry)),
            "pop": Out(stream.Signature(entry)),
            "count": Out(counter_bits), "dropped": Out(counter_bits), "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.entry_layout.size, depth=self.depth)
        m.d.comb += [
            self.push.ready.eq(1),
            fifo.w_data.eq(self.push.payload), fifo.w_en.eq(self.push.valid),
            self.pop.payload.eq(fifo.r_data), self.pop.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.pop.ready),
        ]
        with m.If(self.push.valid):
            m.d.sync += self.count.eq(self.count + 1)
            with m.If(~fifo.w_rdy):
                m.d.sync += [self.dropped.eq(self.dropped + 1), self.overflow.eq(1)]
        return m
