"""One crossbar lane of the RRAM tile: its OU queue, the pipelined OU walk, shift-and-add and its accumulators.

The tile has one lane per crossbar and all lanes run at once (docs/rram.md, "Architecture"). A lane walks its own
part of the schedule (the OU entries of its crossbar, in schedule order) plane by plane and issues one ``READ_OU``
per cycle; while OU o's codes are shifted and added, OU o+1's wordlines are already driven.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.formats.mapping import accumulator_banks, input_planes
from hw.rram import beats
from hw.rram.bank_adders import BankAdders
from hw.rram.crossbar import Op, command_layout, response_bits

__all__ = ["CrossbarLane"]


class CrossbarLane(wiring.Component):
    """The pipeline of one crossbar (keyword-only parameters, all checked; ``p`` is :func:`hw.rram.beats.params`).

    Stages per OU activation (1 cycle each unless stalled): A reads the OU entry and its conversion steps from the
    lane's queue (block RAM); B registers them (R); R reads the ``ou_rows`` indexed inputs from the input buffer
    (one read port per wordline); C offers ``READ_OU`` with the plane's chunk of every driven wordline; the crossbar
    answers 2 cycles later; the conversion stage (H) takes the codes and, in its k-th cycle, passes the columns
    whose step is k (:class:`hw.rram.steps.ConversionSteps`: per bank the columns of one output, ``adcs`` per
    group; a column routed elsewhere waits for a later cycle: the stall rule) to the adder pipeline
    (:class:`hw.rram.bank_adders.BankAdders`, 3 cycles: the sum of ``±code << shift`` per bank); the accumulator
    stage adds ``sum << plane shift`` to the output's accumulator (read-modify-write, transparent, so consecutive
    cycles may add to the same output). An OU activation occupies the conversion stage ``conv(o)`` cycles
    (:func:`hw.formats.mapping.conversion_cycles`); the stages before it stall only while it is busy. From
    ``start`` to the last accumulator write: ``LANE_FILL + W`` cycles (``gen.rram.perf.LANE_FILL`` = 10), ``W`` the
    conversion-stage cycles of the walk.

    The accumulators are ``banks = accumulator_banks(adcs)`` memories (output j in bank ``j mod banks``, so one
    conversion cycle can add to ``banks`` outputs), each of two halves so that a vector's outputs drain from one
    half while the next vector accumulates into the other. A half is cleared by forgetting it: a
    ``touched`` bit per output and half says whether the word holds this vector's sum (0 is read otherwise).

    Members
    -------
    start : In(1)
        Pulse: walk ``n_ous`` entries × every plane, reading inputs and accumulating in half ``half``.
    half : In(1)
        Input-buffer and accumulator half of the running vector (held during the walk).
    n_ous : In
        This lane's entries in the queue.
    idle : Out(1)
        Nothing in flight: the last accumulation of the walk is written.
    q_we, q_waddr, q_wdata : In
        Queue write port (table loading).
    st_we, st_waddr, st_wdata : In
        Step memory write port: the conversion steps of queue entry ``st_waddr`` (``ConversionSteps``' result).
    x_addr : Out(array of ou_rows addresses); x_en : Out(1); x_data : In(array of ou_rows inputs)
        The lane's input-buffer read ports (synchronous: data 1 cycle after an enabled address).
    cmd : Out(stream), rsp : In(stream)
        To and from this lane's crossbar (``READ_OU`` only; the controller multiplexes write-verify in).
    d_half, d_addr, d_en : In; d_data : Out(signed acc_bits)
        Drain read port: the lane's partial sum of output ``d_addr`` of half ``d_half``, 1 cycle after an enabled
        address (0 when not touched).
    d_clear : In(1)
        Forget half ``d_half`` (after its last output left).
    take, conversions, step, stall : Out
        Counter strobes, registered (1 cycle late): an OU activation entered the conversion stage (with
        ``conversions`` converted columns, else 0); a conversion-stage cycle; one of them beyond ``max(1,
        ceil(converted / adcs))`` (a stall).
    """

    def __init__(self, *, p, dac_bits, adc_bits, adcs, lane_depth):
        check_int("dac_bits", dac_bits, 1, 2)
        check_int("adc_bits", adc_bits, 1, 16)
        check_int("adcs", adcs, 1, p.ou_cols)
        check_int("lane_depth", lane_depth, 1, 65536)
        self.p, self.dac_bits, self.adc_bits, self.adcs, self.depth = p, dac_bits, adc_bits, adcs, lane_depth
        self.banks = accumulator_banks(adcs)
        self.bank_bits = self.banks.bit_length() - 1
        self.planes = input_planes(p.input_bits, p.input_signed, dac_bits)
        self.cmd_layout = command_layout(n_xbars=1, xbar_rows=p.xbar_rows, xbar_cols=p.xbar_cols,
                                         cell_bits=p.cell_bits, ou_rows=p.ou_rows, dac_bits=dac_bits)
        self.x_bits = max(1, (p.input_capacity - 1).bit_length()) + 1     # half, then the word
        self.steps_layout = data.StructLayout({
            "step": data.ArrayLayout(unsigned(max(1, (p.ou_cols - 1).bit_length())), p.ou_cols),
            "last": unsigned(max(1, (p.ou_cols - 1).bit_length()))})
        super().__init__({
            "start": In(1), "half": In(1), "n_ous": In(range(lane_depth + 1)), "idle": Out(1),
            "q_we": In(1), "q_waddr": In(range(max(2, lane_depth))), "q_wdata": In(beats.ou_entry_layout(p)),
            "st_we": In(1), "st_waddr": In(range(max(2, lane_depth))), "st_wdata": In(self.steps_layout),
            "x_addr": Out(data.ArrayLayout(unsigned(self.x_bits), p.ou_rows)), "x_en": Out(1),
            "x_data": In(data.ArrayLayout(unsigned(p.input_bits), p.ou_rows)),
            "cmd": Out(stream.Signature(self.cmd_layout)),
            "rsp": In(stream.Signature(unsigned(response_bits(cell_bits=p.cell_bits, ou_cols=p.ou_cols,
                                                              adc_bits=adc_bits)))),
            "d_half": In(1), "d_addr": In(range(max(2, p.output_capacity))), "d_en": In(1),
            "d_data": Out(signed(p.acc_bits)), "d_clear": In(1),
            "take": Out(1), "conversions": Out(range(p.ou_cols + 1)), "step": Out(1), "stall": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        s = SimpleNamespace()
        self._plane_rom(m, s)
        self._front(m, s)
        self._convert(m, s)
        self._adders_busy(m, s)
        self._accumulate(m, s)
        m.d.comb += self.idle.eq(~Cat(s.f_run, s.b_valid, s.c_valid, s.meta.r_rdy, s.h_valid, s.adders_busy,
                                      s.a_valid).any())
        return m

    def _plane_rom(self, m, s):
        """``plane`` → shift, chunk mask, negative, for the three places that need them. Combinational."""
        def rom(plane, name):
            shift, mask, neg = Signal(range(self.p.input_bits), name=f"{name}_shift"), \
                Signal(self.dac_bits, name=f"{name}_mask"), Signal(name=f"{name}_neg")
            sv, mv, nv = self.planes[0][0], (1 << self.planes[0][1]) - 1, int(self.planes[0][2])
            for i, (sh, width, negative) in enumerate(self.planes[1:], start=1):
                sv, mv, nv = Mux(plane == i, sh, sv), Mux(plane == i, (1 << width) - 1, mv), \
                    Mux(plane == i, int(negative), nv)
            m.d.comb += [shift.eq(sv), mask.eq(mv), neg.eq(nv)]
            return shift, mask, neg
        s.rom = rom
        s.plane_bits = max(1, (len(self.planes) - 1).bit_length())

    def _front(self, m, s):
        """Stages A (queue read), B (the entry arrives), R (entry registered; input reads), C (READ_OU offered; its
        routing pushed into the metadata FIFO in the handshake cycle). They advance together unless C's command
        waits."""
        p = self.p
        m.submodules.queue = queue = Memory(shape=beats.ou_entry_layout(p), depth=max(2, self.depth), init=[])
        q_w, q_r = queue.write_port(), queue.read_port()
        m.d.comb += [q_w.en.eq(self.q_we), q_w.addr.eq(self.q_waddr), q_w.data.eq(self.q_wdata)]
        # the entries' conversion steps, written by the controller a few cycles after the entry (ConversionSteps)
        m.submodules.steps = steps = Memory(shape=self.steps_layout, depth=max(2, self.depth), init=[])
        st_w, st_r = steps.write_port(), steps.read_port()
        m.d.comb += [st_w.en.eq(self.st_we), st_w.addr.eq(self.st_waddr), st_w.data.eq(self.st_wdata)]
        s.steps_layout = self.steps_layout
        meta_layout = data.StructLayout({"plane": unsigned(s.plane_bits), "mask": unsigned(p.ou_cols),
                                         "route": data.ArrayLayout(beats.route_layout(p), p.ou_cols),
                                         "steps": self.steps_layout})
        m.submodules.meta = meta = SyncFIFO(width=meta_layout.size, depth=4)
        s.meta, s.meta_layout = meta, meta_layout
        f_run, f_plane, f_idx = Signal(), Signal(s.plane_bits), Signal(range(max(2, self.depth)))
        b_valid, b_plane, c_valid, c_plane = Signal(), Signal(s.plane_bits), Signal(), Signal(s.plane_bits)
        r_valid, r_plane = Signal(), Signal(s.plane_bits)
        r_entry, r_steps = Signal(beats.ou_entry_layout(p)), Signal(self.steps_layout)
        c_entry, c_steps = Signal(beats.ou_entry_layout(p)), Signal(self.steps_layout)
        cmd = self.cmd
        fire = cmd.valid & cmd.ready
        adv = ~c_valid | fire
        issue = f_run & adv
        m.d.comb += [q_r.addr.eq(f_idx), q_r.en.eq(adv), st_r.addr.eq(f_idx), st_r.en.eq(adv), self.x_en.eq(adv)]
        with m.If(self.start):
            m.d.sync += [f_run.eq(self.n_ous != 0), f_idx.eq(0), f_plane.eq(0)]
        with m.Elif(issue):
            with m.If(f_idx + 1 == self.n_ous):
                m.d.sync += [f_idx.eq(0), f_plane.eq(f_plane + 1)]
                with m.If(f_plane == len(self.planes) - 1):
                    m.d.sync += f_run.eq(0)
            with m.Else():
                m.d.sync += f_idx.eq(f_idx + 1)
        with m.If(adv):
            # R registers the queue's block-RAM output (5.8 ns clock-to-out on ECP5) before the input addresses
            m.d.sync += [b_valid.eq(issue), b_plane.eq(f_plane), r_valid.eq(b_valid), r_plane.eq(b_plane),
                         r_entry.eq(q_r.data), r_steps.eq(st_r.data), c_valid.eq(r_valid), c_plane.eq(r_plane),
                         c_entry.eq(r_entry), c_steps.eq(r_steps)]
        for r in range(p.ou_rows):
            index = r_entry.inputs[r]
            # an undriven wordline (-1) reads word 0 of the half (never out of range: no X); its chunk is forced
            # to 0. Half h's words start at h · 2**(x_bits - 1): no adder between the queue and the buffer.
            m.d.comb += self.x_addr[r].eq(Cat(Mux(index < 0, 0, index.as_unsigned())[:self.x_bits - 1], self.half))
        shift, mask, _ = s.rom(c_plane, "c")
        m.d.comb += [cmd.valid.eq(c_valid & meta.w_rdy), cmd.payload.op.eq(Op.READ_OU),
                     cmd.payload.row.eq(c_entry.row_group), cmd.payload.col.eq(c_entry.col_group)]
        for r in range(p.ou_rows):
            chunk = (self.x_data[r] >> shift) & mask
            m.d.comb += cmd.payload.drive[r].eq(Mux(c_entry.inputs[r] < 0, 0, chunk))
        meta_in = meta_layout(meta.w_data)
        m.d.comb += [meta.w_en.eq(fire), meta_in.plane.eq(c_plane), meta_in.mask.eq(c_entry.mask),
                     meta_in.route.eq(c_entry.route), meta_in.steps.eq(c_steps)]
        s.f_run, s.b_valid, s.c_valid = f_run, Cat(b_valid, r_valid).any(), c_valid

    def _convert(self, m, s):
        """The conversion stage (H): holds one OU activation's codes; in its k-th cycle each accumulator bank takes
        the columns whose precomputed step (:class:`hw.rram.steps.ConversionSteps`) is k — the columns of one
        output (the stall rule). The next activation enters in the cycle of step ``last``. The selection and the
        columns' terms ``±code << shift`` (sign: the column's and the plane's) go to the adder trees
        (:class:`hw.rram.bank_adders.BankAdders`, 3 cycles)."""
        p, oc, adc, nb, lb = self.p, self.p.ou_cols, self.adc_bits, self.banks, self.bank_bits
        meta_out = s.meta_layout(s.meta.r_data)
        h_valid, mask, codes = Signal(), Signal(oc), Signal(oc * adc)
        route = Signal(data.ArrayLayout(beats.route_layout(p), oc))
        steps = Signal(s.steps_layout)
        in_bank = [Signal(oc, name=f"in_bank{b}") for b in range(nb)]
        h_plane = Signal(s.plane_bits)
        k, h_ideal = Signal(range(oc + 1)), Signal(range(oc + 2))
        last = k == steps.last
        # only a response to this lane's READ_OU has its routing in the FIFO (write-verify's READ_CELL has none)
        ready = s.meta.r_rdy & (~h_valid | last)
        take = self.rsp.valid & ready
        m.d.comb += [self.rsp.ready.eq(ready), s.meta.r_en.eq(take)]
        popcount = sum((meta_out.mask[c] for c in range(oc)), Const(0, range(oc + 1)))
        ideal = sum(((popcount > j * self.adcs) for j in range(1, -(-oc // self.adcs))), Const(1, range(oc + 2)))
        with m.If(take):
            m.d.sync += [h_valid.eq(1), mask.eq(meta_out.mask), codes.eq(self.rsp.payload[:oc * adc]),
                         route.eq(meta_out.route), steps.eq(meta_out.steps), h_plane.eq(meta_out.plane),
                         k.eq(0), h_ideal.eq(ideal)]
            for b in range(nb):
                m.d.sync += in_bank[b].eq(Cat(*[(meta_out.route[c].output.as_unsigned()[:lb] == b) if lb else 1
                                                for c in range(oc)]))
        with m.Elif(h_valid):
            m.d.sync += k.eq(k + 1)
            with m.If(last):
                m.d.sync += h_valid.eq(0)
        # the counter strobes leave through a register: off the conversion loop's critical path (the counters lag
        # by one cycle, long before the controller is idle again)
        m.d.sync += [self.take.eq(take), self.conversions.eq(Mux(take, popcount, 0)), self.step.eq(h_valid),
                     self.stall.eq(h_valid & (k >= h_ideal))]
        now = Cat(*[h_valid & mask[c] & (steps.step[c] == k) for c in range(oc)])
        _, _, plane_neg = s.rom(h_plane, "h")
        m.submodules.adders = adders = BankAdders(ou_cols=oc, banks=nb, term_bits=adc + p.weight_bits + 1,
                                                  output_bits=len(route[0].output), tag_bits=s.plane_bits)
        for c in range(oc):
            mag = Signal(unsigned(adc + p.weight_bits), name=f"mag{c}")
            m.d.comb += [mag.eq(codes.word_select(c, adc) << route[c].shift),
                         adders.terms[c].eq(Mux(route[c].negative ^ plane_neg, -mag, mag)),
                         adders.outputs[c].eq(route[c].output)]
        for b in range(nb):
            m.d.comb += adders.sel[b].eq(now & in_bank[b])
        m.d.comb += adders.tag.eq(h_plane)
        s.adders, s.h_valid = adders, h_valid

    def _adders_busy(self, m, s):
        """A selection is inside the adder pipeline (``BankAdders.LATENCY`` cycles after the conversion stage)."""
        busy = Signal(s.adders.LATENCY)
        m.d.sync += busy.eq(Cat(s.h_valid, busy[:-1]))
        s.adders_busy = busy.any()

    def _accumulate(self, m, s):
        """A: per bank, ``acc[half][output] += sum << plane shift`` (read in the adders' last cycle, written in the
        next; transparent, so consecutive cycles may add to the same output), and the drain port of the other half
        (output j in bank ``j mod banks``, word ``j / banks``; a half's words at ``half · 2**word_bits``)."""
        p, nb, lb = self.p, self.banks, self.bank_bits
        wb = max(1, (-(-p.output_capacity // nb) - 1).bit_length())
        adders = s.adders
        shift, _, _ = s.rom(adders.o_tag, "s")
        d_bank, d_word = Signal(range(max(2, nb))), Signal(wb)
        # zero-extended: with fewer outputs than banks the word index has no bits of its own
        m.d.comb += d_word.eq(self.d_addr.as_unsigned() >> lb)
        d_touched = Signal()
        d_datas, a_valids, d_touches = [], [], []
        for b in range(nb):
            # touched[h]: word w of this bank holds this vector's sum (a half is cleared by forgetting it)
            touched = [Signal(1 << wb, name=f"touched{b}_{h}") for h in range(2)]
            acc = Memory(shape=signed(p.acc_bits), depth=2 << wb, init=[])
            m.submodules[f"acc{b}"] = acc
            acc_w = acc.write_port()
            acc_r = acc.read_port(transparent_for=(acc_w,))
            d_r = acc.read_port()
            s_out = Signal(wb, name=f"s_word{b}")
            m.d.comb += s_out.eq(adders.o_output[b].as_unsigned() >> lb)
            a_valid, a_word = Signal(name=f"a_valid{b}"), Signal(wb, name=f"a_word{b}")
            a_sum, a_was = Signal(signed(p.acc_bits), name=f"a_sum{b}"), Signal(name=f"a_was{b}")
            m.d.comb += [acc_r.addr.eq(Cat(s_out, self.half)), acc_r.en.eq(1)]
            # a_was: the word already holds this vector's sum, looked up a cycle ahead (with this cycle's write)
            hit = a_valid & (a_word == s_out)
            m.d.sync += [a_valid.eq(adders.o_valid[b]), a_word.eq(s_out), a_sum.eq(adders.o_sum[b] << shift),
                         a_was.eq((Mux(self.half, touched[1].bit_select(s_out, 1), touched[0].bit_select(s_out, 1))
                                   | hit) & ~(self.d_clear & (self.d_half == self.half)))]
            m.d.comb += [acc_w.addr.eq(Cat(a_word, self.half)), acc_w.en.eq(a_valid),
                         acc_w.data.eq(Mux(a_was, acc_r.data, 0) + a_sum)]
            for h in range(2):
                with m.If(self.d_clear & (self.d_half == h)):
                    m.d.sync += touched[h].eq(0)
                with m.Elif(a_valid & (self.half == h)):
                    m.d.sync += touched[h].bit_select(a_word, 1).eq(1)
            m.d.comb += [d_r.addr.eq(Cat(d_word, self.d_half)), d_r.en.eq(self.d_en)]
            d_datas.append(d_r.data)
            a_valids.append(a_valid)
            d_touches.append(Mux(self.d_half, touched[1].bit_select(d_word, 1), touched[0].bit_select(d_word, 1)))
        with m.If(self.d_en):
            m.d.sync += [d_touched.eq(d_touches[0] if nb == 1 else _pick(d_touches, self.d_addr[:lb])),
                         d_bank.eq(self.d_addr[:lb] if lb else 0)]
        m.d.comb += self.d_data.eq(Mux(d_touched, _pick(d_datas, d_bank), 0))
        s.a_valid = Cat(*a_valids).any()


def _pick(values, index):
    """``values[index]`` as a chain of Muxes."""
    out = values[0]
    for i, value in enumerate(values[1:], start=1):
        out = Mux(index == i, value, out)
    return out
