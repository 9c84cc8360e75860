"""The activation-indexed PE of the activation-sparse GEMM engine (docs/gemm-actsparse.md)."""

from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_bool, check_int
from hw.systolic.beats import index_bits, weight_entry_layout
from hw.systolic.pe import next_weights
from hw.systolic.mac import gated_product, tree_sum

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

    Timing: 1 cycle from ``slots_in`` to ``slots_out``; ``1 + pipeline`` cycles to the ``psum_out`` (and
    ``macs_out``/``zeros_out``) that include its products. The ``pipeline`` stages are
    :class:`hw.systolic.pe.SparsePE`'s: 1 registers the products (a DSP's output register), 2 also the multipliers'
    operands (the slot's value and the weight looked up at its position: the multiplier then sits between
    registers a DSP absorbs), 3 registers the products a second time (next to the adder), 4 also the sum of the
    ``keep`` products and the step's counts (the ``acc_bits`` adder then adds one operand to ``psum_in``). In a
    mesh every PE delays its products alike, so the array's latency grows by ``pipeline``.
    ``w_we`` writes the shadow bank; a step whose ``swap_in`` is high computes with the shadow bank and makes it
    the active one (the looked-up weights travel with their slots, so a later write or swap does not reach a step
    in flight). Every register only updates while ``en`` is high.

    ``lookahead=True`` takes the values ``slots_in`` and ``swap_in`` will have at the next enabled cycle
    (``slots_next``, ``swap_next``: in a mesh, the western neighbour's inputs) and looks the next step's weights
    up one cycle early into registers, in the banks as they will be then (as
    :class:`hw.systolic.pe.SparsePE` ``lookahead``): same values in the same cycles, the multipliers' weight
    operands from registers instead of the position mux.

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
    pipeline : int
        0 … 4: pipeline registers (see Timing).
    lookahead : bool
        Look the weights up one cycle early from ``slots_next``/``swap_next`` (default False).

    Members
    -------
    en : In(1)
    slots_in, slots_out : In/Out(ArrayLayout(act_slot_layout, group·act_keep))
    slots_next, swap_next : In
        Only with ``lookahead``: ``slots_in`` and ``swap_in`` of the next enabled cycle.
    swap_in, swap_out : In/Out(1)
    psum_in, psum_out : In/Out(signed(acc_bits))
    macs_in, macs_out, zeros_in, zeros_out : In/Out(count_bits)
    w_we : In(1)
    w_data : In(ArrayLayout(weight entry, group·keep))
    """

    def __init__(self, *, act_bits, act_signed, weight_bits, acc_bits, keep, block, act_keep, count_bits,
                 pipeline=0, lookahead=False):
        check_int("block", block, 2, 16)
        self._pipeline = check_int("pipeline", pipeline, 0, 4)
        self._lookahead = check_bool("lookahead", lookahead)
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
        super().__init__(self._members(slots=slots, entries=entries, psum=signed(acc_bits), count_bits=count_bits,
                                       lookahead=lookahead))

    @staticmethod
    def _members(*, slots, entries, psum, count_bits, lookahead):
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
            **({"slots_next": In(slots), "swap_next": In(1)} if lookahead else {}),
        }

    def elaborate(self, platform):
        m = Module()
        weights = self._weight_registers(m)
        products, flags = [], []
        for j in range(self._keep):
            weight = self._ahead(m, lambda w, slots: self._lookup(m, w, j, slots), weights, f"w_ahead{j}")
            product, (is_zero,) = self._multiply(m, self.slots_in[j].value, weight, [], j)
            products.append(product)
            flags.append(is_zero)
        total, macs, zeros = self._step_sums(m, [tree_sum(products)], flags, 1)
        self._outputs(m, [(self.psum_out, self.psum_in + total[0])], self.macs_in + macs, self.zeros_in + zeros)
        return m

    def _stage(self, m, value, name, level, init=0):
        """``value`` as the stage of pipeline level ``level`` sees it: as it is (``pipeline < level``) or in a
        register named ``name`` updated while ``en``. 0 or 1 cycle."""
        if self._pipeline < level:
            return value
        reg = Signal(Value.cast(value).shape(), name=name, init=init)
        with m.If(self.en):
            m.d.sync += reg.eq(value)
        return reg

    def _multiply(self, m, act, weight, extra, name):
        """``act · weight`` through pipeline levels 2 (operands), 1 and 3 (product); ``extra`` (values used after
        the product, e.g. the weight's column) travel with it. Returns ``(product, [is_zero, *extra])``; an empty
        slot after reset (``is_zero`` 1). ``min(pipeline, 3)`` cycles."""
        act = self._stage(m, act, f"act_q{name}", 2)
        weight = self._stage(m, weight, f"weight_q{name}", 2)
        extra = [self._stage(m, x, f"extra{i}_q{name}", 2) for i, x in enumerate(extra)]
        product, is_zero = gated_product(m, act, weight, name)
        flags = [is_zero, *extra]
        for level, suffix in ((1, "_p"), (3, "_p2")):
            # a DSP block absorbs the first product register (no logic between it and the multiplier)
            product = self._stage(m, product, f"product{name}{suffix}", level)
            flags = [self._stage(m, f, f"flag{i}_{name}{suffix}", level, init=int(i == 0)) for i, f in enumerate(flags)]
        return product, flags

    def _step_sums(self, m, sums, zero_flags, per_flag):
        """The step's ``sums`` (one per output column) and its counts (``per_flag`` products per zero flag): as they
        are, or (``pipeline = 4``) registered while ``en``. Returns ``(sums, macs, zeros)``. 0 or 1 cycle."""
        zeros = tree_sum(f.as_unsigned() for f in zero_flags)
        macs = len(zero_flags) - zeros
        if per_flag > 1:
            zeros, macs = zeros * per_flag, macs * per_flag
        count = range(len(zero_flags) * per_flag + 1)
        sums = [self._stage(m, s, f"sum_c{c}_p", 4) for c, s in enumerate(sums)]
        zeros_c = Signal(count, name="zeros_step")
        macs_c = Signal(count, name="macs_step")
        m.d.comb += [zeros_c.eq(zeros), macs_c.eq(macs)]
        # after reset the staged step is all empty slots
        return (sums, self._stage(m, macs_c, "macs_p", 4),
                self._stage(m, zeros_c, "zeros_p", 4, init=len(zero_flags) * per_flag))

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
        active = self._active = Signal.like(self.w_data, name="weights")
        shadow = self._shadow = Signal.like(self.w_data, name="shadow")
        used = Signal.like(self.w_data, name="weights_used")
        m.d.comb += used.eq(Mux(self.swap_in, shadow, active))
        with m.If(self.en & self.w_we):
            m.d.sync += shadow.eq(self.w_data)
        with m.If(self.en & self.swap_in):
            m.d.sync += active.eq(shadow)
        return used

    def _ahead(self, m, lookup, weights, name):
        """``lookup(weights, slots)`` for this cycle's slots: as it is, or with ``lookahead`` from a register
        loaded on the previous enabled cycle with ``lookup`` of ``slots_next`` in the banks as they will be (a
        shadow write and this step's swap applied). 0 or 1 cycle, the same values."""
        if not self._lookahead:
            return lookup(weights, self.slots_in)
        value = lookup(next_weights(m, self, f"{name}_weights"), self.slots_next)
        reg = Signal.like(value, name=name)
        with m.If(self.en):
            m.d.sync += reg.eq(value)
        return reg

    def _lookup(self, m, weights, j, slots):
        """The weight at slot ``j``'s position in its block: the entry whose index matches, else 0 (entries of one
        block have distinct indices, so at most one matches). Combinational."""
        b = j // self._act_keep
        pos = slots[j].pos
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
