"""The weight-stationary N:M sparse systolic array: streams in, streams out, one pipeline enable."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.systolic.beats import act_layout, index_bits, result_layout, weight_layout
from hw.systolic.mesh import build_mesh, mesh_verilog
from hw.systolic.pe import SparsePE
from hw.shared import emitting_once

__all__ = ["SparseSystolicArray"]


class SparseSystolicArray(wiring.Component):
    """``rows × cols`` weight-stationary array of :class:`SparsePE` for ``keep``-of-``block`` sparse weights.

    Computes ``C[M × cols] = A[M × k] · W[k × cols]`` with ``k = rows · block``: PE row r covers K-block r,
    PE column c output channel c. Beat formats, load order and timing are specified in docs/systolic.md
    "Interfaces" and defined in :mod:`hw.systolic.beats`.

    - Activations enter skewed (K-block r is delayed r cycles) and flow right; partial sums flow down;
      results are de-skewed so that one result beat carries a whole row of C, in input order.
    - A weight load is ``rows`` beats, PE row 0 first. Each beat is written into PE column c ``c + 1``
      cycles after its transfer, trailing the last activation row of the old weights, so loads need no
      drain. Weights have priority over activations.
    - The whole array advances only when ``results`` can move (``advance = ~valid | ready``): backpressure
      freezes every register, so no beat is lost or duplicated.

    Latency: ``rows + cols + pe_pipeline`` cycles from an activation transfer to its result's first possible
    transfer.

    Parameters
    ----------
    rows, cols : int
        PE rows (K-blocks) and columns (output channels).
    act_bits, act_signed : int, bool
        Activation width and signedness.
    weight_bits, acc_bits : int
        Weight and partial-sum widths (two's complement).
    keep, block : int
        N:M sparsity; dense when ``keep == block``.
    overflow : ``"wrap"`` or ``"saturate"``
        Partial-sum adder behavior (see :class:`SparsePE`).
    counter_bits : int
        Width of the wrapping performance counters.
    pe_pipeline : int
        Pipeline registers inside each PE, 0 … 4 (see :class:`SparsePE`); each adds one cycle of latency.

    Members
    -------
    acts : In(stream.Signature(ArrayLayout(act, k)))
    weights : In(stream.Signature(ArrayLayout(ArrayLayout(entry, keep), cols)))
    results : Out(stream.Signature(ArrayLayout(signed(acc_bits), cols)))
    cycles, busy_cycles, stall_cycles, zero_skips : Out(counter_bits)
        Performance counters, see docs/systolic.md.
    """

    def __init__(self, *, rows, cols, act_bits, act_signed, weight_bits, acc_bits, keep, block,
                 overflow="wrap", counter_bits=32, pe_pipeline=0):
        check_int("rows", rows, 1, 256)
        check_int("cols", cols, 1, 256)
        check_int("counter_bits", counter_bits, 1, 64)
        self._pe_args = dict(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits,
                             acc_bits=acc_bits, keep=keep, block=block,
                             zero_bits=(rows * keep).bit_length(), overflow=overflow, pipeline=pe_pipeline)
        SparsePE.check_parameters(**self._pe_args)
        self._rows, self._cols = rows, cols
        super().__init__({
            "acts": In(stream.Signature(act_layout(k=rows * block, act_bits=act_bits, act_signed=act_signed))),
            "weights": In(stream.Signature(weight_layout(cols=cols, keep=keep, weight_bits=weight_bits,
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
        """Cycles from an activation transfer to its result beat's first possible transfer."""
        return self._rows + self._cols + self._pe_args["pipeline"]

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._rows, self._cols

        advance = Signal()
        m.d.comb += advance.eq(~self.results.valid | self.results.ready)

        # Arbitration: a load is `rows` consecutive weight beats and has priority over activations.
        load_row = Signal(range(rows), name="load_row")   # PE row the next weight beat goes to
        m.d.comb += [
            self.weights.ready.eq(advance),
            self.acts.ready.eq(advance & (load_row == 0) & ~self.weights.valid),
        ]
        w_fire = self.weights.valid & self.weights.ready
        a_fire = self.acts.valid & self.acts.ready
        with m.If(w_fire):
            m.d.sync += load_row.eq(0 if rows == 1 else (load_row + 1) % rows)

        # Input stage. Idle cycles carry zero activations so idle multipliers stay gated.
        acts_in = Signal(len(self.acts.payload.as_value()), name="acts_in")
        w_valid = Signal(name="w_valid")
        w_row = Signal.like(load_row, name="w_row")
        w_data = Signal(self.weights.payload.shape(), name="w_data")
        in_flight = Signal(self.latency, name="in_flight")   # bit i: a row is i + 1 cycles past its transfer
        with m.If(advance):
            m.d.sync += [
                acts_in.eq(Mux(a_fire, self.acts.payload.as_value(), 0)),
                w_valid.eq(w_fire),
                w_row.eq(load_row),
                w_data.eq(self.weights.payload),
                in_flight.eq(Cat(a_fire, in_flight[:-1])),
            ]

        psums, zeros = self._grid(m, advance, acts_in, (w_valid, w_row, w_data))
        m.d.comb += [self.results.payload[c].eq(psums[c]) for c in range(cols)]
        m.d.comb += self.results.valid.eq(in_flight[-1])

        r_fire = self.results.valid & self.results.ready
        m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(advance & (a_fire | in_flight.any())):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        with m.If(self.results.valid & ~self.results.ready):
            m.d.sync += self.stall_cycles.eq(self.stall_cycles + 1)
        with m.If(r_fire):
            m.d.sync += self.zero_skips.eq(self.zero_skips + sum(zeros))
        return m

    def _grid(self, m, advance, acts_in, load):
        """The ``rows × cols`` PEs (:func:`hw.systolic.mesh.build_mesh`): the weight ``load`` reaches column c ``c``
        cycles after the input stage (the write trails activations), activations enter PE row r ``r`` cycles late
        and flow east, sums and zero counts flow south; the bottom row de-skewed (column c leaves ``c`` cycles
        before the last). Emitted once, the same mesh as Verilog text (:func:`hw.systolic.mesh.mesh_verilog`).
        Returns the de-skewed sums and zero counts per column. Latency ``rows + cols − 1 + pipeline`` from the input
        stage."""
        rows, cols = self._rows, self._cols
        mesh_args = dict(rows=rows, cols=cols, pe_class=SparsePE, pe_params=self._pe_args, en=advance)
        if emitting_once():
            return mesh_verilog(m, **mesh_args, acts=acts_in, load=load, acc_bits=self._pe_args["acc_bits"],
                                zero_bits=self._pe_args["zero_bits"])
        width = len(acts_in) // rows
        mesh = build_mesh(m, **mesh_args, west={"act": [acts_in[r * width:(r + 1) * width] for r in range(rows)]},
                          south=("psum", "zeros"), load=load)
        return mesh.deskew(mesh.bottom("psum_out"), "psum_deskew"), mesh.deskew(mesh.bottom("zeros_out"), "zeros_deskew")
