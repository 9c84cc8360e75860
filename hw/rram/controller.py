"""The RRAM tile controller: write-verify programming, table loading with range checks, and the MVM sequencer.

It drives one :class:`hw.rram.crossbar.CrossbarModel` through its command/response streams and owns the tile's
tables and buffers (``amaranth.lib.memory.Memory``): the OU index table, the column table, the input buffer and
the output accumulators. Every beat and table layout comes from :mod:`hw.rram.beats`; the order of operations is
the one :mod:`hw.formats.mapping` specifies and :mod:`sim.rram.golden` mirrors.
"""

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
        p, w = self.p, beats.widths(self.p)
        ou_rows, ou_cols, dac_bits, adc_bits = p.ou_rows, p.ou_cols, self.dac_bits, self.adc_bits

        # ---- memories ---------------------------------------------------------------------------------------
        m.submodules.ou_table = ou_table = Memory(shape=beats.ou_entry_layout(p), depth=p.ou_table_depth, init=[])
        m.submodules.col_table = col_table = Memory(shape=beats.col_word_layout(p), depth=p.n_xbars * p.xbar_cols,
                                                    init=[])
        m.submodules.x_buf = x_buf = Memory(shape=unsigned(p.input_bits), depth=p.input_capacity, init=[])
        m.submodules.acc = acc = Memory(shape=signed(p.acc_bits), depth=p.output_capacity, init=[])
        ou_w, ou_r = ou_table.write_port(), ou_table.read_port()
        col_w, col_r = col_table.write_port(), col_table.read_port()
        x_w, x_r = x_buf.write_port(), x_buf.read_port()
        acc_w, acc_r = acc.write_port(), acc.read_port()

        # ---- status, table registers and counters -----------------------------------------------------------
        n_ous = Signal(w.n_ous)
        n_inputs = Signal(w.n_inputs)
        n_outputs = Signal(w.n_outputs)
        ou_count = Signal(w.n_ous)
        tables_valid = Signal()
        loading = Signal()          # a HEADER was accepted and no END yet
        load_err = Signal()         # this load already reported an error: ignore its remaining beats
        error = Signal(4)
        m.d.comb += [self.tables_valid.eq(tables_valid), self.error.eq(error)]

        counters = {name: getattr(self, name) for name in COUNTERS}

        def count(name, amount=1):
            return counters[name].eq(counters[name] + amount)

        def reject(code_name):
            return [error.eq(beats.ERROR_CODES[code_name]), count("errors")]

        # ---- input planes as a small ROM (shift, mask, negative) ----------------------------------------------
        plane = Signal(range(max(2, len(self.planes))))
        plane_shift = Signal(range(p.input_bits))
        plane_mask = Signal(dac_bits)
        plane_neg = Signal()
        # A chain of Muxes, not a Switch: continuous assignments are evaluated at time 0 by Icarus, a process
        # reading only `plane` (a register that keeps its initial value) would stay X until `plane` changes.
        shift_v, mask_v, neg_v = self.planes[0][0], (1 << self.planes[0][1]) - 1, int(self.planes[0][2])
        for i, (shift, width, negative) in enumerate(self.planes[1:], start=1):
            shift_v = Mux(plane == i, shift, shift_v)
            mask_v = Mux(plane == i, (1 << width) - 1, mask_v)
            neg_v = Mux(plane == i, int(negative), neg_v)
        m.d.comb += [plane_shift.eq(shift_v), plane_mask.eq(mask_v), plane_neg.eq(neg_v)]
        last_plane = len(self.planes) - 1
        dense_ous = p.n_xbars * p.row_groups * p.col_groups

        # ---- table beat checks (combinational on the offered beat) ---------------------------------------------
        tb = self.tables.payload
        hdr, ou, col = tb.body.header, tb.body.ou, tb.body.col
        hdr_ok = ((hdr.n_ous <= p.ou_table_depth) & (hdr.n_inputs >= 1) & (hdr.n_inputs <= p.input_capacity)
                  & (hdr.n_outputs >= 1) & (hdr.n_outputs <= p.output_capacity))
        ou_checks = [ou.xbar < p.n_xbars, ou.row_group < p.row_groups, ou.col_group < p.col_groups,
                     ou_count < n_ous]
        first_row = Signal(range(p.row_groups * ou_rows + 1))
        first_col = Signal(range(p.col_groups * ou_cols + 1))
        m.d.comb += [first_row.eq(ou.row_group * ou_rows), first_col.eq(ou.col_group * ou_cols)]
        for r in range(ou_rows):
            index = ou.inputs[r]
            absent = first_row + r >= p.xbar_rows
            ou_checks.append((index >= -1) & ((index < 0) | ((index < n_inputs) & ~absent)))
        for c in range(ou_cols):
            ou_checks.append(~ou.mask[c] | (first_col + c < p.xbar_cols))
        ou_ok = Cat(*ou_checks).all()
        col_ok = ((col.xbar < p.n_xbars) & (col.col < p.xbar_cols) & (col.output >= -1) & (col.output < n_outputs)
                  & (col.shift < p.weight_bits))
        col_addr = Signal(range(p.n_xbars * p.xbar_cols))
        m.d.comb += col_addr.eq(col.xbar * p.xbar_cols + col.col)

        # ---- working registers --------------------------------------------------------------------------------
        cell = Signal(beats.program_layout(p))
        iters = Signal(range(self.max_iters + 1))
        count_in = Signal(range(p.input_capacity + 2))   # saturates at capacity + 1 ("too long")
        j = Signal(range(p.output_capacity + 1))
        ou_index = Signal(range(p.ou_table_depth + 1))
        entry = Signal(beats.ou_entry_layout(p))
        row = Signal(range(ou_rows + 1))
        drive = Signal(ou_rows * dac_bits)
        codes = Signal(ou_cols * adc_bits)
        c = Signal(range(ou_cols))
        colw = Signal(beats.col_word_layout(p))
        ou_col_addr = Signal(range(p.n_xbars * p.xbar_cols + ou_cols))
        m.d.comb += ou_col_addr.eq(entry.xbar * p.xbar_cols + entry.col_group * ou_cols + c)

        cmd, rsp = self.xbar_cmd, self.xbar_rsp
        ou_write, col_write = Signal(), Signal()
        cell_ok = (self.program.payload.xbar < p.n_xbars) & (self.program.payload.row < p.xbar_rows) \
            & (self.program.payload.col < p.xbar_cols)

        def next_column():
            """After column c of the current OU: the next column, the next OU, the next plane, or the output."""
            with m.If(c == ou_cols - 1):
                with m.If(ou_index + 1 == n_ous):
                    with m.If(plane == last_plane):
                        m.d.sync += j.eq(0)
                        m.next = "OUT_READ"
                    with m.Else():
                        m.d.sync += plane.eq(plane + 1)
                        m.next = "PLANE"
                with m.Else():
                    m.d.sync += ou_index.eq(ou_index + 1)
                    m.next = "FETCH"
            with m.Else():
                m.d.sync += c.eq(c + 1)
                m.next = "COL"

        with m.FSM(name="ctl") as fsm:

            with m.State("IDLE"):
                with m.If(self.program.valid):
                    m.d.sync += [cell.eq(self.program.payload), iters.eq(0)]
                    with m.If(cell_ok):
                        m.next = "P_WRITE"
                    with m.Else():
                        m.d.sync += reject("BAD_CELL")
                with m.Elif(self.tables.valid):
                    with m.Switch(tb.kind):
                        with m.Case(beats.TABLE_HEADER):
                            m.d.sync += [tables_valid.eq(0), loading.eq(1), load_err.eq(~hdr_ok), ou_count.eq(0),
                                         n_ous.eq(hdr.n_ous), n_inputs.eq(hdr.n_inputs), n_outputs.eq(hdr.n_outputs),
                                         error.eq(0)]
                            with m.If(~hdr_ok):
                                m.d.sync += reject("BAD_HEADER")
                        with m.Case(beats.TABLE_OU):
                            with m.If(~loading):
                                m.d.sync += reject("BAD_SEQUENCE")
                            with m.Elif(~load_err):
                                with m.If(ou_ok):
                                    m.d.comb += ou_write.eq(1)
                                    m.d.sync += ou_count.eq(ou_count + 1)
                                with m.Else():
                                    m.d.sync += [load_err.eq(1), *reject("BAD_OU")]
                        with m.Case(beats.TABLE_COL):
                            with m.If(~loading):
                                m.d.sync += reject("BAD_SEQUENCE")
                            with m.Elif(~load_err):
                                with m.If(col_ok):
                                    m.d.comb += col_write.eq(1)
                                with m.Else():
                                    m.d.sync += [load_err.eq(1), *reject("BAD_COL")]
                        with m.Case(beats.TABLE_END):
                            m.d.sync += loading.eq(0)
                            with m.If(~loading | (~load_err & (ou_count != n_ous))):
                                m.d.sync += reject("BAD_SEQUENCE")
                            with m.Elif(~load_err):
                                m.d.sync += tables_valid.eq(1)
                with m.Elif(self.inputs.valid):
                    m.d.sync += count_in.eq(0)
                    m.next = "IN"

            # ---- programming: write → read back → compare → rewrite, up to max_iters writes -------------------
            with m.State("P_WRITE"):
                m.d.comb += [cmd.payload.op.eq(Op.WRITE), cmd.payload.xbar.eq(cell.xbar),
                             cmd.payload.row.eq(cell.row), cmd.payload.col.eq(cell.col),
                             cmd.payload.level.eq(cell.level)]
                with m.If(cmd.ready):
                    m.d.sync += [iters.eq(iters + 1), count("verify_iters")]
                    m.next = "P_READ"
            with m.State("P_READ"):
                m.d.comb += [cmd.payload.op.eq(Op.READ_CELL), cmd.payload.xbar.eq(cell.xbar),
                             cmd.payload.row.eq(cell.row), cmd.payload.col.eq(cell.col)]
                with m.If(cmd.ready):
                    m.next = "P_CHECK"
            with m.State("P_CHECK"):
                with m.If(rsp.valid):
                    with m.If(rsp.payload[:p.cell_bits] == cell.level):
                        m.d.sync += count("cells_programmed")
                        m.next = "IDLE"
                    with m.Elif(iters < self.max_iters):
                        m.next = "P_WRITE"
                    with m.Else():
                        m.next = "P_FAULT"
            with m.State("P_FAULT"):
                m.d.comb += [self.fault.payload.xbar.eq(cell.xbar),
                             self.fault.payload.row.eq(cell.row), self.fault.payload.col.eq(cell.col)]
                with m.If(self.fault.ready):
                    m.d.sync += count("cells_programmed")
                    m.next = "IDLE"

            # ---- MVM: input vector → clear → planes × OUs → outputs --------------------------------------------
            with m.State("IN"):
                with m.If(self.inputs.valid):
                    with m.If(count_in <= p.input_capacity):
                        m.d.sync += count_in.eq(count_in + 1)
                    with m.If(self.inputs.payload.last):
                        with m.If(~tables_valid):
                            m.d.sync += reject("NO_TABLES")
                            m.next = "IDLE"
                        with m.Elif(count_in + 1 != n_inputs):
                            m.d.sync += reject("BAD_VECTOR")
                            m.next = "IDLE"
                        with m.Else():
                            m.d.sync += [j.eq(0), plane.eq(0)]
                            m.next = "CLEAR"
            with m.State("CLEAR"):
                m.d.comb += [acc_w.addr.eq(j), acc_w.data.eq(0)]
                m.d.sync += j.eq(j + 1)
                with m.If(j + 1 == n_outputs):
                    m.next = "PLANE"
            with m.State("PLANE"):
                m.d.sync += [ou_index.eq(0), count("skipped_ous", dense_ous - n_ous)]
                with m.If(n_ous != 0):
                    m.next = "FETCH"
                with m.Elif(plane == last_plane):
                    m.d.sync += j.eq(0)
                    m.next = "OUT_READ"
                with m.Else():
                    m.d.sync += plane.eq(plane + 1)
            with m.State("FETCH"):
                m.d.comb += ou_r.addr.eq(ou_index)
                m.next = "LATCH"
            with m.State("LATCH"):
                m.d.sync += [entry.eq(ou_r.data), row.eq(0)]
                m.next = "GATHER"
            with m.State("GATHER"):
                # Row r's input index goes to the buffer in cycle r; its chunk is captured in cycle r + 1 and
                # shifted in from the top, so after ou_rows captures wordline 0 sits at bits [0, dac_bits).
                index = entry.inputs[row]
                m.d.comb += x_r.addr.eq(index.as_unsigned())
                prev_undriven = Signal()
                with m.If(row != 0):
                    chunk = Mux(prev_undriven, 0, (x_r.data >> plane_shift) & plane_mask)
                    m.d.sync += drive.eq(Cat(drive[dac_bits:], chunk[:dac_bits]))
                m.d.sync += [row.eq(row + 1), prev_undriven.eq(index < 0)]
                with m.If(row == ou_rows):
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += [cmd.payload.op.eq(Op.READ_OU), cmd.payload.xbar.eq(entry.xbar),
                             cmd.payload.row.eq(entry.row_group), cmd.payload.col.eq(entry.col_group),
                             cmd.payload.drive.as_value().eq(drive)]
                with m.If(cmd.ready):
                    conversions = sum(entry.mask[i] for i in range(ou_cols))
                    m.d.sync += [count("ou_activations"), count("adc_conversions", conversions), c.eq(0)]
                    m.next = "RSP"
            with m.State("RSP"):
                with m.If(rsp.valid):
                    m.d.sync += codes.eq(rsp.payload[:ou_cols * adc_bits])
                    m.next = "COL"
            with m.State("COL"):
                with m.If(entry.mask.bit_select(c, 1)):
                    m.d.comb += col_r.addr.eq(ou_col_addr)
                    m.next = "COL_DATA"
                with m.Else():
                    next_column()
            with m.State("COL_DATA"):
                m.d.sync += colw.eq(col_r.data)
                m.d.comb += acc_r.addr.eq(col_r.data.output.as_unsigned())
                with m.If((col_r.data.output < 0) | (col_r.data.output >= n_outputs)):
                    m.d.sync += reject("UNUSED_COLUMN")
                    m.next = "IDLE"
                with m.Else():
                    m.next = "ADD"
            with m.State("ADD"):
                code = codes.word_select(c, adc_bits)
                term = Signal(signed(adc_bits + p.input_bits + p.weight_bits + 1))
                m.d.comb += term.eq(code << (plane_shift + colw.shift))
                m.d.comb += [acc_w.addr.eq(colw.output.as_unsigned()),
                             acc_w.data.eq(Mux(colw.negative ^ plane_neg, acc_r.data - term, acc_r.data + term))]
                next_column()

            with m.State("OUT_READ"):
                m.d.comb += acc_r.addr.eq(j)
                m.next = "OUT_SEND"
            with m.State("OUT_SEND"):
                m.d.comb += [acc_r.addr.eq(j), self.outputs.payload.value.eq(acc_r.data),
                             self.outputs.payload.last.eq(j + 1 == n_outputs)]
                with m.If(self.outputs.ready):
                    with m.If(j + 1 == n_outputs):
                        m.d.sync += count("mvms")
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += j.eq(j + 1)
                        m.next = "OUT_READ"

        # Handshakes and write enables are plain functions of the state, assigned outside the FSM's processes:
        # they become continuous assignments, which Icarus evaluates at time 0 (a process that reads only
        # registers would leave them X until the first state change, and the crossbar would latch that X).
        def ongoing(*names):
            return Cat(*(fsm.ongoing(name) for name in names)).any()
        m.d.comb += [
            self.busy.eq(~ongoing("IDLE")),
            self.program.ready.eq(ongoing("IDLE") & self.program.valid),
            self.tables.ready.eq(ongoing("IDLE") & ~self.program.valid & self.tables.valid),
            cmd.valid.eq(ongoing("P_WRITE", "P_READ", "ISSUE")),
            rsp.ready.eq(ongoing("P_CHECK", "RSP")),
            self.fault.valid.eq(ongoing("P_FAULT")),
            self.inputs.ready.eq(ongoing("IN")),
            self.outputs.valid.eq(ongoing("OUT_SEND")),
            x_w.addr.eq(count_in), x_w.data.eq(self.inputs.payload.value),
            x_w.en.eq(ongoing("IN") & self.inputs.valid & (count_in < p.input_capacity)),
            acc_w.en.eq(ongoing("CLEAR", "ADD")),
            ou_w.addr.eq(ou_count), ou_w.data.eq(ou), ou_w.en.eq(ou_write),
            col_w.addr.eq(col_addr), col_w.data.output.eq(col.output), col_w.data.shift.eq(col.shift),
            col_w.data.negative.eq(col.negative), col_w.en.eq(col_write),
        ]
        return m
