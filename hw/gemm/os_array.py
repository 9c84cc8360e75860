"""The output-stationary N:M sparse systolic core: one C tile per PE array, streams in, streams out."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_bool, check_int
from hw.systolic.beats import index_bits, result_layout
from hw.systolic.mac import tree_sum
from hw.gemm.os_beats import os_act_layout, os_weight_layout
from hw.gemm.os_pe import SparseOSPE
from hw.systolic.mesh import build_mesh

__all__ = ["SparseOSArray"]


class SparseOSArray(wiring.Component):
    """``rows × cols`` output-stationary array of :class:`SparseOSPE` for ``keep``-of-``block`` sparse weights.

    Computes tiles ``C[rows × cols] = A[rows × K] · W[K × cols]``, ``K = T · block`` for any ``T ≥ 1`` K-blocks;
    PE (i, j) accumulates ``C[i, j]``. Beat formats are defined in :mod:`hw.gemm.os_beats`; ports, timing and
    the cycle formula are specified in docs/gemm-os-core.md.

    - A step is one K-block: it transfers when an activation beat and a weight beat transfer together (the two
      streams are joined: ``acts.ready`` and ``weights.ready`` are equal and need both ``valid``). The weight
      beat's ``last`` bit ends the tile.
    - Activations enter skewed (PE row i delayed i cycles) and flow right; compressed weights enter skewed (PE
      column j delayed j cycles) and flow down, so K-block t meets PE (i, j) ``i + j`` cycles after row/column 0.
    - A tile's first step restarts every accumulator from 0 as it passes, so the finished C element only has to
      leave ``acc`` in the one cycle after the last step: back-to-back tiles need no drain and no second
      accumulator. Column j's finished values are delayed ``cols − 1 − j`` cycles, so PE row i's whole C row is
      ready ``i`` cycles after row 0's; one result beat per row leaves in row order.
    - A step marked ``last`` is refused until ``rows`` pipeline cycles after the previous tile's last step, so
      two tiles' result rows never meet at the output: tiles of ``T ≥ rows`` K-blocks stream with no bubble,
      shorter ones cost ``rows`` cycles each (one result beat per row is the output's bandwidth).
    - The whole core advances only when ``results`` can move (``advance = ~valid | ready``): backpressure
      freezes every register, so no beat is lost or duplicated. With ``advance_on_ready`` the core advances
      exactly when ``results.ready`` is high (``advance = ready``), valid or not: for a consumer whose ready does
      not depend on ``valid`` (a registered skid buffer's "empty"), every register's enable is then the
      consumer's register alone, not a function of the PEs' ``done`` flags.

    Latency: a tile whose last step transfers in cycle a offers result row i in cycle
    ``a + cols + 1 + pe_pipeline + i``.

    Parameters
    ----------
    rows, cols : int
        PE rows (rows of A and C) and columns (columns of W and C).
    act_bits, act_signed : int, bool
        Activation width and signedness.
    weight_bits, acc_bits : int
        Weight and accumulator widths (two's complement).
    keep, block : int
        N:M sparsity along K; dense when ``keep == block``.
    overflow : ``"wrap"`` or ``"saturate"``
        Accumulator behavior (see :class:`SparseOSPE`); saturation clamps after each K-block.
    counter_bits : int
        Width of the wrapping performance counters.
    pe_pipeline : int
        Pipeline registers in every PE, 0 (default) … 4 (:class:`SparseOSPE` ``pipeline``); each adds a cycle of
        latency.
    advance_on_ready : bool
        ``advance = results.ready`` instead of ``~results.valid | results.ready`` (default False). Same cycles
        while ``results.ready`` is high; a low ready then also holds a core with no valid row.

    Members
    -------
    acts : In(stream.Signature(ArrayLayout(ArrayLayout(act, block), rows)))
    weights : In(stream.Signature(StructLayout({"entries": …, "last": 1})))
    results : Out(stream.Signature(ArrayLayout(signed(acc_bits), cols)))
    cycles, busy_cycles, stall_cycles, zero_skips : Out(counter_bits)
        Performance counters, see docs/gemm-os-core.md "Counters".
    """

    def __init__(self, *, rows, cols, act_bits, act_signed, weight_bits, acc_bits, keep, block,
                 overflow="wrap", counter_bits=32, pe_pipeline=0, advance_on_ready=False):
        check_int("rows", rows, 1, 256)
        check_int("cols", cols, 1, 256)
        check_int("counter_bits", counter_bits, 1, 64)
        self._pe_args = dict(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits,
                             acc_bits=acc_bits, keep=keep, block=block,
                             zero_bits=(rows * keep).bit_length(), overflow=overflow, pipeline=pe_pipeline)
        SparseOSPE.check_parameters(**self._pe_args)
        check_bool("advance_on_ready", advance_on_ready)
        self._rows, self._cols, self._advance_on_ready = rows, cols, advance_on_ready
        super().__init__({
            "acts": In(stream.Signature(os_act_layout(rows=rows, block=block, act_bits=act_bits,
                                                      act_signed=act_signed))),
            "weights": In(stream.Signature(os_weight_layout(cols=cols, keep=keep, weight_bits=weight_bits,
                                                            index_bits=index_bits(keep=keep, block=block)))),
            "results": Out(stream.Signature(result_layout(cols=cols, acc_bits=acc_bits))),
            "cycles": Out(counter_bits),
            "busy_cycles": Out(counter_bits),
            "stall_cycles": Out(counter_bits),
            "zero_skips": Out(counter_bits),
        })

    @property
    def rows(self):
        return self._rows

    @property
    def cols(self):
        return self._cols

    @property
    def latency(self):
        """Cycles from a tile's last step transfer to its first result beat's first possible transfer:
        ``cols + 1 + pe_pipeline``."""
        return self._cols + 1 + self._pe_args["pipeline"]

    def elaborate(self, platform):
        m = Module()
        s = SimpleNamespace()       # what the parts share: advance, the step handshake, tile state, input stage
        advance = Signal()          # the whole core moves: results can move
        if self._advance_on_ready:
            m.d.comb += advance.eq(self.results.ready)
        else:
            m.d.comb += advance.eq(~self.results.valid | self.results.ready)
        s.advance = advance
        self._step_join(m, s)
        self._tile_tracking(m, s)
        self._input_stage(m, s)
        mesh = self._pe_grid(m, s)
        self._output_rows(m, s, mesh)
        self._counters(m, s, mesh)
        return m

    def _step_join(self, m, s):
        """The joined ``acts``/``weights`` handshake, refusing a last step until the output spacing allows it.
        Combinational (0 cycles)."""
        # Output spacing: a tile's rows leave in `rows` consecutive pipeline cycles starting cols + 1 after its
        # last step, so the next last step must come at least `rows` pipeline cycles later.
        hold = Signal(range(self._rows), name="last_hold")     # pipeline cycles until a last step may enter
        holding = Signal(name="last_holding")                   # hold != 0, registered with it
        blocked = self.weights.payload.last & holding
        step_ok = s.advance & ~blocked
        m.d.comb += [
            self.acts.ready.eq(step_ok & self.weights.valid),
            self.weights.ready.eq(step_ok & self.acts.valid),
        ]
        s.hold, s.holding = hold, holding
        s.fire = self.acts.valid & self.weights.valid & step_ok
        s.last = self.weights.payload.last

    def _tile_tracking(self, m, s):
        """The output-spacing countdown, whether a tile is open and which pipeline cycles hold a step. Registers:
        1 cycle."""
        rows, cols = self._rows, self._cols
        hold, fire, last = s.hold, s.fire, s.last
        tile_open = Signal(name="tile_open")     # a tile's first step has entered and its last has not
        # bit n: a step entered n + 1 pipeline cycles ago
        in_flight = Signal(rows + cols + self._pe_args["pipeline"], name="in_flight")
        with m.If(s.advance):
            with m.If(fire & last):
                m.d.sync += [hold.eq(rows - 1), s.holding.eq(rows > 1)]
            with m.Elif(s.holding):
                m.d.sync += [hold.eq(hold - 1), s.holding.eq(hold != 1)]
            with m.If(fire):
                m.d.sync += tile_open.eq(~last)
            m.d.sync += in_flight.eq(Cat(fire, in_flight[:-1]))
        s.tile_open, s.in_flight = tile_open, in_flight

    def _input_stage(self, m, s):
        """The input stage: the step's activations, weights and step flags. Cycles with no step offered carry zero
        activations so idle multipliers stay gated (gated by ``acts.valid``, not by the transfer: a refused step's
        activations enter as a bubble, ignored like any bubble, and the transfer's fan-out stays small). Registers:
        1 cycle."""
        acts_in = Signal(len(self.acts.payload.as_value()), name="acts_in")
        w_in = Signal(self.weights.payload.entries.shape(), name="w_in")
        step_in = Signal(SparseOSPE.STEP, name="step_in")
        with m.If(s.advance):
            m.d.sync += [
                acts_in.eq(Mux(self.acts.valid, self.acts.payload.as_value(), 0)),
                w_in.eq(self.weights.payload.entries),
                step_in.valid.eq(s.fire),
                step_in.first.eq(~s.tile_open),
                step_in.last.eq(s.last),
            ]
        s.acts_in, s.w_in, s.step_in = acts_in, w_in, step_in

    def _pe_grid(self, m, s):
        """The ``rows × cols`` PEs (:func:`hw.systolic.mesh.build_mesh`): activations skewed into row i (i cycles)
        and flowing east, weights and step flags skewed into column j (j cycles) and flowing south with the zero
        counts. Returns the :class:`hw.systolic.mesh.Mesh`."""
        rows, cols = self._rows, self._cols
        width = len(s.acts_in) // rows
        return build_mesh(m, rows=rows, cols=cols, pe_class=SparseOSPE, pe_params=self._pe_args, en=s.advance,
                          west={"act": [s.acts_in[i * width:(i + 1) * width] for i in range(rows)]},
                          north={"w": [s.w_in[j] for j in range(cols)], "step": [s.step_in] * cols},
                          south=("zeros",))

    def _output_rows(self, m, s, mesh):
        """De-skew each PE row (column j delayed ``cols - 1 - j`` cycles) and put the one finished row (at most
        one, by the output spacing) on ``results``."""
        valid, payload = 0, 0
        for i, pes in enumerate(mesh.pes):
            row = Cat(mesh.deskew([pe.acc for pe in pes], f"acc_deskew_r{i}"))
            done = pes[-1].done
            valid = valid | done
            payload = payload | Mux(done, row, 0)
        m.d.comb += [
            self.results.valid.eq(valid),
            self.results.payload.eq(payload),
        ]

    def _counters(self, m, s, mesh):
        """The performance counters (cycles, busy, stalled, zero skips). Registers: 1 cycle."""
        m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(s.advance & (s.fire | s.tile_open | s.in_flight.any())):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        with m.If(self.results.valid & ~self.results.ready):
            m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)
        with m.If(s.advance):
            # A step's zero skips are counted as it leaves the bottom PE row, column by column.
            m.d.sync += self.zero_skips.eq(self.zero_skips + tree_sum(mesh.bottom("zeros_out")))
