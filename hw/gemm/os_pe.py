"""The sparse processing element of the output-stationary core."""

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.systolic.beats import index_bits, weight_entry_layout
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
    are registered: in the cycle after a valid step marked ``last``, ``acc`` holds the finished C element and
    ``done`` is high. Every register only updates in cycles where ``en`` is high; ``acc`` only on valid steps.

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

    def __init__(self, *, act_bits, act_signed, weight_bits, acc_bits, keep, block, zero_bits, overflow="wrap"):
        self.check_parameters(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits,
                              acc_bits=acc_bits, keep=keep, block=block, zero_bits=zero_bits, overflow=overflow)
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

    # Same parameter rules as the weight-stationary PE (which also takes ``pipeline``, left at 0 here).
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

        total = Mux(step.first, 0, self.acc)
        zeros = 0
        for s in range(self._keep):
            w = self.w_in[s]
            act = self.act_in[w.index] if self._index_bits else self.act_in[s]
            product, is_zero = gated_product(m, act, w.value, s)
            total = total + product
            zeros = zeros + is_zero

        acc_next = wrap_or_saturate(m, total, self._acc_bits, self._overflow, "acc_next")

        with m.If(self.en):
            m.d.sync += [
                self.act_out.eq(self.act_in),
                self.w_out.eq(self.w_in),
                self.step_out.eq(step),
                self.zeros_out.eq(self.zeros_in + Mux(step.valid, zeros, 0)),
                self.done.eq(step.valid & step.last),
            ]
            with m.If(step.valid):
                m.d.sync += self.acc.eq(acc_next)
        return m
