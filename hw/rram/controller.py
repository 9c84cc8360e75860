"""The RRAM tile controller: write-verify programming, table loading with range checks, and the MVM engine.

The MVM engine runs one :class:`hw.rram.lane.CrossbarLane` per crossbar, all at once, behind a double-buffered input
buffer and double-buffered accumulators: vector v+1 loads while vector v computes, and vector v's outputs drain
(the lanes' partial sums added) while vector v+1 computes. Every beat and table layout comes from
:mod:`hw.rram.beats`; what an MVM computes is what :mod:`hw.formats.mapping` specifies and :mod:`sim.rram.golden`
mirrors; the cycle counts are :mod:`gen.rram.perf`'s.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.checks import check_bool, check_int
from hw.rram import beats
from hw.rram.crossbar import Op, command_layout, response_bits
from hw.rram.lane import CrossbarLane
from hw.rram.steps import ConversionSteps
from hw.formats.mapping import input_planes

__all__ = ["RramController", "COUNTERS"]

# Counters the controller keeps (the fault counts live in the fault log); see beats.REGISTERS.
COUNTERS = ("errors", "ou_activations", "adc_conversions", "skipped_ous", "verify_iters", "cells_programmed", "mvms",
            "stalls") + tuple(f"busy{x}" for x in range(beats.BUSY_REGISTERS))


def pick(values, index):
    """``values[index]`` as a chain of Muxes (index out of range: ``values[0]``). Not ``Array``: Amaranth emits an
    Array read as a process, which Icarus evaluates only when an input changes, so one indexed by a register that
    keeps its initial value stays X."""
    out = values[0]
    for i, value in enumerate(values[1:], start=1):
        out = Mux(index == i, value, out)
    return out


def set_at(m, flags, index, value):
    """In the current context of ``m``: register ``flags[index]`` (a list of 1-bit signals) ← ``value``; the other
    flags are not assigned (so another part may set them in the same cycle)."""
    for i, flag in enumerate(flags):
        with m.If(index == i):
            m.d.sync += flag.eq(value)


class RramController(wiring.Component):
    """Controller of one RRAM tile (keyword-only parameters, all checked).

    Parameters
    ----------
    n_xbars, xbar_rows, xbar_cols, cell_bits, ou_rows, ou_cols, dac_bits, adc_bits : int
        The crossbars' shape (each crossbar is a one-crossbar :class:`hw.rram.crossbar.CrossbarModel`).
    adcs : int
        ADCs per crossbar (``adcs_per_xbar``): converted columns per cycle of an OU activation; 1 … ``ou_cols``.
    weight_bits : int
        Column slice shifts are ``0 … weight_bits - 1``; 2 … 16.
    input_bits : int, input_signed : bool
        Input element width and signedness; the input planes are ``hw.formats.mapping.input_planes``.
    ou_table_depth, input_capacity, output_capacity : int
        OU entries per schedule, the longest K and the longest N.
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
    xbar_cmd : Out(stream) array, xbar_rsp : In(stream) array
        To and from crossbar x (element x; the command's ``xbar`` field is 0).
    fault : Out(stream)
        The address of each cell that failed write-verify (to the fault log).
    busy, tables_valid : Out(1); error : Out(4)
        Status: an operation is in progress; a complete, error-free table load is active; last error code.
    errors, ou_activations, adc_conversions, skipped_ous, verify_iters, cells_programmed, mvms, stalls,
    busy0 … busy3 : Out(counter_bits)
        Counters, see ``beats.REGISTERS``.

    Timing: ``gen/rram/perf.py`` (docs/rram.md, "Timing"). A program beat takes ``1 + 4·writes`` cycles, 1 more
    when the cell fails; a table beat 1 cycle, its checks' results and writes taking effect 1 cycle after its
    handshake (``TABLE_LATENCY``); an MVM ``K + max_x W_x + N + MVM_OVERHEAD`` from its first input beat to its
    last output beat with ``W_x`` the conversion-stage cycles of crossbar x.
    """

    def __init__(self, *, n_xbars, xbar_rows, xbar_cols, cell_bits, ou_rows, ou_cols, dac_bits, adc_bits,
                 weight_bits, input_bits, input_signed, ou_table_depth, input_capacity, output_capacity, acc_bits,
                 max_iters, counter_bits, adcs=None):
        check_int("n_xbars", n_xbars, 1, 64)
        check_int("xbar_rows", xbar_rows, 2, 1024)
        check_int("xbar_cols", xbar_cols, 2, 1024)
        check_int("cell_bits", cell_bits, 1, 4)
        check_int("ou_rows", ou_rows, 1, xbar_rows)
        check_int("ou_cols", ou_cols, 1, xbar_cols)
        check_int("dac_bits", dac_bits, 1, 2)
        check_int("adc_bits", adc_bits, 1, 16)
        adcs = ou_cols if adcs is None else check_int("adcs", adcs, 1, ou_cols)
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
        self.adcs = adcs
        self.planes = input_planes(input_bits, input_signed, dac_bits)
        self.depth = beats.lane_depth(self.p)
        self.lanes = [CrossbarLane(p=self.p, dac_bits=dac_bits, adc_bits=adc_bits, adcs=adcs, lane_depth=self.depth)
                      for _ in range(n_xbars)]
        cmd = command_layout(n_xbars=1, xbar_rows=xbar_rows, xbar_cols=xbar_cols, cell_bits=cell_bits,
                             ou_rows=ou_rows, dac_bits=dac_bits)
        rsp = unsigned(response_bits(cell_bits=cell_bits, ou_cols=ou_cols, adc_bits=adc_bits))
        members = {
            "program": In(stream.Signature(beats.program_layout(self.p))),
            "tables": In(stream.Signature(beats.table_layout(self.p))),
            "inputs": In(stream.Signature(beats.input_layout(self.p))),
            "outputs": Out(stream.Signature(beats.output_layout(self.p))),
            "xbar_cmd": Out(stream.Signature(cmd)).array(n_xbars),
            "xbar_rsp": In(stream.Signature(rsp)).array(n_xbars),
            "fault": Out(stream.Signature(beats.cell_addr_layout(self.p))),
            "busy": Out(1), "tables_valid": Out(1), "error": Out(4),
        }
        members.update({name: Out(counter_bits) for name in COUNTERS})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        s = SimpleNamespace()       # what the parts share: memory ports, registers, table checks (filled in order)
        for x, lane in enumerate(self.lanes):
            m.submodules[f"lane{x}"] = lane
        self._status_registers(m, s)
        self._input_buffer(m, s)
        self._table_checks(m, s)
        self._sequencing_registers(m, s)
        with m.FSM(name="ctl") as fsm:
            self._idle(m, s)
            self._program(m, s)
        self._program_handshakes(m, s, fsm)
        self._table_load(m, s)
        self._loader(m, s)
        self._compute(m, s)
        self._drain(m, s)
        self._crossbar_ports(m, s, fsm)
        self._counters(m, s)
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE") | ~s.quiet | s.tr.valid)
        return m

    def _count(self, name, amount=1):
        """The statement that adds ``amount`` to counter ``name``."""
        counter = getattr(self, name)
        return counter.eq(counter + amount)

    def _reject(self, s, code_name):
        """The statements that record a rejected operation: error code ``code_name``, one more in ``errors``."""
        return [s.error.eq(beats.ERROR_CODES[code_name]), self._count("errors")]

    def _status_registers(self, m, s):
        """The loaded tables' header (``n_ous``, K, N), the load's progress (entries per crossbar) and the status
        (tables valid, last error code) on the ports. Registers."""
        w = beats.widths(self.p)
        s.n_ous = Signal(w.n_ous)
        s.n_inputs = Signal(w.n_inputs)
        s.n_outputs = Signal(w.n_outputs)
        s.ou_count = Signal(w.n_ous)
        s.lane_n = [Signal(range(self.depth + 1), name=f"lane_n{x}") for x in range(self.p.n_xbars)]
        s.tables_valid = Signal()
        s.loading = Signal()          # a HEADER was accepted and no END yet
        s.load_err = Signal()         # this load already reported an error: ignore its remaining beats
        s.error = Signal(4)
        m.d.comb += [self.tables_valid.eq(s.tables_valid), self.error.eq(s.error)]
        for x, lane in enumerate(self.lanes):
            m.d.comb += lane.n_ous.eq(s.lane_n[x])

    def _input_buffer(self, m, s):
        """The input buffer: two halves of ``input_capacity`` words, written by the loader; one copy per wordline of
        every lane (``n_xbars · ou_rows`` one-read-port memories, all written alike), so every wordline of an OU gets
        its input in the same cycle. Synchronous read: 1 cycle."""
        # Separate copies rather than one memory with n_xbars·ou_rows read ports: Yosys' memory mapping would
        # replicate it the same way, but runs out of memory doing so on the larger presets.
        p = self.p
        bits = self.lanes[0].x_bits       # half h's words start at h · 2**(bits - 1)
        s.x_w = SimpleNamespace(addr=Signal(bits), data=Signal(p.input_bits), en=Signal())
        for x, lane in enumerate(self.lanes):
            for r in range(p.ou_rows):
                copy = Memory(shape=unsigned(p.input_bits), depth=1 << bits, init=[])
                m.submodules[f"x_buf{x}_{r}"] = copy
                w, port = copy.write_port(), copy.read_port()
                m.d.comb += [w.addr.eq(s.x_w.addr), w.data.eq(s.x_w.data), w.en.eq(s.x_w.en),
                             port.addr.eq(lane.x_addr[r]), port.en.eq(lane.x_en), lane.x_data[r].eq(port.data)]

    def _table_checks(self, m, s):
        """Stage 0 of a table beat, at its handshake: the range checks of the offered beat against the load's state
        (``hdr_ok``; for an OU entry ``ou_ok`` (BAD_OU), ``route_ok`` (BAD_ROUTE), ``used_ok`` (UNUSED_COLUMN)),
        registered with the beat for stage 1 (:meth:`_table_load`). Combinational checks, 1 register stage."""
        p, ou_rows, ou_cols = self.p, self.p.ou_rows, self.p.ou_cols
        tb = self.tables.payload
        hdr, ou = tb.body.header, tb.body.ou
        hdr_ok = ((hdr.n_ous <= p.ou_table_depth) & (hdr.n_inputs >= 1) & (hdr.n_inputs <= p.input_capacity)
                  & (hdr.n_outputs >= 1) & (hdr.n_outputs <= p.output_capacity))
        addr = pick(s.lane_n, ou.xbar)
        ou_checks = [ou.xbar < p.n_xbars, ou.row_group < p.row_groups, ou.col_group < p.col_groups,
                     s.ou_count < s.n_ous, addr < self.depth]
        first_row = Signal(range(p.row_groups * ou_rows + 1))
        first_col = Signal(range(p.col_groups * ou_cols + 1))
        m.d.comb += [first_row.eq(ou.row_group * ou_rows), first_col.eq(ou.col_group * ou_cols)]
        for r in range(ou_rows):
            index = ou.inputs[r]
            absent = first_row + r >= p.xbar_rows
            ou_checks.append((index >= -1) & ((index < 0) | ((index < s.n_inputs) & ~absent)))
        for c in range(ou_cols):
            ou_checks.append(~ou.mask[c] | (first_col + c < p.xbar_cols))
        ou_ok = Cat(*ou_checks).all()
        route_ok = Cat(*[(ou.route[c].output >= -1) & (ou.route[c].output < s.n_outputs)
                         & (ou.route[c].shift < p.weight_bits) for c in range(ou_cols)]).all()
        used_ok = Cat(*[~ou.mask[c] | (ou.route[c].output >= 0) for c in range(ou_cols)]).all()
        # Stage 1 acts on the registered beat, so that no check feeds an enable or a queue write in its cycle. The
        # state the checks read (K, N, n_ous, the entry counts, whether a load is open) is updated here, at the
        # handshake, so the next beat's checks see it; what depends on a check (the error, load_err, the writes)
        # is stage 1's.
        r = s.tr = SimpleNamespace(valid=Signal(), beat=Signal.like(tb), hdr_ok=Signal(), ou_ok=Signal(),
                                   route_ok=Signal(), ok=Signal(), open=Signal(), count_ok=Signal(),
                                   addr=Signal.like(addr, name="tr_addr"))
        take = Signal()
        m.d.comb += take.eq(self.tables.valid & self.tables.ready)
        m.d.sync += r.valid.eq(take)
        with m.If(take):
            m.d.sync += [r.beat.eq(tb), r.hdr_ok.eq(hdr_ok), r.ou_ok.eq(ou_ok), r.route_ok.eq(route_ok),
                         r.ok.eq(ou_ok & route_ok & used_ok), r.open.eq(s.loading),
                         r.count_ok.eq(s.ou_count == s.n_ous), r.addr.eq(addr)]
            with m.Switch(tb.kind):
                with m.Case(beats.TABLE_HEADER):
                    m.d.sync += [s.loading.eq(1), s.ou_count.eq(0), s.n_ous.eq(hdr.n_ous),
                                 s.n_inputs.eq(hdr.n_inputs), s.n_outputs.eq(hdr.n_outputs)]
                    m.d.sync += [n.eq(0) for n in s.lane_n]
                with m.Case(beats.TABLE_OU):
                    # Every entry of an open load counts, good or not: after a bad one the load has failed and
                    # its counts are never used (the next HEADER clears them); before it, all entries were good.
                    with m.If(s.loading):
                        m.d.sync += s.ou_count.eq(s.ou_count + 1)
                        for x in range(self.p.n_xbars):
                            with m.If(ou.xbar == x):
                                m.d.sync += s.lane_n[x].eq(s.lane_n[x] + 1)
                with m.Case(beats.TABLE_END):
                    m.d.sync += s.loading.eq(0)
        self._table_writes(m, s)

    def _table_writes(self, m, s):
        """Stage 1's writes of a good OU entry: into its crossbar's queue at ``tr.addr``, and its conversion steps
        (:class:`hw.rram.steps.ConversionSteps`) into the lane's step memory ``LATENCY`` = 4 cycles later."""
        p, r = self.p, s.tr
        ou = r.beat.body.ou
        s.ou_write = Signal()
        for x, lane in enumerate(self.lanes):
            m.d.comb += [lane.q_we.eq(s.ou_write & (ou.xbar == x)), lane.q_waddr.eq(r.addr),
                         lane.q_wdata.eq(ou)]
        # The steps reach the lane before an MVM can read them: with the last OU beat's handshake at edge t, its
        # stage-1 write at t+1 and its steps at t+5; END comes at t+1 or later, stage 1 holds it at t+2, the loader
        # sees a vector at t+3, its first (and, K = 1, last) beat at t+4, the lanes start at t+5 and read their first
        # entry at t+6 (tests: steps_just_in_time).
        addr_bits = len(self.lanes[0].q_waddr)
        m.submodules.steps = steps = ConversionSteps(ou_cols=p.ou_cols, adcs=self.adcs,
                                                     output_bits=len(ou.route[0].output),
                                                     tag_bits=addr_bits + len(ou.xbar))
        m.d.comb += [steps.valid.eq(s.ou_write), steps.mask.eq(ou.mask),
                     steps.tag.eq(Cat(r.addr[:addr_bits], ou.xbar))]
        for c in range(p.ou_cols):
            m.d.comb += steps.outputs[c].eq(ou.route[c].output)
        for x, lane in enumerate(self.lanes):
            m.d.comb += [lane.st_we.eq(steps.o_valid & (steps.o_tag[addr_bits:] == x)),
                         lane.st_waddr.eq(steps.o_tag[:addr_bits]), lane.st_wdata.step.eq(steps.step),
                         lane.st_wdata.last.eq(steps.last)]

    def _sequencing_registers(self, m, s):
        """Who holds which half: ``full[h]`` (input half h holds a vector not yet computed), ``acc_busy[h]``
        (accumulator half h in use until drained), ``acc_ready[h]`` (computed, waiting to drain), and the halves
        the loader, the lanes and the drain work on. ``quiet``: nothing of an MVM in flight."""
        s.full = [Signal(name=f"full{h}") for h in range(2)]
        s.acc_busy = [Signal(name=f"acc_busy{h}") for h in range(2)]
        s.acc_ready = [Signal(name=f"acc_ready{h}") for h in range(2)]
        s.lh, s.ch, s.dh = Signal(), Signal(), Signal()
        s.loader_idle = Signal()
        s.ctl_idle_now = Signal()
        s.p_dense = self.p.n_xbars * self.p.row_groups * self.p.col_groups
        s.quiet = s.loader_idle & ~Cat(*s.full, *s.acc_busy).any()
        s.cell = Signal(beats.program_layout(self.p))
        s.iters = Signal(range(self.max_iters + 1))

    def _idle(self, m, s):
        """IDLE: while no MVM is in flight, take a program beat (a bad cell is rejected; not while a table beat is in
        stage 1), else a table beat (each cycle). 1 cycle per accepted beat."""
        p = self.p
        cell_ok = (self.program.payload.xbar < p.n_xbars) & (self.program.payload.row < p.xbar_rows) \
            & (self.program.payload.col < p.xbar_cols)
        with m.State("IDLE"):
            # not while a table beat is in its stage 1 (its error and a BAD_CELL would both count in one cycle)
            with m.If(s.quiet & ~s.tr.valid & self.program.valid):
                m.d.sync += [s.cell.eq(self.program.payload), s.iters.eq(0)]
                with m.If(cell_ok):
                    m.next = "P_WRITE"
                with m.Else():
                    m.d.sync += self._reject(s, "BAD_CELL")
        m.d.comb += [self.program.ready.eq(s.ctl_idle_now & s.quiet & ~s.tr.valid & self.program.valid),
                     self.tables.ready.eq(s.ctl_idle_now & s.quiet & ~self.program.valid & self.tables.valid)]

    def _table_load(self, m, s):
        """Stage 1 of a table beat, the cycle after its handshake, on the registered beat and check results: HEADER
        opens a load, a good OU entry is written into its crossbar's queue, END validates the tables; the first
        error of a load is reported and its remaining beats ignored; a beat of the reserved kind is rejected and
        otherwise ignored. 1 cycle; one beat per cycle."""
        r = s.tr
        with m.If(r.valid):
            with m.Switch(r.beat.kind):
                with m.Case(beats.TABLE_HEADER):
                    m.d.sync += [s.tables_valid.eq(0), s.load_err.eq(~r.hdr_ok), s.error.eq(0)]
                    with m.If(~r.hdr_ok):
                        m.d.sync += self._reject(s, "BAD_HEADER")
                with m.Case(beats.TABLE_OU):
                    with m.If(~r.open):
                        m.d.sync += self._reject(s, "BAD_SEQUENCE")
                    with m.Elif(~s.load_err):
                        with m.If(r.ok):
                            m.d.comb += s.ou_write.eq(1)
                        with m.Else():
                            m.d.sync += s.load_err.eq(1)
                            with m.If(~r.ou_ok):
                                m.d.sync += self._reject(s, "BAD_OU")
                            with m.Elif(~r.route_ok):
                                m.d.sync += self._reject(s, "BAD_ROUTE")
                            with m.Else():
                                m.d.sync += self._reject(s, "UNUSED_COLUMN")
                with m.Case(beats.TABLE_RESERVED):
                    m.d.sync += self._reject(s, "BAD_SEQUENCE")
                with m.Case(beats.TABLE_END):
                    with m.If(~r.open | (~s.load_err & ~r.count_ok)):
                        m.d.sync += self._reject(s, "BAD_SEQUENCE")
                    with m.Elif(~s.load_err):
                        m.d.sync += s.tables_valid.eq(1)

    def _program(self, m, s):
        """Write-verify of one cell on its crossbar: WRITE → READ_CELL → compare the response → rewrite, up to
        ``max_iters`` writes, then log the cell as a fault. 4 cycles per write (crossbar latency 2), 1 more to log."""
        cell = s.cell
        rsp_valid = pick([r.valid for r in self.xbar_rsp], cell.xbar)
        rsp_level = pick([r.payload[:self.p.cell_bits] for r in self.xbar_rsp], cell.xbar)
        cmd_ready = pick([c.ready for c in self.xbar_cmd], cell.xbar)
        with m.State("P_WRITE"):
            with m.If(cmd_ready):
                m.d.sync += [s.iters.eq(s.iters + 1), self._count("verify_iters")]
                m.next = "P_READ"
        with m.State("P_READ"):
            with m.If(cmd_ready):
                m.next = "P_CHECK"
        with m.State("P_CHECK"):
            with m.If(rsp_valid):
                with m.If(rsp_level == cell.level):
                    m.d.sync += self._count("cells_programmed")
                    m.next = "IDLE"
                with m.Elif(s.iters < self.max_iters):
                    m.next = "P_WRITE"
                with m.Else():
                    m.next = "P_FAULT"
        with m.State("P_FAULT"):
            with m.If(self.fault.ready):
                m.d.sync += self._count("cells_programmed")
                m.next = "IDLE"

    def _program_handshakes(self, m, s, fsm):
        """Write-verify's command, response and fault handshakes as functions of the state. Combinational."""
        # Continuous assignments outside the FSM's process: Icarus evaluates them at time 0 (a process reading only
        # registers would leave them X until the first state change, and a crossbar would latch that X).
        cell = s.cell
        s.p_cmd_valid, s.p_op, s.p_rsp_ready = Signal(), Signal(Op), Signal()
        m.d.comb += [
            s.ctl_idle_now.eq(fsm.ongoing("IDLE")),
            s.p_cmd_valid.eq(fsm.ongoing("P_WRITE") | fsm.ongoing("P_READ")),
            s.p_op.eq(Mux(fsm.ongoing("P_WRITE"), Op.WRITE, Op.READ_CELL)),
            s.p_rsp_ready.eq(fsm.ongoing("P_CHECK")),
            self.fault.valid.eq(fsm.ongoing("P_FAULT")), self.fault.payload.xbar.eq(cell.xbar),
            self.fault.payload.row.eq(cell.row), self.fault.payload.col.eq(cell.col),
        ]

    def _loader(self, m, s):
        """The input loader: a vector's beats into input half ``lh`` (free: ``~full[lh]``), checked at ``last``
        against the tables and K; a good vector marks the half full. It starts a vector only when the controller
        is idle and no program or table beat waits (they have priority); 1 cycle from seeing the first beat to
        taking it, then 1 cycle per beat. Not while a table beat is in stage 1 (its tables are not yet valid, its
        entry's conversion steps not yet in the lane)."""
        p = self.p
        count = Signal(range(p.input_capacity + 2))     # saturates at capacity + 1 ("too long")
        inputs = self.inputs
        with m.FSM(name="loader") as fsm:
            with m.State("L_IDLE"):
                with m.If(inputs.valid & s.ctl_idle_now & ~self.program.valid & ~self.tables.valid
                          & ~s.tr.valid & ~pick(s.full, s.lh)):
                    m.d.sync += count.eq(0)
                    m.next = "L_IN"
            with m.State("L_IN"):
                with m.If(inputs.valid):
                    with m.If(count <= p.input_capacity):
                        m.d.sync += count.eq(count + 1)
                    with m.If(inputs.payload.last):
                        m.next = "L_IDLE"
                        with m.If(~s.tables_valid):
                            m.d.sync += self._reject(s, "NO_TABLES")
                        with m.Elif(count + 1 != s.n_inputs):
                            m.d.sync += self._reject(s, "BAD_VECTOR")
                        with m.Else():
                            m.d.sync += s.lh.eq(~s.lh)
                            set_at(m, s.full, s.lh, 1)
        m.d.comb += [s.loader_idle.eq(fsm.ongoing("L_IDLE")), inputs.ready.eq(fsm.ongoing("L_IN")),
                     s.x_w.addr.eq(Cat(count[:len(s.x_w.addr) - 1], s.lh)), s.x_w.data.eq(inputs.payload.value),
                     s.x_w.en.eq(fsm.ongoing("L_IN") & inputs.valid & (count < p.input_capacity))]

    def _compute(self, m, s):
        """Starts the lanes on the next full input half once its accumulator half is free; when every lane is idle
        again the vector is computed: its input half is free and its accumulator half ready to drain."""
        run = Signal()
        start = ~run & pick(s.full, s.ch) & ~pick(s.acc_busy, s.ch)
        all_idle = Cat(*[lane.idle for lane in self.lanes]).all()
        for lane in self.lanes:
            m.d.comb += [lane.start.eq(start), lane.half.eq(s.ch)]
        with m.If(start):
            set_at(m, s.acc_busy, s.ch, 1)
            m.d.sync += [run.eq(1),
                         self._count("skipped_ous", (s.p_dense - s.n_ous) * len(self.planes))]
        with m.Elif(run & all_idle):
            set_at(m, s.full, s.ch, 0)
            set_at(m, s.acc_ready, s.ch, 1)
            m.d.sync += [run.eq(0), s.ch.eq(~s.ch)]

    def _drain(self, m, s):
        """Output drain of half ``dh``: y[j] = Σ lanes' partial sums, one per cycle, read 1 cycle ahead and held
        under backpressure; after y[N-1] the half is forgotten and freed."""
        p = self.p
        run, reading = Signal(), Signal()
        j = Signal(range(max(2, p.output_capacity + 1)))
        o_valid, o_last = Signal(), Signal()
        out = self.outputs
        adv = ~o_valid | out.ready
        issue = run & reading & adv
        done = out.valid & out.ready & o_last
        for lane in self.lanes:
            m.d.comb += [lane.d_half.eq(s.dh), lane.d_addr.eq(j), lane.d_en.eq(adv), lane.d_clear.eq(done)]
        with m.If(~run & pick(s.acc_ready, s.dh)):
            m.d.sync += [run.eq(1), reading.eq(1), j.eq(0)]
        with m.If(issue):
            m.d.sync += j.eq(j + 1)
            with m.If(j + 1 == s.n_outputs):
                m.d.sync += reading.eq(0)
        with m.If(adv):
            m.d.sync += [o_valid.eq(issue), o_last.eq(j + 1 == s.n_outputs)]
        m.d.comb += [out.valid.eq(o_valid), out.payload.last.eq(o_last),
                     out.payload.value.eq(sum(lane.d_data for lane in self.lanes))]
        with m.If(done):
            set_at(m, s.acc_ready, s.dh, 0)
            set_at(m, s.acc_busy, s.dh, 0)
            m.d.sync += [run.eq(0), s.dh.eq(~s.dh),
                         self._count("mvms")]

    def _crossbar_ports(self, m, s, fsm):
        """Crossbar x's command stream carries write-verify's commands while programming (cell on crossbar x) and
        lane x's READ_OU otherwise; its responses go to write-verify or to the lane likewise."""
        cell = s.cell
        for x, (lane, cmd, rsp) in enumerate(zip(self.lanes, self.xbar_cmd, self.xbar_rsp)):
            mine = s.p_cmd_valid & (cell.xbar == x)
            p_cmd = Signal.like(cmd.payload, name=f"p_cmd{x}")
            m.d.comb += [p_cmd.op.eq(s.p_op), p_cmd.row.eq(cell.row), p_cmd.col.eq(cell.col),
                         p_cmd.level.eq(cell.level),
                         cmd.valid.eq(mine | lane.cmd.valid),
                         cmd.payload.eq(Mux(mine, p_cmd.as_value(), lane.cmd.payload.as_value()))]
            m.d.comb += [lane.cmd.ready.eq(cmd.ready & ~mine), lane.rsp.valid.eq(rsp.valid),
                         lane.rsp.payload.eq(rsp.payload),
                         rsp.ready.eq(Mux(s.p_rsp_ready & (cell.xbar == x), 1, lane.rsp.ready))]

    def _counters(self, m, s):
        """Per-cycle sums of the lanes' strobes into the counters."""
        m.d.sync += [
            self._count("ou_activations", sum(lane.take for lane in self.lanes)),
            self._count("adc_conversions", sum(lane.conversions for lane in self.lanes)),
            self._count("stalls", sum(lane.stall for lane in self.lanes)),
        ]
        for x, lane in enumerate(self.lanes[:beats.BUSY_REGISTERS]):
            m.d.sync += self._count(f"busy{x}", lane.step)
