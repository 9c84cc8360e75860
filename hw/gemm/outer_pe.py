"""The outer-product PE of the activation-sparse GEMM engine with weights sparse along N (docs/gemm-actsparse.md)."""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring

from hw.checks import check_bool, check_int
from hw.gemm.act_pe import ActPE, act_slot_layout
from hw.systolic.beats import index_bits, weight_entry_layout
from hw.systolic.mac import tree_sum

__all__ = ["OuterPE"]


class OuterPE(ActPE):
    """Weight-stationary PE for one K-block × one N-block, weights ``keep:block`` along N, activations in slots.

    The PE holds, for each of its ``block`` K rows, that row's ``keep`` compressed weights of its N-block
    (:func:`hw.formats.nm_n.compress_n`: value and column inside the N-block); entry ``kr·keep + e`` is entry e of
    K row kr, ``block·keep`` entries in an active and a shadow bank. Each enabled cycle it takes ``act_keep``
    activation slots (value, K position inside the block, :mod:`hw.formats.actsparse`), reads for each slot the
    weight row at the slot's position, forms the ``act_keep·keep`` products and adds each one into the partial sum
    of its column: ``psum_out[c] = psum_in[c] + Σ_{j,e: index(row pos_j, e) = c} value_j · weight(pos_j, e)``
    (``acc_bits`` two's complement, wrapping). Every product is useful when both operands are non-zero: there is
    no index intersection, so a step does the ``block × block`` dense MACs of the block pair with ``act_keep·keep``
    multipliers. A product with a non-zero activation counts 1 on ``macs_out``, one with a zero activation (an
    empty slot) 1 on ``zeros_out``: ``keep`` per slot.

    Timing: 1 cycle from ``slots_in`` to ``slots_out``; ``1 + pipeline`` cycles to the ``psum_out`` (and
    ``macs_out``/``zeros_out``) that include its products, with :class:`hw.gemm.act_pe.ActPE`'s stages: 1
    registers the ``act_keep·keep`` products (with their columns), 2 also the multipliers' operands (each slot's
    value and the weight row at its position), 3 the products a second time, 4 also each column's sum of the
    step's products and the step's counts, which the ``acc_bits`` adders add to ``psum_in`` one enabled cycle
    later (in a mesh every PE delays alike, so the array's latency grows by ``pipeline``). A row's entries have
    distinct columns, so each column takes at most one product per slot: ``act_keep`` products per column, summed
    narrow, then one ``acc_bits`` add per column.
    ``w_we`` writes the shadow bank; a step whose ``swap_in`` is high computes with the shadow bank and makes it the
    active one. Registers only update while ``en`` is high.

    Parameters
    ----------
    act_bits, act_signed, weight_bits, acc_bits : int, bool, int, int
        Operand and partial-sum widths in bits (two's complement; activations unsigned when ``act_signed`` is
        False).
    keep, block : int
        Weight sparsity ``keep:block`` along N, ``block`` 2 … 16, ``keep`` 1 … ``block``.
    act_keep : int
        Activation slots per step, 1 … ``block``.
    count_bits : int
        Width of the ``macs``/``zeros`` count chains, 1 … 32.
    pipeline : int
        0 … 4: pipeline registers (see Timing).
    lookahead : bool
        Read each slot's weight row one cycle early from ``slots_next``/``swap_next`` into a register
        (:class:`hw.gemm.act_pe.ActPE` ``lookahead``; default False).

    Members
    -------
    en : In(1)
    slots_in, slots_out : In/Out(ArrayLayout(act_slot_layout, act_keep))
    swap_in, swap_out : In/Out(1)
    psum_in, psum_out : In/Out(ArrayLayout(signed(acc_bits), block))
        Element c is the partial sum of column c of the N-block.
    macs_in, macs_out, zeros_in, zeros_out : In/Out(count_bits)
    w_we : In(1)
    w_data : In(ArrayLayout(weight entry, block·keep))
        Entry ``{value: signed(weight_bits), index: unsigned(log2 block)}`` (no ``index`` when ``keep = block``:
        entry e of a row is column e).
    """

    def __init__(self, *, act_bits, act_signed, weight_bits, acc_bits, keep, block, act_keep, count_bits,
                 pipeline=0, lookahead=False):
        check_int("block", block, 2, 16)
        self._pipeline = check_int("pipeline", pipeline, 0, 4)
        self._lookahead = check_bool("lookahead", lookahead)
        check_int("keep", keep, 1, block)
        check_int("act_keep", act_keep, 1, block)
        check_int("acc_bits", acc_bits, 2, 128)
        check_int("count_bits", count_bits, 1, 32)
        self._keep, self._block, self._act_keep = keep, block, act_keep
        self._acc_bits = acc_bits
        self._index_bits = index_bits(keep=keep, block=block)
        slots = data.ArrayLayout(act_slot_layout(act_bits=act_bits, act_signed=act_signed, block=block), act_keep)
        entries = data.ArrayLayout(weight_entry_layout(weight_bits=weight_bits, index_bits=self._index_bits),
                                   block * keep)
        wiring.Component.__init__(self, self._members(slots=slots, entries=entries, count_bits=count_bits,
                                                      psum=data.ArrayLayout(signed(acc_bits), block),
                                                      lookahead=lookahead))

    def elaborate(self, platform):
        m = Module()
        weights = self._weight_registers(m)
        columns = [[] for _ in range(self._block)]     # per column: the product each slot sends it (or 0)
        flags = []
        for j in range(self._act_keep):
            hits = [[] for _ in range(self._block)]
            row = self._ahead(m, lambda w, slots: self._row(m, w, j, slots), weights, f"row_ahead{j}")
            for e in range(self._keep):
                entry = row[e]
                extra = [entry.index] if self._index_bits else []
                product, (is_zero, *index) = self._multiply(m, self.slots_in[j].value, entry.value, extra, f"{j}_{e}")
                flags.append(is_zero)
                for c in range(self._block):
                    # dense along N (no index): entry e is column e
                    if not self._index_bits:
                        hits[c] += [product.as_unsigned()] if c == e else []
                    else:
                        hits[c].append(Mux(index[0] == c, product.as_unsigned(), 0))
            # a row's entries have distinct columns: at most one product of slot j per column, so an OR selects it
            for c, column in enumerate(hits):
                if column:
                    picked = Signal(signed(len(column[0])), name=f"pick{j}_c{c}")
                    m.d.comb += picked.eq(_any(column))
                    columns[c].append(picked)
        # narrow per-column sums of the slots' products first, then one acc_bits add per column
        sums = [tree_sum(column) if column else Const(0, 1) for column in columns]
        sums, macs, zeros = self._step_sums(m, sums, flags, 1)
        totals = [self.psum_in[c] + s for c, s in enumerate(sums)]
        self._outputs(m, [(self.psum_out[c], total) for c, total in enumerate(totals)], self.macs_in + macs,
                      self.zeros_in + zeros)
        return m

    def _row(self, m, weights, j, slots):
        """The ``keep`` entries of the K row at the position of ``slots[j]`` (a ``block``-way mux). Combinational."""
        pos = slots[j].pos
        row = Signal(data.ArrayLayout(weights.shape().elem_shape, self._keep), name=f"row{j}")
        flat = weights.as_value()
        width = len(flat) // self._block
        m.d.comb += row.eq(flat[:width])
        for kr in range(1, self._block):
            with m.If(pos == kr):
                m.d.comb += row.eq(flat[kr * width:(kr + 1) * width])
        return row


def _any(values):
    """Bitwise OR of ``values`` (unsigned, at most one non-zero: a one-hot select)."""
    out = values[0]
    for v in values[1:]:
        out = out | v
    return out
