"""The tile's read-only register block: an address in, the addressed value out (``hw.rram.beats.REGISTERS``)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.rram import beats

__all__ = ["RegisterFile"]


class RegisterFile(wiring.Component):
    """Combinational read mux over the values named in ``beats.REGISTERS``.

    Parameters
    ----------
    width : int
        Register width (the tile's ``counter_bits``), 16 … 64.

    Members
    -------
    addr : In(beats.REG_ADDR_BITS)
        Register address; unmapped addresses read 0.
    data : Out(width)
        The addressed value in the same cycle (no side effects on read).
    <name> : In(width)
        One input per register, named by ``REGISTERS`` in lower case (``status``, ``errors``, ``cycles`` …).
    """

    def __init__(self, *, width):
        check_int("width", width, 16, 64)
        members = {"addr": In(beats.REG_ADDR_BITS), "data": Out(width)}
        members.update({name.lower(): In(width) for name, _ in beats.REGISTERS.values()})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        with m.Switch(self.addr):
            for addr, (name, _) in beats.REGISTERS.items():
                with m.Case(addr):
                    m.d.comb += self.data.eq(getattr(self, name.lower()))
        return m
