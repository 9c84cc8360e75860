"""The multiply-accumulate arithmetic every sparse PE shares: zero-gated products and the wrap/saturate adder.

Plain functions that add logic to a module (not components): the PEs differ in what flows through them,
not in how they multiply and accumulate, and the golden models rely on these two rules being the same everywhere.
"""

from amaranth.hdl import Mux, Signal, Value, signed

__all__ = ["gated_product", "wrap_or_saturate"]


def gated_product(m, act, weight, name):
    """``act · weight`` as a full-width signed product, forced to 0 when ``act == 0``; returns ``(product, is_zero)``.

    Combinational (no latency). ``is_zero`` is what the zero-skip counters count.
    """
    is_zero = Signal(name=f"zero{name}")
    act, weight = Value.cast(act), Value.cast(weight)
    product = Signal(signed(len(act) + len(weight) + 1), name=f"product{name}")
    m.d.comb += [
        is_zero.eq(act == 0),
        product.eq(Mux(is_zero, 0, act * weight)),
    ]
    return product, is_zero


def wrap_or_saturate(m, total, acc_bits, overflow, name):
    """``total`` reduced to ``acc_bits`` two's complement: clamped to its range (``"saturate"``) or truncated
    (``"wrap"``); returns the combinational ``signed(acc_bits)`` result."""
    out = Signal(signed(acc_bits), name=name)
    if overflow == "saturate":
        top = (1 << (acc_bits - 1)) - 1
        with m.If(total > top):
            m.d.comb += out.eq(top)
        with m.Elif(total < -top - 1):
            m.d.comb += out.eq(-top - 1)
        with m.Else():
            m.d.comb += out.eq(total)
    else:
        m.d.comb += out.eq(total)   # truncation is two's-complement wrap-around
    return out
