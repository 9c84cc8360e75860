"""Enabled delay lines: the skew and de-skew registers of every systolic array in the project."""

from amaranth.hdl import Signal

__all__ = ["delayed"]


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

