"""The sparse processing element of the weight-stationary systolic array."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_bool, check_choice, check_int
from hw.formats.ints import HW_OVERFLOW_MODES
from hw.formats.nm import BLOCKS
from hw.systolic.beats import index_bits, weight_entry_layout
from hw.systolic.mac import gated_product, wrap_or_saturate

__all__ = ["SparsePE", "next_weights"]


def next_weights(m, pe, name):
    """The weights a tiled PE's next enabled step uses (the lookahead's one rule): its ``swap_next`` picks the
    shadow bank as this cycle's write leaves it, else the active bank as this cycle's swap leaves it. ``pe`` has
    ``w_we``, ``w_data``, ``swap_in``, ``swap_next`` and the banks ``_shadow``, ``_active``. Combinational, a
    signal named ``name``."""
    shadow_next = Mux(pe.w_we, pe.w_data, pe._shadow)
    active_next = Mux(pe.swap_in, pe._shadow, pe._active)
    weights = Signal.like(pe.w_data, name=name)
    m.d.comb += weights.eq(Mux(pe.swap_next, shadow_next, active_next))
    return weights


class SparsePE(wiring.Component):
    """Weight-stationary PE for ``keep``-of-``block`` structured-sparse weights.

    Stores ``keep`` weights and their positions inside the K-block. Each enabled cycle it selects the
    ``keep`` activations those positions name from the ``block``-wide activation input, multiplies them by
    its weights (``keep`` multipliers), adds the products to ``psum_in`` and registers the sum on
    ``psum_out``. The activation block is registered on ``act_out`` for the PE to the right. A selected
    activation that is zero marks its multiplication as skippable (its product is 0) and is counted on
    ``zeros_out``. Dense PEs (``keep == block``) have no index logic: slot j multiplies activation j.

    Timing: one cycle from ``act_in`` to ``act_out`` and from ``psum_in``/``zeros_in`` to
    ``psum_out``/``zeros_out``; ``1 + pipeline`` cycles from ``act_in`` to the ``psum_out``/``zeros_out`` that
    include its products. ``pipeline`` = 1 registers the products (cutting multiplier → adder), 2 also
    registers the selected activations with their weights (cutting index mux → multiplier), 3 registers the
    products a second time (with 2 and 3 every multiplier sits between registers an FPGA DSP block can absorb,
    and the second product register carries the product from the DSP column to the adder), 4 also registers
    the sum of the ``keep`` products (cutting the multi-operand adder, so the partial-sum adder has one operand
    to add). In a column of
    PEs whose activations arrive one cycle apart, the partial sum from above arrives exactly when the delayed
    products do, so the column needs no other change. Every register, including the weight write, only
    updates in cycles where ``en`` is high.

    ``tiled=True`` (used by the GEMM engine's array core, off by default) adds a shadow weight bank and
    tile tags that travel with the activation block: ``w_we`` then writes the shadow bank; a row whose
    ``swap_in`` is high computes with the shadow weights and makes them the active ones (double-buffered
    weights, loaded while the previous tile computes). ``lanes_in`` (0 … ``block``) says how many of the
    block's positions are real (the rest is ragged-K padding): only slots whose position is below it are
    counted, zero activations on ``zeros_out``, the others on ``macs_out``.

    ``lookahead=True`` (``tiled`` only) takes the values ``act_in``, ``swap_in`` and ``lanes_in`` will have at the
    next enabled cycle (``act_next``, ``swap_next``, ``lanes_next``: in a mesh, the western neighbour's inputs)
    and selects the next step's activations, weights and real flags one cycle early into registers, with the
    weights the banks will hold then. Same values in the same cycles, provided the inputs of the first enabled cycle
    are zero (the registers' reset stands for that row; in a mesh every input is a register); the
    multipliers' operands then come from registers (in an FPGA, the routing from the fabric to the DSP column no
    longer follows the index mux).

    Parameters
    ----------
    act_bits, act_signed : int, bool
        Activation width and signedness.
    weight_bits : int
        Weight width (two's complement).
    acc_bits : int
        Partial-sum width (two's complement).
    keep, block : int
        At most ``keep`` non-zeros in each ``block`` weights; ``block`` a power of two.
    zero_bits : int
        Width of the zero-skip count chain.
    overflow : ``"wrap"`` or ``"saturate"``
        What the partial-sum adder does on overflow (``"check"`` configs never overflow and use ``"wrap"``).
    pipeline : int
        Pipeline registers between the activation input and the partial-sum adder: 0 (default) … 4.
    lookahead : bool
        Select one cycle early from the ``*_next`` inputs (requires ``tiled``; default False).

    Members
    -------
    en : In(1)
        Clock enable of the whole PE.
    act_in, act_out : In/Out(ArrayLayout(act, block))
    psum_in, psum_out : In/Out(signed(acc_bits))
    zeros_in, zeros_out : In/Out(zero_bits)
        Count of gated multipliers accumulated down the column.
    w_we : In(1)
        Write ``w_data`` into the weight registers (when ``en``).
    w_data : In(ArrayLayout(weight entry, keep))
    swap_in, swap_out : In/Out(1)
        Only when ``tiled``: this row starts a new tile (use and activate the shadow weights).
    lanes_in, lanes_out : In/Out(range(block + 1))
        Only when ``tiled``: real positions of this activation block.
    macs_in, macs_out : In/Out(zero_bits)
        Only when ``tiled``: count of performed (real, non-zero) multiplications accumulated down the column.
    act_next, swap_next, lanes_next : In
        Only with ``lookahead``: ``act_in``, ``swap_in``, ``lanes_in`` of the next enabled cycle.
    """

    def __init__(self, *, act_bits, act_signed, weight_bits, acc_bits, keep, block, zero_bits,
                 overflow="wrap", tiled=False, pipeline=0, lookahead=False):
        self.check_parameters(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits,
                              acc_bits=acc_bits, keep=keep, block=block, zero_bits=zero_bits, overflow=overflow,
                              pipeline=pipeline)
        check_bool("tiled", tiled)
        check_bool("lookahead", lookahead)
        if lookahead and not tiled:
            raise ValueError("lookahead = True needs tiled = True: allowed lookahead only on a tiled PE")
        self._tiled = tiled
        self._lookahead = lookahead
        self._pipeline = pipeline
        self._act_shape = signed(act_bits) if act_signed else unsigned(act_bits)
        self._acc_bits = acc_bits
        self._keep = keep
        self._block = block
        self._index_bits = index_bits(keep=keep, block=block)
        self._overflow = overflow
        act_block = data.ArrayLayout(self._act_shape, block)
        entries = data.ArrayLayout(weight_entry_layout(weight_bits=weight_bits, index_bits=self._index_bits), keep)
        tiled_ports = {
            "swap_in": In(1), "swap_out": Out(1),
            "lanes_in": In(range(block + 1)), "lanes_out": Out(range(block + 1)),
            "macs_in": In(zero_bits), "macs_out": Out(zero_bits),
        } if tiled else {}
        if lookahead:
            tiled_ports |= {"act_next": In(act_block), "swap_next": In(1), "lanes_next": In(range(block + 1))}
        super().__init__({
            "en": In(1),
            "act_in": In(act_block),
            "act_out": Out(act_block),
            "psum_in": In(signed(acc_bits)),
            "psum_out": Out(signed(acc_bits)),
            "zeros_in": In(zero_bits),
            "zeros_out": Out(zero_bits),
            "w_we": In(1),
            "w_data": In(entries),
        } | tiled_ports)

    @staticmethod
    def check_parameters(*, act_bits, act_signed, weight_bits, acc_bits, keep, block, zero_bits, overflow,
                         pipeline=0):
        """Raise ``TypeError``/``ValueError`` for parameters no PE can be built with."""
        check_int("act_bits", act_bits, 1, 64)
        check_bool("act_signed", act_signed)
        check_int("weight_bits", weight_bits, 1, 64)
        check_int("acc_bits", acc_bits, 2, 128)
        check_choice("block", block, BLOCKS)
        check_int("keep", keep, 1, block)
        check_int("zero_bits", zero_bits, 1, 32)
        check_choice("overflow", overflow, HW_OVERFLOW_MODES)
        check_int("pipeline", pipeline, 0, 4)

    @property
    def keep(self):
        return self._keep

    @property
    def block(self):
        return self._block

    @property
    def index_bits(self):
        return self._index_bits

    @property
    def pipeline(self):
        return self._pipeline

    def elaborate(self, platform):
        m = Module()
        weights = self._weight_registers(m)
        if self._lookahead:
            weights = self._lookahead_operands(m)
        slots = [self._slot(m, weights, j) for j in range(self._keep)]
        products, zero_flags, mac_flags = ([slot[k] for slot in slots] for k in range(3))
        total, zeros, macs = self._column_sums(m, products, zero_flags, mac_flags)
        psum_next = wrap_or_saturate(m, total, self._acc_bits, self._overflow, "psum_next")
        self._output_registers(m, psum_next, zeros, macs)
        return m

    def _stage(self, m, value, name):
        """``value`` in a register named ``name``, updated when ``en``: 1 cycle."""
        reg = Signal.like(value, name=name)
        with m.If(self.en):
            m.d.sync += reg.eq(value)
        return reg

    def _weight_registers(self, m):
        """The weight registers (with ``tiled``, also the shadow bank and the swap). Returns the weights this
        cycle's products use. Written on ``w_we``: 1 cycle; read combinationally."""
        active = self._active = Signal.like(self.w_data, name="weights")
        if self._tiled:
            shadow = self._shadow = Signal.like(self.w_data, name="shadow")
            weights = Signal.like(self.w_data, name="weights_used")
            m.d.comb += weights.eq(Mux(self.swap_in, shadow, active))
            with m.If(self.en & self.w_we):
                m.d.sync += shadow.eq(self.w_data)
            with m.If(self.en & self.swap_in):
                m.d.sync += active.eq(shadow)
        else:
            weights = active
            with m.If(self.en & self.w_we):
                m.d.sync += active.eq(self.w_data)
        return weights

    def _select(self, weights, j, acts, lanes):
        """Slot ``j``'s activation (the one its weight's index names), weight value and (``tiled``) real flag:
        only positions below ``lanes`` are real (the rest is ragged-K padding) and counted. Combinational."""
        index = weights[j].index if self._index_bits else j
        act = acts[index] if self._index_bits else acts[j]
        return act, weights[j].value, (index < lanes) if lanes is not None else None

    def _lookahead_operands(self, m):
        """``lookahead``: every slot's ``(act, weight, real)`` of this cycle from registers loaded one enabled
        cycle early from the ``*_next`` inputs and the banks as they will be (a shadow write and this step's swap
        applied). 1 cycle, so the values are those :meth:`_select` would give now."""
        weights_next = next_weights(m, self, "weights_next")
        slots = []
        for j in range(self._keep):
            act, weight, real = self._select(weights_next, j, self.act_next, self.lanes_next)
            slots.append((self._stage(m, act, f"act_ahead{j}"), self._stage(m, weight, f"weight_ahead{j}"),
                          self._stage(m, real, f"real_ahead{j}")))
        return slots

    def _slot(self, m, weights, j):
        """Multiplier slot ``j``: the selected activation times weight ``j``, with its zero flag (and, with
        ``tiled``, its performed-multiplication flag). Returns ``(product, zero, mac)``. ``min(pipeline, 3)``
        cycles (the fourth register is the sums')."""
        if self._lookahead:
            act, weight, real = weights[j]
        else:
            act, weight, real = self._select(weights, j, self.act_in, self.lanes_in if self._tiled else None)
        if self._pipeline >= 2:
            # the weight travels with its activation: a weight write may land between the two stages
            act, weight = self._stage(m, act, f"act_sel{j}"), self._stage(m, weight, f"weight_sel{j}")
            real = self._stage(m, real, f"real_sel{j}") if self._tiled else None
        product, is_zero = gated_product(m, act, weight, j)
        flags = [is_zero & real, ~is_zero & real] if self._tiled else [is_zero]
        for level, suffix in ((1, "_q"), (3, "_q2")):
            # a DSP block absorbs the first product register; the second lands next to the adder
            if self._pipeline >= level:
                product = self._stage(m, product, f"product{j}{suffix}")
                flags = [self._stage(m, flag, f"{kind}{j}{suffix}") for flag, kind in zip(flags, ("zero", "mac"))]
        return product, flags[0], flags[-1]

    def _column_sums(self, m, products, zero_flags, mac_flags):
        """The partial sum, zero count and (``tiled``) mac count entering the output registers: the slots' values
        added to ``psum_in``/``zeros_in``/``macs_in``. Combinational; with ``pipeline`` 4 the ``keep``-operand sums
        are registered first (1 cycle)."""
        total = self.psum_in
        zeros = self.zeros_in
        macs = self.macs_in if self._tiled else None
        if self._pipeline < 4:
            for product, zero, mac in zip(products, zero_flags, mac_flags):
                total = total + product
                zeros = zeros + zero
                if self._tiled:
                    macs = macs + mac
            return total, zeros, macs

        # the keep-operand adders get their own cycle; the partial-sum adder then adds one operand
        total = total + self._staged_sum(m, products, "product_sum")
        zeros = zeros + self._staged_sum(m, zero_flags, "zero_count")
        if self._tiled:
            macs = macs + self._staged_sum(m, mac_flags, "mac_count")
        return total, zeros, macs

    def _staged_sum(self, m, values, name):
        """The sum of ``values`` in a register named ``name``: 1 cycle."""
        result = values[0]
        for value in values[1:]:
            result = result + value
        return self._stage(m, result, name)

    def _output_registers(self, m, psum_next, zeros, macs):
        """The output registers: ``act_out``, ``psum_out``, ``zeros_out`` (and the ``tiled`` tags). 1 cycle."""
        with m.If(self.en):
            m.d.sync += [
                self.act_out.eq(self.act_in),
                self.psum_out.eq(psum_next),
                self.zeros_out.eq(zeros),
            ]
            if self._tiled:
                m.d.sync += [
                    self.swap_out.eq(self.swap_in),
                    self.lanes_out.eq(self.lanes_in),
                    self.macs_out.eq(macs),
                ]
