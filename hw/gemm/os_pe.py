"""The sparse processing element of the output-stationary core."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.systolic.beats import index_bits, weight_entry_layout
from hw.systolic.delay import delayed
from hw.systolic.mac import gated_product, wrap_or_saturate
from hw.systolic.pe import SparsePE

__all__ = ["SparseOSPE"]


class SparseOSPE(wiring.Component):
    """Output-stationary PE for ``keep``-of-``block`` structured-sparse weights streamed past it.

    Holds one element of C in its accumulator. Each valid step brings one K-block: ``block`` activations from the
    left and ``keep`` compressed weights (value, in-block index) from above. The PE selects the ``keep``
    activations the streamed indices name (index muxing on the streamed weights: the indices change every step,
    unlike the weight-stationary :class:`~hw.systolic.pe.SparsePE`), multiplies them by the weights (``keep``
    multipliers), adds the exact sum of the products to its accumulator and clamps it when ``overflow`` is
    ``"saturate"``. The step's ``first`` input says whether the accumulator restarts from 0: the first step of a
    tile does, so the previous tile's result only needs to stay in ``acc`` for the one cycle after its last step.
    A selected activation that is zero marks its multiplication as skippable (its product is 0) and is counted on
    ``zeros_out``. Dense PEs (``keep == block``) have no index logic: slot s multiplies activation s.

    Timing: one cycle from ``act_in``/``w_in``/``step_in``/``zeros_in`` to ``act_out``/``w_out``/``step_out``/
    ``zeros_out`` (activations flow right, weights, step flags and zero counts flow down). ``acc`` and ``done``
    are registered: ``1 + pipeline`` cycles after a valid step marked ``last``, ``acc`` holds the finished C
    element and ``done`` is high. ``pipeline`` places the registers of
    :class:`~hw.systolic.pe.SparsePE` between the inputs and the accumulator adder (1: products, 2: also the
    index-muxed activations with their weights, 3: products a second time, 4: also the sum of the ``keep``
    products); the step's flags are delayed with them, so the accumulator sees every step ``pipeline`` cycles
    late and unchanged. Every register only updates in cycles where ``en`` is high; ``acc`` only on valid
    steps.

    Parameters
    ----------
    act_bits, act_signed : int, bool
        Activation width and signedness.
    weight_bits : int
        Weight width (two's complement).
    acc_bits : int
        Accumulator width (two's complement).
    keep, block : int
        At most ``keep`` non-zeros in each ``block`` weights; ``block`` a power of two.
    zero_bits : int
        Width of the zero-skip count chain.
    overflow : ``"wrap"`` or ``"saturate"``
        What the accumulator adder does on overflow.
    pipeline : int
        Pipeline registers between the inputs and the accumulator adder, 0 (default) … 4.

    Members
    -------
    en : In(1)
        Clock enable of the whole PE.
    act_in, act_out : In/Out(ArrayLayout(act, block))
    w_in, w_out : In/Out(ArrayLayout(weight entry, keep))
    step_in, step_out : In/Out(StructLayout({"valid": 1, "first": 1, "last": 1}))
        The step is a real K-block (not a bubble); it is the first / last K-block of its tile.
    zeros_in, zeros_out : In/Out(zero_bits)
        Count of gated multipliers of this step accumulated down the column.
    acc : Out(signed(acc_bits))
    done : Out(1)
        ``acc`` holds a finished C element (the previous cycle's step was valid and last).
    """

    STEP = data.StructLayout({"valid": 1, "first": 1, "last": 1})

    def __init__(self, *, act_bits, act_signed, weight_bits, acc_bits, keep, block, zero_bits, overflow="wrap",
                 pipeline=0):
        self.check_parameters(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits,
                              acc_bits=acc_bits, keep=keep, block=block, zero_bits=zero_bits, overflow=overflow,
                              pipeline=pipeline)
        self._pipeline = pipeline
        self._act_shape = signed(act_bits) if act_signed else unsigned(act_bits)
        self._acc_bits = acc_bits
        self._keep = keep
        self._block = block
        self._index_bits = index_bits(keep=keep, block=block)
        self._overflow = overflow
        act_block = data.ArrayLayout(self._act_shape, block)
        entries = data.ArrayLayout(weight_entry_layout(weight_bits=weight_bits, index_bits=self._index_bits), keep)
        super().__init__({
            "en": In(1),
            "act_in": In(act_block),
            "act_out": Out(act_block),
            "w_in": In(entries),
            "w_out": Out(entries),
            "step_in": In(self.STEP),
            "step_out": Out(self.STEP),
            "zeros_in": In(zero_bits),
            "zeros_out": Out(zero_bits),
            "acc": Out(signed(acc_bits)),
            "done": Out(1),
        })

    # Same parameter rules as the weight-stationary PE, ``pipeline`` included.
    check_parameters = staticmethod(SparsePE.check_parameters)

    @property
    def keep(self):
        return self._keep

    @property
    def block(self):
        return self._block

    @property
    def index_bits(self):
        return self._index_bits

    def elaborate(self, platform):
        m = Module()
        step = self.step_in
        selected = [self.w_in[s] for s in range(self._keep)]
        acts = [self.act_in[w.index] if self._index_bits else self.act_in[s] for s, w in enumerate(selected)]
        zeros = 0
        for act in acts:
            zeros = zeros + (act == 0)
        products = [self._slot(m, act, w.value, s) for s, (act, w) in enumerate(zip(acts, selected))]
        psum = products[0]
        for product in products[1:]:
            psum = psum + product
        if self._pipeline >= 4:
            psum = self._stage(m, psum, "product_sum")
        # the step's flags reach the accumulator with its products
        acc_step = delayed(m, step, self._pipeline, en=self.en, name="acc_step")
        total = Mux(acc_step.first, 0, self.acc) + psum
        acc_next = wrap_or_saturate(m, total, self._acc_bits, self._overflow, "acc_next")

        with m.If(self.en):
            m.d.sync += [
                self.act_out.eq(self.act_in),
                self.w_out.eq(self.w_in),
                self.step_out.eq(step),
                self.zeros_out.eq(self.zeros_in + Mux(step.valid, zeros, 0)),
                self.done.eq(acc_step.valid & acc_step.last),
            ]
            with m.If(acc_step.valid):
                m.d.sync += self.acc.eq(acc_next)
        return m

    def _stage(self, m, value, name):
        """``value`` in a register named ``name``, updated when ``en``: 1 cycle."""
        reg = Signal.like(value, name=name)
        with m.If(self.en):
            m.d.sync += reg.eq(value)
        return reg

    def _slot(self, m, act, weight, s):
        """Multiplier slot ``s``: the selected activation times its streamed weight, through the ``pipeline``
        registers of :class:`~hw.systolic.pe.SparsePE` (2: the selected operands, 1 and 3: the product).
        ``min(pipeline, 3)`` cycles."""
        if self._pipeline >= 2:
            act, weight = self._stage(m, act, f"act_sel{s}"), self._stage(m, weight, f"weight_sel{s}")
        product, _ = gated_product(m, act, weight, s)
        for level, suffix in ((1, "_q"), (3, "_q2")):
            # a DSP block absorbs the first product register; the second lands next to the adder
            if self._pipeline >= level:
                product = self._stage(m, product, f"product{s}{suffix}")
        return product
