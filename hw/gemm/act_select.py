"""The activation selector of the activation-sparse GEMM engine: one row of A → the slots of one step.

The hardware form of :mod:`hw.formats.actsparse` (the one definition of the rule): per K-block, A-DBB keeps the
``act_keep`` largest magnitudes (ties: lower lane), lossless takes the non-zeros ranked ``step·act_keep …`` in
lane order; selected lanes fill the block's slots in lane order, unused slots are (value 0, position 0).
"""

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned

__all__ = ["select_step"]


def _magnitude(m, value, bits, signed, name):
    """``|value|`` as ``unsigned(bits)`` (``|−2**(bits−1)| = 2**(bits−1)`` fits). Combinational."""
    mag = Signal(unsigned(bits), name=name)
    m.d.comb += mag.eq(Mux(value < 0, -value, value) if signed else value)
    return mag


def select_step(m, *, lanes, k_valid, step, act_bits, act_signed, block, act_keep, mode, slots):
    """Drive ``slots`` (``ArrayLayout(act_slot_layout, blocks·act_keep)`` view, block-major) with the slots of step
    ``step`` of the row whose ``k`` activations are ``lanes`` (lanes at or past ``k_valid`` count as 0). Returns the
    1-bit "this is the row's last step" (always 1 for A-DBB). Combinational; ``len(lanes) // block`` blocks."""
    last = Signal(name="last_step")
    dense_enough = []
    for b in range(len(lanes) // block):
        vals = []
        for i in range(block):
            lane = b * block + i
            v = Signal.like(lanes[lane], name=f"lane{lane}")
            m.d.comb += v.eq(Mux(lane < k_valid, lanes[lane], 0))
            vals.append(v)
        nz = [v != 0 for v in vals]
        if mode == "adbb":
            mags = [_magnitude(m, v, act_bits, act_signed, f"mag{b * block + i}") for i, v in enumerate(vals)]
            sel = []
            for i in range(block):
                beaten = [(mags[j] > mags[i]) | ((mags[j] == mags[i]) & Const(j < i)) for j in range(block) if j != i]
                sel.append(sum(x.as_unsigned() for x in beaten) < act_keep if beaten else Const(1))
        else:
            sel = []
            for i in range(block):
                order = sum(nz[j].as_unsigned() for j in range(i)) if i else Const(0, 1)
                sel.append(nz[i] & (order >= step * act_keep) & (order < (step + 1) * act_keep))
            nnz = sum(x.as_unsigned() for x in nz)
            dense_enough.append(nnz <= (step + 1) * act_keep)
        for s in range(act_keep):
            value, pos = 0, 0
            for i in range(block):
                before = sum(sel[j].as_unsigned() for j in range(i)) if i else Const(0, 1)
                hit = sel[i] & (before == s)
                value = value | Mux(hit, vals[i].as_unsigned(), 0)
                pos = pos | Mux(hit, i, 0)
            m.d.comb += [slots[b * act_keep + s].value.eq(value), slots[b * act_keep + s].pos.eq(pos)]
    m.d.comb += last.eq(Cat(*dense_enough).all() if dense_enough else 1)
    return last
