"""The multiply-accumulate arithmetic every sparse PE shares: products with their zero flag and the wrap/saturate adder.

Plain functions that add logic to a module (not components): the PEs differ in what flows through them,
not in how they multiply and accumulate, and the golden models rely on these two rules being the same everywhere.
"""

from amaranth.hdl import Signal, Value, signed

__all__ = ["gated_product", "tree_sum", "wrap_or_saturate"]


def gated_product(m, act, weight, name):
    """``act · weight`` as a full-width signed product, and whether ``act == 0``; returns ``(product, is_zero)``.

    Combinational (no latency). ``is_zero`` marks a multiplication that could be skipped: it is what the
    zero-skip counters count, and what an ASIC would gate the multiplier's operands with. The product of a
    zero activation is 0 by arithmetic, so no mux forces it: a mux behind the multiplier would change no value
    and would keep an FPGA DSP's output register from absorbing the product register (``gen/synth/ecp5_dsp.py``).
    """
    is_zero = Signal(name=f"zero{name}")
    act, weight = Value.cast(act), Value.cast(weight)
    product = Signal(signed(len(act) + len(weight) + 1), name=f"product{name}")
    m.d.comb += [
        is_zero.eq(act == 0),
        product.eq(act * weight),
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


def tree_sum(values):
    """The sum of ``values`` (Amaranth values or ints) as a balanced tree of two-operand adders: ``⌈log2 n⌉``
    adders deep instead of the ``n − 1`` of a running sum, which is what bounds a counter's increment path."""
    values = list(values)
    if not values:
        return 0
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i] for i in range(0, len(values), 2)]
    return values[0]
