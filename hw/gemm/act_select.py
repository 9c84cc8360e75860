"""The activation selector of the activation-sparse GEMM engine: one row of A → the slots of one step.

The hardware form of :mod:`hw.formats.actsparse` (the one definition of the rule): per K-block, A-DBB keeps the
``act_keep`` largest magnitudes (ties: lower lane), lossless takes the non-zeros ranked ``step·act_keep …`` in
lane order; selected lanes fill the block's slots in lane order, unused slots are (value 0, position 0).
"""

from amaranth.hdl import Cat, Const, Mux, Signal, unsigned

__all__ = ["rank_lanes", "fill_slots"]


def _magnitude(m, value, bits, signed, name):
    """``|value|`` as ``unsigned(bits)`` (``|−2**(bits−1)| = 2**(bits−1)`` fits). Combinational."""
    mag = Signal(unsigned(bits), name=name)
    m.d.comb += mag.eq(Mux(value < 0, -value, value) if signed else value)
    return mag


def rank_lanes(m, *, lanes, lane_ok, step, act_bits, act_signed, block, act_keep, mode):
    """The first half of the selection: which lanes step ``step`` of the row whose ``k`` activations are ``lanes``
    takes (lanes whose ``lane_ok`` bit is 0 count as 0). Returns ``(vals, sel, last)``: the lanes with the invalid
    ones zeroed, one bit per lane (selected), and the 1-bit "this is the row's last step" (always 1 for A-DBB).
    Combinational; ``len(lanes) // block`` blocks. :func:`fill_slots` is the second half (a register may sit
    between the two: the compare network and the slot compaction each get a cycle)."""
    last = Signal(name="last_step")
    dense_enough = []
    vals, sel_all = [], []
    for b in range(len(lanes) // block):
        block_vals, nz, mags, oks = [], [], [], []
        for i in range(block):
            lane = b * block + i
            ok = lane_ok[lane]
            oks.append(ok)
            v = Signal.like(lanes[lane], name=f"lane{lane}")
            m.d.comb += v.eq(Mux(ok, lanes[lane], 0))
            block_vals.append(v)
            nz.append(ok & (lanes[lane] != 0))
            if mode == "adbb":
                mags.append(_magnitude(m, lanes[lane], act_bits, act_signed, f"mag{lane}"))
        if mode == "adbb":
            # The comparisons use the raw lanes and the valid bits enter after them, so the registered valid bits
            # reach the selection through a few LUTs, not through the comparators. This equals ranking the zeroed
            # lanes: invalid lanes are the block's last, so they never beat a valid one (|0| ties go to the lower
            # lane), and an invalid lane is never taken (taken, it would fill a slot with value 0: the same
            # products and counts as an unused slot).
            sel = []
            for i in range(block):
                beaten = [oks[j] & ((mags[j] > mags[i]) | ((mags[j] == mags[i]) & Const(j < i)))
                          for j in range(block) if j != i]
                sel.append(oks[i] & (sum(x.as_unsigned() for x in beaten) < act_keep) if beaten else oks[i])
        else:
            sel = []
            for i in range(block):
                order = sum(nz[j].as_unsigned() for j in range(i)) if i else Const(0, 1)
                sel.append(nz[i] & (order >= step * act_keep) & (order < (step + 1) * act_keep))
            nnz = sum(x.as_unsigned() for x in nz)
            dense_enough.append(nnz <= (step + 1) * act_keep)
        vals += block_vals
        sel_all += sel
    m.d.comb += last.eq(Cat(*dense_enough).all() if dense_enough else 1)
    return vals, sel_all, last


def fill_slots(m, *, vals, sel, block, act_keep, slots):
    """The second half: drive ``slots`` (``ArrayLayout(act_slot_layout, blocks·act_keep)`` view, block-major) with
    the selected lanes of each block in lane order, unused slots (value 0, position 0). ``vals``/``sel`` as
    :func:`rank_lanes` returns them. Combinational."""
    for b in range(len(vals) // block):
        bsel = sel[b * block:(b + 1) * block]
        for s in range(act_keep):
            value, pos = 0, 0
            for i in range(block):
                before = sum(bsel[j].as_unsigned() for j in range(i)) if i else Const(0, 1)
                hit = bsel[i] & (before == s)
                value = value | Mux(hit, vals[b * block + i].as_unsigned(), 0)
                pos = pos | Mux(hit, i, 0)
            m.d.comb += [slots[b * act_keep + s].value.eq(value), slots[b * act_keep + s].pos.eq(pos)]
