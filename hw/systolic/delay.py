"""Enabled delay lines: the skew and de-skew registers of every systolic array in the project."""

from amaranth.hdl import Cat, Signal, Value

__all__ = ["delayed", "delayed_line"]


def delayed(m, value, n, *, en, name):
    """``value`` through ``n`` registers that load only while ``en`` is high (0 registers: ``value`` itself).

    Latency ``n`` enabled cycles; the registers are named ``<name>_d1 … <name>_d<n>``.
    """
    for i in range(n):
        reg = Signal(value.shape(), name=f"{name}_d{i + 1}")
        with m.If(en):
            m.d.sync += reg.eq(value)
        value = reg
    return value


def delayed_line(m, value, n, *, en, name):
    """:func:`delayed` as one shift register of ``n·len(value)`` bits (a single Verilog ``reg``): what arrays
    emitted once per PE (:mod:`hw.shared`) use, so that their skew lines do not add ``n`` signals each.

    Latency ``n`` enabled cycles; the register is ``<name>_line``, the output ``<name>_out``.
    """
    if n == 0:
        return value
    width = len(Value.cast(value))
    line = Signal(n * width, name=f"{name}_line")
    with m.If(en):
        m.d.sync += line.eq(Cat(value, line[:-width]) if n > 1 else Value.cast(value))
    out = Signal(value.shape(), name=f"{name}_out")
    m.d.comb += out.eq(line[(n - 1) * width:])
    return out
