"""The RRAM tile controller: write-verify programming, table loading with range checks, and the MVM sequencer.

It drives one :class:`hw.rram.crossbar.CrossbarModel` through its command/response streams and owns the tile's
tables and buffers (``amaranth.lib.memory.Memory``): the OU index table, the column table, the input buffer and
the output accumulators. Every beat and table layout comes from :mod:`hw.rram.beats`; the order of operations is
the one :mod:`hw.formats.mapping` specifies and :mod:`sim.rram.golden` mirrors.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.checks import check_bool, check_int
from hw.rram import beats
from hw.rram.crossbar import Op, command_layout, response_bits
from hw.formats.mapping import input_planes

__all__ = ["RramController", "COUNTERS"]

# Counters the controller keeps (the fault counts live in the fault log); see beats.REGISTERS.
COUNTERS = ("errors", "ou_activations", "adc_conversions", "skipped_ous", "verify_iters", "cells_programmed", "mvms")


class RramController(wiring.Component):
    """Sequencer of one RRAM tile (keyword-only parameters, all checked).

    Parameters
    ----------
    n_xbars, xbar_rows, xbar_cols, cell_bits, ou_rows, ou_cols, dac_bits, adc_bits : int
        The crossbar model's shape (see :class:`hw.rram.crossbar.CrossbarModel`).
    weight_bits : int
        Column slice shifts are ``0 … weight_bits - 1``; 2 … 16.
    input_bits : int, input_signed : bool
        Input element width and signedness; the input planes are ``hw.formats.mapping.input_planes``.
    ou_table_depth, input_capacity, output_capacity : int
        Entries of the OU index table, the input buffer and the accumulator memory.
    acc_bits : int
        Accumulator and output width (two's complement, wrapping).
    max_iters : int
        Writes per cell before write-verify gives up and logs the cell; 1 … 255.
    counter_bits : int
        Width of the wrapping counters; 16 … 64.

    Members
    -------
    program, tables, inputs : In(stream)
        Program beats, table beats, input beats (layouts in :mod:`hw.rram.beats`).
    outputs : Out(stream)
        Output beats, y[0] first, ``last`` on y[N-1].
    xbar_cmd : Out(stream), xbar_rsp : In(stream)
        To and from the crossbar model.
    fault : Out(stream)
        The address of each cell that failed write-verify (to the fault log).
    busy, tables_valid : Out(1); error : Out(4)
        Status: an operation is in progress; a complete, error-free table load is active; last error code.
    errors, ou_activations, adc_conversions, skipped_ous, verify_iters, cells_programmed, mvms : Out(counter_bits)
        Counters, see ``beats.REGISTERS``.

    Timing (cycles, crossbar latency 2, no gaps or backpressure; ``gen/rram/perf.py``): a program beat takes
    ``1 + 4·writes`` cycles (accept, then per write: WRITE, READ_CELL, 2-cycle response), 1 more when the cell is
    logged as faulty; a table beat 1 cycle; an input vector starts 1 cycle after the controller became idle;
    an MVM takes ``K`` input cycles, ``N`` clear cycles, per plane 1 cycle plus, per scheduled OU, fetch and latch
    (2), gather (``ou_rows + 1``), READ_OU and its response (3), 1 cycle per OU column and 2 more per converted
    column; and finally ``2·N`` output cycles.
    """

    def __init__(self, *, n_xbars, xbar_rows, xbar_cols, cell_bits, ou_rows, ou_cols, dac_bits, adc_bits,
                 weight_bits, input_bits, input_signed, ou_table_depth, input_capacity, output_capacity, acc_bits,
                 max_iters, counter_bits):
        check_int("n_xbars", n_xbars, 1, 64)
        check_int("xbar_rows", xbar_rows, 2, 1024)
        check_int("xbar_cols", xbar_cols, 2, 1024)
        check_int("cell_bits", cell_bits, 1, 4)
        check_int("ou_rows", ou_rows, 1, xbar_rows)
        check_int("ou_cols", ou_cols, 1, xbar_cols)
        check_int("dac_bits", dac_bits, 1, 2)
        check_int("adc_bits", adc_bits, 1, 16)
        check_int("weight_bits", weight_bits, 2, 16)
        check_bool("input_signed", input_signed)
        check_int("input_bits", input_bits, 2 if input_signed else 1, 16)
        check_int("ou_table_depth", ou_table_depth, 1, 65536)
        check_int("input_capacity", input_capacity, 1, 65536)
        check_int("output_capacity", output_capacity, 1, 65536)
        check_int("acc_bits", acc_bits, 8, 64)
        check_int("max_iters", max_iters, 1, 255)
        check_int("counter_bits", counter_bits, 16, 64)
        self.p = beats.params(n_xbars=n_xbars, xbar_rows=xbar_rows, xbar_cols=xbar_cols, cell_bits=cell_bits,
                              weight_bits=weight_bits, input_bits=input_bits, input_signed=input_signed,
                              ou_rows=ou_rows, ou_cols=ou_cols, ou_table_depth=ou_table_depth,
                              input_capacity=input_capacity, output_capacity=output_capacity, acc_bits=acc_bits)
        self.dac_bits, self.adc_bits, self.max_iters, self.counter_bits = dac_bits, adc_bits, max_iters, counter_bits
        self.planes = input_planes(input_bits, input_signed, dac_bits)
        cmd = command_layout(n_xbars=n_xbars, xbar_rows=xbar_rows, xbar_cols=xbar_cols, cell_bits=cell_bits,
                             ou_rows=ou_rows, dac_bits=dac_bits)
        rsp = unsigned(response_bits(cell_bits=cell_bits, ou_cols=ou_cols, adc_bits=adc_bits))
        members = {
            "program": In(stream.Signature(beats.program_layout(self.p))),
            "tables": In(stream.Signature(beats.table_layout(self.p))),
            "inputs": In(stream.Signature(beats.input_layout(self.p))),
            "outputs": Out(stream.Signature(beats.output_layout(self.p))),
            "xbar_cmd": Out(stream.Signature(cmd)),
            "xbar_rsp": In(stream.Signature(rsp)),
            "fault": Out(stream.Signature(beats.cell_addr_layout(self.p))),
            "busy": Out(1), "tables_valid": Out(1), "error": Out(4),
        }
        members.update({name: Out(counter_bits) for name in COUNTERS})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        s = SimpleNamespace()       # what the parts share: memory ports, registers, table checks (filled in order)
        self._memories(m, s)
        self._status_registers(m, s)
        self._plane_rom(m, s)
        self._table_checks(m, s)
        self._working_registers(m, s)
        with m.FSM(name="ctl") as fsm:
            self._idle(m, s)
            self._program(m, s)
            self._input_vector(m, s)
            self._ou_walk(m, s)
            self._shift_add(m, s)
            self._output_drain(m, s)
        self._handshakes(m, s, fsm)
        return m

    def _count(self, name, amount=1):
        """The statement that adds ``amount`` to counter ``name``."""
        counter = getattr(self, name)
        return counter.eq(counter + amount)

    def _reject(self, s, code_name):
        """The statements that record a rejected operation: error code ``code_name``, one more in ``errors``."""
        return [s.error.eq(beats.ERROR_CODES[code_name]), self._count("errors")]

    def _memories(self, m, s):
        """The OU index table, the column table, the input buffer and the accumulators (``Memory``, synchronous
        read: 1 cycle), with one write and one read port each."""
        p = self.p
        m.submodules.ou_table = ou_table = Memory(shape=beats.ou_entry_layout(p), depth=p.ou_table_depth, init=[])
        m.submodules.col_table = col_table = Memory(shape=beats.col_word_layout(p), depth=p.n_xbars * p.xbar_cols,
                                                    init=[])
        m.submodules.x_buf = x_buf = Memory(shape=unsigned(p.input_bits), depth=p.input_capacity, init=[])
        m.submodules.acc = acc = Memory(shape=signed(p.acc_bits), depth=p.output_capacity, init=[])
        ou_w, ou_r = ou_table.write_port(), ou_table.read_port()
        col_w, col_r = col_table.write_port(), col_table.read_port()
        x_w, x_r = x_buf.write_port(), x_buf.read_port()
        acc_w, acc_r = acc.write_port(), acc.read_port()
        s.ou_w, s.ou_r, s.col_w, s.col_r = ou_w, ou_r, col_w, col_r
        s.x_w, s.x_r, s.acc_w, s.acc_r = x_w, x_r, acc_w, acc_r

    def _status_registers(self, m, s):
        """The loaded tables' header (``n_ous``, K, N), the load's progress and the status (tables valid, last error
        code) on the ports. Registers; the status outputs follow them combinationally."""
        w = beats.widths(self.p)
        s.n_ous = Signal(w.n_ous)
        s.n_inputs = Signal(w.n_inputs)
        s.n_outputs = Signal(w.n_outputs)
        s.ou_count = Signal(w.n_ous)
        s.tables_valid = Signal()
        s.loading = Signal()          # a HEADER was accepted and no END yet
        s.load_err = Signal()         # this load already reported an error: ignore its remaining beats
        s.error = Signal(4)
        m.d.comb += [self.tables_valid.eq(s.tables_valid), self.error.eq(s.error)]

    def _plane_rom(self, m, s):
        """The input planes as a small ROM: ``plane`` → its shift, its bit mask and whether it is subtracted.
        Combinational (0 cycles)."""
        p = self.p
        s.plane = Signal(range(max(2, len(self.planes))))
        s.plane_shift = Signal(range(p.input_bits))
        s.plane_mask = Signal(self.dac_bits)
        s.plane_neg = Signal()
        # A chain of Muxes, not a Switch: continuous assignments are evaluated at time 0 by Icarus, a process
        # reading only `plane` (a register that keeps its initial value) would stay X until `plane` changes.
        shift_v, mask_v, neg_v = self.planes[0][0], (1 << self.planes[0][1]) - 1, int(self.planes[0][2])
        for i, (shift, width, negative) in enumerate(self.planes[1:], start=1):
            shift_v = Mux(s.plane == i, shift, shift_v)
            mask_v = Mux(s.plane == i, (1 << width) - 1, mask_v)
            neg_v = Mux(s.plane == i, int(negative), neg_v)
        m.d.comb += [s.plane_shift.eq(shift_v), s.plane_mask.eq(mask_v), s.plane_neg.eq(neg_v)]
        s.last_plane = len(self.planes) - 1
        s.dense_ous = p.n_xbars * p.row_groups * p.col_groups

    def _table_checks(self, m, s):
        """The range checks of the offered table beat (``hdr_ok``, ``ou_ok``, ``col_ok``) and the column entry's
        table address. Combinational (0 cycles)."""
        p, ou_rows, ou_cols = self.p, self.p.ou_rows, self.p.ou_cols
        tb = self.tables.payload
        hdr, ou, col = tb.body.header, tb.body.ou, tb.body.col
        s.hdr_ok = ((hdr.n_ous <= p.ou_table_depth) & (hdr.n_inputs >= 1) & (hdr.n_inputs <= p.input_capacity)
                    & (hdr.n_outputs >= 1) & (hdr.n_outputs <= p.output_capacity))
        ou_checks = [ou.xbar < p.n_xbars, ou.row_group < p.row_groups, ou.col_group < p.col_groups,
                     s.ou_count < s.n_ous]
        first_row = Signal(range(p.row_groups * ou_rows + 1))
        first_col = Signal(range(p.col_groups * ou_cols + 1))
        m.d.comb += [first_row.eq(ou.row_group * ou_rows), first_col.eq(ou.col_group * ou_cols)]
        for r in range(ou_rows):
            index = ou.inputs[r]
            absent = first_row + r >= p.xbar_rows
            ou_checks.append((index >= -1) & ((index < 0) | ((index < s.n_inputs) & ~absent)))
        for c in range(ou_cols):
            ou_checks.append(~ou.mask[c] | (first_col + c < p.xbar_cols))
        s.ou_ok = Cat(*ou_checks).all()
        s.col_ok = ((col.xbar < p.n_xbars) & (col.col < p.xbar_cols) & (col.output >= -1)
                    & (col.output < s.n_outputs) & (col.shift < p.weight_bits))
        s.col_addr = Signal(range(p.n_xbars * p.xbar_cols))
        m.d.comb += s.col_addr.eq(col.xbar * p.xbar_cols + col.col)

    def _working_registers(self, m, s):
        """The registers of the operation in progress: the cell being programmed, the input count, the output
        index, the current OU (entry, gathered wordline drive, ADC codes, column) and its column word, and the
        table write strobes. Registers; the OU column's table address is combinational."""
        p, ou_rows, ou_cols = self.p, self.p.ou_rows, self.p.ou_cols
        s.cell = Signal(beats.program_layout(p))
        s.iters = Signal(range(self.max_iters + 1))
        s.count_in = Signal(range(p.input_capacity + 2))   # saturates at capacity + 1 ("too long")
        s.j = Signal(range(p.output_capacity + 1))
        s.ou_index = Signal(range(p.ou_table_depth + 1))
        s.entry = Signal(beats.ou_entry_layout(p))
        s.row = Signal(range(ou_rows + 1))
        s.drive = Signal(ou_rows * self.dac_bits)
        s.codes = Signal(ou_cols * self.adc_bits)
        s.c = Signal(range(ou_cols))
        s.colw = Signal(beats.col_word_layout(p))
        s.ou_col_addr = Signal(range(p.n_xbars * p.xbar_cols + ou_cols))
        m.d.comb += s.ou_col_addr.eq(s.entry.xbar * p.xbar_cols + s.entry.col_group * ou_cols + s.c)
        # the two strobes' names are the tracer's ("$signal" for the first): kept so the Verilog stays the same
        ou_write, col_write = Signal(), Signal()
        s.ou_write, s.col_write = ou_write, col_write

    def _idle(self, m, s):
        """IDLE: take a program beat (a bad cell is rejected), else a table beat, else start an input vector.
        1 cycle per accepted beat."""
        p = self.p
        cell_ok = (self.program.payload.xbar < p.n_xbars) & (self.program.payload.row < p.xbar_rows) \
            & (self.program.payload.col < p.xbar_cols)
        with m.State("IDLE"):
            with m.If(self.program.valid):
                m.d.sync += [s.cell.eq(self.program.payload), s.iters.eq(0)]
                with m.If(cell_ok):
                    m.next = "P_WRITE"
                with m.Else():
                    m.d.sync += self._reject(s, "BAD_CELL")
            with m.Elif(self.tables.valid):
                self._table_load(m, s)
            with m.Elif(self.inputs.valid):
                m.d.sync += s.count_in.eq(0)
                m.next = "IN"

    def _table_load(self, m, s):
        """A table beat (in IDLE): HEADER opens a load, OU and COL entries are checked and written, END validates
        the tables; the first error of a load is reported and its remaining beats ignored. 1 cycle."""
        tb = self.tables.payload
        hdr = tb.body.header
        with m.Switch(tb.kind):
            with m.Case(beats.TABLE_HEADER):
                m.d.sync += [s.tables_valid.eq(0), s.loading.eq(1), s.load_err.eq(~s.hdr_ok), s.ou_count.eq(0),
                             s.n_ous.eq(hdr.n_ous), s.n_inputs.eq(hdr.n_inputs), s.n_outputs.eq(hdr.n_outputs),
                             s.error.eq(0)]
                with m.If(~s.hdr_ok):
                    m.d.sync += self._reject(s, "BAD_HEADER")
            with m.Case(beats.TABLE_OU):
                self._table_entry(m, s, s.ou_ok, s.ou_write, "BAD_OU", written=[s.ou_count.eq(s.ou_count + 1)])
            with m.Case(beats.TABLE_COL):
                self._table_entry(m, s, s.col_ok, s.col_write, "BAD_COL")
            with m.Case(beats.TABLE_END):
                m.d.sync += s.loading.eq(0)
                with m.If(~s.loading | (~s.load_err & (s.ou_count != s.n_ous))):
                    m.d.sync += self._reject(s, "BAD_SEQUENCE")
                with m.Elif(~s.load_err):
                    m.d.sync += s.tables_valid.eq(1)

    def _table_entry(self, m, s, ok, write, code_name, written=()):
        """An OU or COL entry: out of sequence without an open load; else, unless the load has failed, written
        (strobe ``write``, then the statements ``written``) when ``ok`` or the load's first error ``code_name``."""
        with m.If(~s.loading):
            m.d.sync += self._reject(s, "BAD_SEQUENCE")
        with m.Elif(~s.load_err):
            with m.If(ok):
                m.d.comb += write.eq(1)
                m.d.sync += written
            with m.Else():
                m.d.sync += [s.load_err.eq(1), *self._reject(s, code_name)]

    def _program(self, m, s):
        """Write-verify of one cell: WRITE → READ_CELL → compare the response → rewrite, up to ``max_iters``
        writes, then log the cell as a fault. 4 cycles per write (crossbar latency 2), 1 more to log."""
        cmd, rsp, cell = self.xbar_cmd, self.xbar_rsp, s.cell
        with m.State("P_WRITE"):
            m.d.comb += [cmd.payload.op.eq(Op.WRITE), cmd.payload.xbar.eq(cell.xbar),
                         cmd.payload.row.eq(cell.row), cmd.payload.col.eq(cell.col),
                         cmd.payload.level.eq(cell.level)]
            with m.If(cmd.ready):
                m.d.sync += [s.iters.eq(s.iters + 1), self._count("verify_iters")]
                m.next = "P_READ"
        with m.State("P_READ"):
            m.d.comb += [cmd.payload.op.eq(Op.READ_CELL), cmd.payload.xbar.eq(cell.xbar),
                         cmd.payload.row.eq(cell.row), cmd.payload.col.eq(cell.col)]
            with m.If(cmd.ready):
                m.next = "P_CHECK"
        with m.State("P_CHECK"):
            with m.If(rsp.valid):
                with m.If(rsp.payload[:self.p.cell_bits] == cell.level):
                    m.d.sync += self._count("cells_programmed")
                    m.next = "IDLE"
                with m.Elif(s.iters < self.max_iters):
                    m.next = "P_WRITE"
                with m.Else():
                    m.next = "P_FAULT"
        with m.State("P_FAULT"):
            m.d.comb += [self.fault.payload.xbar.eq(cell.xbar),
                         self.fault.payload.row.eq(cell.row), self.fault.payload.col.eq(cell.col)]
            with m.If(self.fault.ready):
                m.d.sync += self._count("cells_programmed")
                m.next = "IDLE"

    def _input_vector(self, m, s):
        """IN: the vector's input beats into the buffer, checked against the tables and K at ``last``; CLEAR: the N
        accumulators to zero. 1 cycle per input beat, then N cycles."""
        with m.State("IN"):
            with m.If(self.inputs.valid):
                with m.If(s.count_in <= self.p.input_capacity):
                    m.d.sync += s.count_in.eq(s.count_in + 1)
                with m.If(self.inputs.payload.last):
                    with m.If(~s.tables_valid):
                        m.d.sync += self._reject(s, "NO_TABLES")
                        m.next = "IDLE"
                    with m.Elif(s.count_in + 1 != s.n_inputs):
                        m.d.sync += self._reject(s, "BAD_VECTOR")
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [s.j.eq(0), s.plane.eq(0)]
                        m.next = "CLEAR"
        with m.State("CLEAR"):
            m.d.comb += [s.acc_w.addr.eq(s.j), s.acc_w.data.eq(0)]
            m.d.sync += s.j.eq(s.j + 1)
            with m.If(s.j + 1 == s.n_outputs):
                m.next = "PLANE"

    def _ou_walk(self, m, s):
        """The OU schedule walk, per input plane (PLANE, 1 cycle) and scheduled OU: FETCH and LATCH its table entry
        (2), GATHER its wordlines' input chunks (``ou_rows + 1``), ISSUE READ_OU and take the ADC codes (RSP):
        3 cycles with crossbar latency 2."""
        cmd, rsp, entry, ou_rows, dac_bits = self.xbar_cmd, self.xbar_rsp, s.entry, self.p.ou_rows, self.dac_bits
        with m.State("PLANE"):
            m.d.sync += [s.ou_index.eq(0), self._count("skipped_ous", s.dense_ous - s.n_ous)]
            with m.If(s.n_ous != 0):
                m.next = "FETCH"
            with m.Elif(s.plane == s.last_plane):
                m.d.sync += s.j.eq(0)
                m.next = "OUT_READ"
            with m.Else():
                m.d.sync += s.plane.eq(s.plane + 1)
        with m.State("FETCH"):
            m.d.comb += s.ou_r.addr.eq(s.ou_index)
            m.next = "LATCH"
        with m.State("LATCH"):
            m.d.sync += [entry.eq(s.ou_r.data), s.row.eq(0)]
            m.next = "GATHER"
        with m.State("GATHER"):
            # Row r's input index goes to the buffer in cycle r; its chunk is captured in cycle r + 1 and
            # shifted in from the top, so after ou_rows captures wordline 0 sits at bits [0, dac_bits).
            index = entry.inputs[s.row]
            m.d.comb += s.x_r.addr.eq(index.as_unsigned())
            prev_undriven = Signal()
            with m.If(s.row != 0):
                chunk = Mux(prev_undriven, 0, (s.x_r.data >> s.plane_shift) & s.plane_mask)
                m.d.sync += s.drive.eq(Cat(s.drive[dac_bits:], chunk[:dac_bits]))
            m.d.sync += [s.row.eq(s.row + 1), prev_undriven.eq(index < 0)]
            with m.If(s.row == ou_rows):
                m.next = "ISSUE"
        with m.State("ISSUE"):
            m.d.comb += [cmd.payload.op.eq(Op.READ_OU), cmd.payload.xbar.eq(entry.xbar),
                         cmd.payload.row.eq(entry.row_group), cmd.payload.col.eq(entry.col_group),
                         cmd.payload.drive.as_value().eq(s.drive)]
            with m.If(cmd.ready):
                conversions = sum(entry.mask[i] for i in range(self.p.ou_cols))
                m.d.sync += [self._count("ou_activations"), self._count("adc_conversions", conversions), s.c.eq(0)]
                m.next = "RSP"
        with m.State("RSP"):
            with m.If(rsp.valid):
                m.d.sync += s.codes.eq(rsp.payload[:self.p.ou_cols * self.adc_bits])
                m.next = "COL"

    def _shift_add(self, m, s):
        """Per OU column: COL skips an unconverted one (1 cycle) or reads its column entry, COL_DATA checks the
        entry's output and reads its accumulator, ADD adds ``±code << (plane shift + column shift)`` (3 cycles);
        an unused column aborts the MVM."""
        p, adc_bits, entry, colw, col_r, acc_r = self.p, self.adc_bits, s.entry, s.colw, s.col_r, s.acc_r
        with m.State("COL"):
            with m.If(entry.mask.bit_select(s.c, 1)):
                m.d.comb += col_r.addr.eq(s.ou_col_addr)
                m.next = "COL_DATA"
            with m.Else():
                self._next_column(m, s)
        with m.State("COL_DATA"):
            m.d.sync += colw.eq(col_r.data)
            m.d.comb += acc_r.addr.eq(col_r.data.output.as_unsigned())
            with m.If((col_r.data.output < 0) | (col_r.data.output >= s.n_outputs)):
                m.d.sync += self._reject(s, "UNUSED_COLUMN")
                m.next = "IDLE"
            with m.Else():
                m.next = "ADD"
        with m.State("ADD"):
            code = s.codes.word_select(s.c, adc_bits)
            term = Signal(signed(adc_bits + p.input_bits + p.weight_bits + 1))
            m.d.comb += term.eq(code << (s.plane_shift + colw.shift))
            m.d.comb += [s.acc_w.addr.eq(colw.output.as_unsigned()),
                         s.acc_w.data.eq(Mux(colw.negative ^ s.plane_neg, acc_r.data - term, acc_r.data + term))]
            self._next_column(m, s)

    def _next_column(self, m, s):
        """After column c of the current OU: the next column, the next OU, the next plane, or the output."""
        with m.If(s.c == self.p.ou_cols - 1):
            with m.If(s.ou_index + 1 == s.n_ous):
                with m.If(s.plane == s.last_plane):
                    m.d.sync += s.j.eq(0)
                    m.next = "OUT_READ"
                with m.Else():
                    m.d.sync += s.plane.eq(s.plane + 1)
                    m.next = "PLANE"
            with m.Else():
                m.d.sync += s.ou_index.eq(s.ou_index + 1)
                m.next = "FETCH"
        with m.Else():
            m.d.sync += s.c.eq(s.c + 1)
            m.next = "COL"

    def _output_drain(self, m, s):
        """The output drain: OUT_READ addresses y[j], OUT_SEND offers it as an output beat (``last`` on y[N-1]).
        2 cycles per output."""
        j, acc_r = s.j, s.acc_r
        with m.State("OUT_READ"):
            m.d.comb += acc_r.addr.eq(j)
            m.next = "OUT_SEND"
        with m.State("OUT_SEND"):
            m.d.comb += [acc_r.addr.eq(j), self.outputs.payload.value.eq(acc_r.data),
                         self.outputs.payload.last.eq(j + 1 == s.n_outputs)]
            with m.If(self.outputs.ready):
                with m.If(j + 1 == s.n_outputs):
                    m.d.sync += self._count("mvms")
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
                    m.next = "OUT_READ"

    def _handshakes(self, m, s, fsm):
        """Every handshake, status output and memory write enable as a function of the state. Combinational."""
        # They are assigned outside the FSM's processes: they become continuous assignments, which Icarus evaluates
        # at time 0 (a process that reads only registers would leave them X until the first state change, and the
        # crossbar would latch that X).
        def ongoing(*names):
            return Cat(*(fsm.ongoing(name) for name in names)).any()
        tb = self.tables.payload
        ou, col = tb.body.ou, tb.body.col
        cmd, rsp = self.xbar_cmd, self.xbar_rsp
        m.d.comb += [
            self.busy.eq(~ongoing("IDLE")),
            self.program.ready.eq(ongoing("IDLE") & self.program.valid),
            self.tables.ready.eq(ongoing("IDLE") & ~self.program.valid & self.tables.valid),
            cmd.valid.eq(ongoing("P_WRITE", "P_READ", "ISSUE")),
            rsp.ready.eq(ongoing("P_CHECK", "RSP")),
            self.fault.valid.eq(ongoing("P_FAULT")),
            self.inputs.ready.eq(ongoing("IN")),
            self.outputs.valid.eq(ongoing("OUT_SEND")),
            s.x_w.addr.eq(s.count_in), s.x_w.data.eq(self.inputs.payload.value),
            s.x_w.en.eq(ongoing("IN") & self.inputs.valid & (s.count_in < self.p.input_capacity)),
            s.acc_w.en.eq(ongoing("CLEAR", "ADD")),
            s.ou_w.addr.eq(s.ou_count), s.ou_w.data.eq(ou), s.ou_w.en.eq(s.ou_write),
            s.col_w.addr.eq(s.col_addr), s.col_w.data.output.eq(col.output), s.col_w.data.shift.eq(col.shift),
            s.col_w.data.negative.eq(col.negative), s.col_w.en.eq(s.col_write),
        ]
