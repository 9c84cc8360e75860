"""The weight-stationary N:M sparse systolic array: streams in, streams out, one pipeline enable."""

import functools

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.systolic.beats import act_layout, index_bits, result_layout, weight_layout
from hw.systolic.delay import delayed
from hw.systolic.grid import grid_verilog
from hw.systolic.pe import SparsePE
from hw.shared import add_shared, add_verilog, emitting_once, shared_module

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

        if emitting_once():
            psums, zeros = self._verilog_grid(m, advance, acts_in, w_valid, w_row, w_data)
            m.d.comb += [self.results.payload[c].eq(psums[c]) for c in range(cols)]
        else:
            def delay(value, n, name):
                return delayed(m, value, n, en=advance, name=name)

            bottom_psum, bottom_zeros = self._pe_grid(m, advance, acts_in, w_valid, w_row, w_data, delay)
            # De-skew: column c leaves the bottom row c cycles before the last column.
            zeros = []
            for c in range(cols):
                m.d.comb += self.results.payload[c].eq(delay(bottom_psum[c], cols - 1 - c, f"psum_deskew_c{c}"))
                zeros.append(delay(bottom_zeros[c], cols - 1 - c, f"zeros_deskew_c{c}"))
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

    def _pe_grid(self, m, advance, acts_in, w_valid, w_row, w_data, delay):
        """The ``rows × cols`` PEs, one submodule each: weight beat column c reaches its PEs ``c`` cycles late,
        activations enter PE row r ``r`` cycles late and flow right, sums flow down. Returns the bottom row's
        ``psum_out`` and ``zeros_out`` per column. Latency ``rows + cols − 1 + pipeline``."""
        rows, cols = self._rows, self._cols
        pes = [[None] * cols for _ in range(rows)]
        for c in range(cols):
            # Weight beat column c reaches its PEs c cycles after the input stage (the write trails activations).
            wv_c = delay(w_valid, c, f"w_valid_c{c}")
            wr_c = delay(w_row, c, f"w_row_c{c}")
            wd_c = delay(w_data[c], c, f"w_data_c{c}")
            for r in range(rows):
                pe = pes[r][c] = add_shared(m, f"pe_{r}_{c}", SparsePE, **self._pe_args)
                m.d.comb += [
                    pe.en.eq(advance),
                    pe.w_we.eq(wv_c & (wr_c == r)),
                    pe.w_data.eq(wd_c),
                ]
                if c == 0:
                    width = len(pe.act_in.as_value())
                    m.d.comb += pe.act_in.eq(delay(acts_in[r * width:(r + 1) * width], r, f"act_skew_r{r}"))
                else:
                    m.d.comb += pe.act_in.eq(pes[r][c - 1].act_out)
                if r > 0:
                    m.d.comb += [pe.psum_in.eq(pes[r - 1][c].psum_out), pe.zeros_in.eq(pes[r - 1][c].zeros_out)]
        return [pes[rows - 1][c].psum_out for c in range(cols)], [pes[rows - 1][c].zeros_out for c in range(cols)]

    def _verilog_grid(self, m, advance, acts_in, w_valid, w_row, w_data):
        """The grid of :meth:`_pe_grid` with its de-skew, for arrays emitted once: ``rows`` identical PE rows of the
        once-emitted PE, wired by the hand-written Verilog of :func:`hw.systolic.grid.grid_verilog`, so that
        Amaranth never flattens its O(rows·cols) bits. Same timing; returns the de-skewed sums and zero counts per
        column."""
        rows, cols = self._rows, self._cols
        acc, zero_bits = self._pe_args["acc_bits"], self._pe_args["zero_bits"]
        row_bits = max(1, (rows - 1).bit_length())
        w_row_x = Signal(row_bits, name="w_row_x")      # rows = 1: w_row has no bits
        psum = Signal(cols * acc, name="grid_psum")
        zeros = Signal(cols * zero_bits, name="grid_zeros")
        m.d.comb += w_row_x.eq(w_row)
        text = functools.partial(grid_verilog, rows=rows, cols=cols, act_width=len(acts_in) // rows,
                                 acc_bits=acc, zero_bits=zero_bits, row_bits=row_bits,
                                 w_bits=len(w_data.as_value()) // cols,
                                 pe_module=shared_module(SparsePE, **self._pe_args))
        add_verilog(m, "grid", "grid", text, i_en=advance, i_acts=acts_in, i_w_valid=w_valid, i_w_row=w_row_x,
                    i_w_data=w_data.as_value(), o_psum=psum, o_zeros=zeros)
        return ([psum[c * acc:(c + 1) * acc].as_signed() for c in range(cols)],
                [zeros[c * zero_bits:(c + 1) * zero_bits] for c in range(cols)])
