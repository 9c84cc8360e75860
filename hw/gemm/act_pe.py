"""The activation-indexed PE of the activation-sparse GEMM engine (docs/gemm-actsparse.md)."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.systolic.beats import index_bits, weight_entry_layout
from hw.systolic.mac import gated_product

__all__ = ["ActPE", "act_slot_layout"]


def act_slot_layout(*, act_bits, act_signed, block):
    """One activation slot: ``{"value": act, "pos": unsigned(log2 block)}`` (its position inside its K-block)."""
    return data.StructLayout({"value": signed(act_bits) if act_signed else unsigned(act_bits),
                              "pos": unsigned((block - 1).bit_length())})


class ActPE(wiring.Component):
    """Weight-stationary PE for ``keep:block`` weights whose multipliers are indexed by the activations.

    The PE covers ``group`` consecutive K-blocks of one output column and holds their compressed weights
    (``group·keep`` entries, block-major: entry e belongs to block ``e // keep``), in an active and a shadow bank.
    Each enabled cycle it takes ``group·act_keep`` activation slots (slot j belongs to block ``j // act_keep``),
    looks up, for each slot, the weight at the slot's position among its block's entries (0 when none: the weight
    there is zero), multiplies (``group·act_keep`` multipliers), adds the products to ``psum_in`` and registers the
    sum on ``psum_out``. The slots are registered on ``slots_out`` for the PE to the right. A slot holding a
    non-zero activation counts on ``macs_out``, an empty one (value 0) on ``zeros_out``. Overflow wraps.

    Timing: 1 cycle from ``slots_in`` to ``slots_out`` and to the ``psum_out`` that includes its products.
    ``w_we`` writes the shadow bank; a step whose ``swap_in`` is high computes with the shadow bank and makes it
    the active one. Every register only updates while ``en`` is high.

    Parameters
    ----------
    act_bits, act_signed, weight_bits, acc_bits : int, bool, int, int
        Operand and partial-sum widths (two's complement; activations unsigned when ``act_signed`` is False).
    keep, block : int
        Weight sparsity ``keep:block``, ``block`` 2 … 16.
    act_keep : int
        Activation slots per block per step, a divisor of ``keep``; ``group = keep // act_keep``.
    count_bits : int
        Width of the ``macs``/``zeros`` count chains.

    Members
    -------
    en : In(1)
    slots_in, slots_out : In/Out(ArrayLayout(act_slot_layout, group·act_keep))
    swap_in, swap_out : In/Out(1)
    psum_in, psum_out : In/Out(signed(acc_bits))
    macs_in, macs_out, zeros_in, zeros_out : In/Out(count_bits)
    w_we : In(1)
    w_data : In(ArrayLayout(weight entry, group·keep))
    """

    def __init__(self, *, act_bits, act_signed, weight_bits, acc_bits, keep, block, act_keep, count_bits):
        check_int("block", block, 2, 16)
        check_int("keep", keep, 1, block)
        check_int("act_keep", act_keep, 1, keep)
        if keep % act_keep:
            raise ValueError(f"act_keep = {act_keep} does not divide keep = {keep}: allowed a divisor of keep")
        check_int("acc_bits", acc_bits, 2, 128)
        check_int("count_bits", count_bits, 1, 32)
        self._keep, self._block, self._act_keep = keep, block, act_keep
        self._group = keep // act_keep
        self._acc_bits = acc_bits
        self._index_bits = index_bits(keep=keep, block=block)
        slots = data.ArrayLayout(act_slot_layout(act_bits=act_bits, act_signed=act_signed, block=block), keep)
        entries = data.ArrayLayout(weight_entry_layout(weight_bits=weight_bits, index_bits=self._index_bits),
                                   self._group * keep)
        super().__init__(self._members(slots=slots, entries=entries, psum=signed(acc_bits), count_bits=count_bits))

    @staticmethod
    def _members(*, slots, entries, psum, count_bits):
        """The signature members: ``slots``/``swap`` east, ``psum`` (its shape), ``macs``/``zeros`` south, the
        weight write port of ``entries``."""
        return {
            "en": In(1),
            "slots_in": In(slots), "slots_out": Out(slots),
            "swap_in": In(1), "swap_out": Out(1),
            "psum_in": In(psum), "psum_out": Out(psum),
            "macs_in": In(count_bits), "macs_out": Out(count_bits),
            "zeros_in": In(count_bits), "zeros_out": Out(count_bits),
            "w_we": In(1),
            "w_data": In(entries),
        }

    def elaborate(self, platform):
        m = Module()
        weights = self._weight_registers(m)
        total, macs, zeros = self.psum_in, self.macs_in, self.zeros_in
        for j in range(self._keep):
            product, is_zero = gated_product(m, self.slots_in[j].value, self._lookup(m, weights, j), j)
            total, macs, zeros = total + product, macs + ~is_zero, zeros + is_zero
        self._outputs(m, [(self.psum_out, total)], macs, zeros)
        return m

    def _outputs(self, m, psums, macs, zeros):
        """Register the step while ``en``: slots and swap east, each ``(psum output, sum)`` of ``psums`` (truncated
        to ``acc_bits``: wrapping) and the counts south. 1 cycle."""
        with m.If(self.en):
            m.d.sync += [
                self.slots_out.eq(self.slots_in), self.swap_out.eq(self.swap_in),
                self.macs_out.eq(macs), self.zeros_out.eq(zeros),
            ]
            m.d.sync += [out.eq(total[:self._acc_bits]) for out, total in psums]

    def _weight_registers(self, m):
        """Active and shadow banks; returns the weights this cycle uses (the shadow on a swap). 1 cycle to write."""
        active = Signal.like(self.w_data, name="weights")
        shadow = Signal.like(self.w_data, name="shadow")
        used = Signal.like(self.w_data, name="weights_used")
        m.d.comb += used.eq(Mux(self.swap_in, shadow, active))
        with m.If(self.en & self.w_we):
            m.d.sync += shadow.eq(self.w_data)
        with m.If(self.en & self.swap_in):
            m.d.sync += active.eq(shadow)
        return used

    def _lookup(self, m, weights, j):
        """The weight at slot ``j``'s position in its block: the entry whose index matches, else 0 (entries of one
        block have distinct indices, so at most one matches). Combinational."""
        b = j // self._act_keep
        pos = self.slots_in[j].pos
        entries = [weights[b * self._keep + e] for e in range(self._keep)]
        weight = Signal.like(entries[0].value, name=f"w_at{j}")
        if not self._index_bits:         # dense weights: entry e sits at position e
            m.d.comb += weight.eq(entries[0].value)
            for e, entry in enumerate(entries[1:], 1):
                with m.If(pos == e):
                    m.d.comb += weight.eq(entry.value)
            return weight
        hit = 0
        for entry in entries:
            hit = hit | Mux(entry.index == pos, entry.value.as_unsigned(), 0)
        m.d.comb += weight.eq(hit)
        return weight
