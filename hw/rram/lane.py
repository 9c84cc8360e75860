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
from hw.rram.crossbar import Op, command_layout, response_bits

__all__ = ["CrossbarLane"]


class CrossbarLane(wiring.Component):
    """The pipeline of one crossbar (keyword-only parameters, all checked; ``p`` is :func:`hw.rram.beats.params`).

    Stages per OU activation (1 cycle each unless stalled): A reads the OU entry from the lane's queue; B reads the
    ``ou_rows`` indexed inputs from the input buffer (one read port per wordline); C offers ``READ_OU`` with the
    plane's chunk of every driven wordline; the crossbar answers 2 cycles later; the conversion stage takes the
    codes and converts ``adcs`` columns per cycle, all routed to the same output (a column routed elsewhere waits
    for a later cycle: the stall rule); the adder tree sums ``±code << shift`` of those columns; the accumulator
    stage adds ``±sum << plane shift`` to the output's accumulator (read-modify-write, transparent, so consecutive
    cycles may add to the same output). An OU activation occupies the conversion stage ``max(1, Σ_outputs
    ceil(columns routed there / adcs))`` cycles; the stages before it stall only while it is busy. From ``start``
    to the last accumulator write: ``LANE_FILL + W`` cycles (``gen.rram.perf.LANE_FILL`` = 7), ``W`` the
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
        self.x_bits = max(1, (2 * p.input_capacity - 1).bit_length())
        self.a_bits = max(1, (2 * p.output_capacity - 1).bit_length())
        super().__init__({
            "start": In(1), "half": In(1), "n_ous": In(range(lane_depth + 1)), "idle": Out(1),
            "q_we": In(1), "q_waddr": In(range(max(2, lane_depth))), "q_wdata": In(beats.ou_entry_layout(p)),
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
        self._accumulate(m, s)
        m.d.comb += self.idle.eq(~Cat(s.f_run, s.b_valid, s.c_valid, s.meta.r_rdy, s.h_valid,
                                      *[valid for valid, _, _ in s.banks_s], s.a_valid).any())
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
        """Stages A (queue read), B (input reads), C (READ_OU offered; its routing pushed into the metadata FIFO
        in the handshake cycle). They advance together unless C's command waits."""
        p = self.p
        m.submodules.queue = queue = Memory(shape=beats.ou_entry_layout(p), depth=max(2, self.depth), init=[])
        q_w, q_r = queue.write_port(), queue.read_port()
        m.d.comb += [q_w.en.eq(self.q_we), q_w.addr.eq(self.q_waddr), q_w.data.eq(self.q_wdata)]
        meta_layout = data.StructLayout({"plane": unsigned(s.plane_bits), "mask": unsigned(p.ou_cols),
                                         "route": data.ArrayLayout(beats.route_layout(p), p.ou_cols)})
        m.submodules.meta = meta = SyncFIFO(width=meta_layout.size, depth=4)
        s.meta, s.meta_layout = meta, meta_layout
        f_run, f_plane, f_idx = Signal(), Signal(s.plane_bits), Signal(range(max(2, self.depth)))
        b_valid, b_plane, c_valid, c_plane = Signal(), Signal(s.plane_bits), Signal(), Signal(s.plane_bits)
        c_entry = Signal(beats.ou_entry_layout(p))
        cmd = self.cmd
        fire = cmd.valid & cmd.ready
        adv = ~c_valid | fire
        issue = f_run & adv
        m.d.comb += [q_r.addr.eq(f_idx), q_r.en.eq(adv), self.x_en.eq(adv)]
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
            m.d.sync += [b_valid.eq(issue), b_plane.eq(f_plane), c_valid.eq(b_valid), c_plane.eq(b_plane),
                         c_entry.eq(q_r.data)]
        base = Mux(self.half, p.input_capacity, 0)
        for r in range(p.ou_rows):
            index = q_r.data.inputs[r]
            # an undriven wordline (-1) reads word `base` (never out of range: no X); its chunk is forced to 0
            m.d.comb += self.x_addr[r].eq(base + Mux(index < 0, 0, index.as_unsigned()))
        shift, mask, _ = s.rom(c_plane, "c")
        m.d.comb += [cmd.valid.eq(c_valid & meta.w_rdy), cmd.payload.op.eq(Op.READ_OU),
                     cmd.payload.row.eq(c_entry.row_group), cmd.payload.col.eq(c_entry.col_group)]
        for r in range(p.ou_rows):
            chunk = (self.x_data[r] >> shift) & mask
            m.d.comb += cmd.payload.drive[r].eq(Mux(c_entry.inputs[r] < 0, 0, chunk))
        meta_in = meta_layout(meta.w_data)
        m.d.comb += [meta.w_en.eq(fire), meta_in.plane.eq(c_plane), meta_in.mask.eq(c_entry.mask),
                     meta_in.route.eq(c_entry.route)]
        s.f_run, s.b_valid, s.c_valid = f_run, b_valid, c_valid

    def _first(self, m, mask, name):
        """The first ``adcs`` set bits of ``mask`` (all of them when ``adcs >= ou_cols``). Combinational."""
        oc = self.p.ou_cols
        if self.adcs >= oc:
            return mask
        out = Signal(oc, name=name)
        ranks = [sum((mask[i] for i in range(c)), Const(0, range(oc + 1))) for c in range(oc)]
        m.d.comb += out.eq(Cat(*[mask[c] & (ranks[c] < self.adcs) for c in range(oc)]))
        return out

    def _convert(self, m, s):
        """The conversion stage (H): holds one OU activation's codes; its converted columns, in column order, form
        groups of ``adcs`` (``grp``: the current group's columns still to add, ``rest``: later groups). Per cycle
        each accumulator bank takes, of the group's columns routed to it, those routed to the same output as the
        lowest one; the group's next cycle takes the others. Then the adder trees (S): per bank, the sum of
        ``±code << shift`` of its columns. The next activation enters in the cycle the last columns leave."""
        p, oc, adc, nb, lb = self.p, self.p.ou_cols, self.adc_bits, self.banks, self.bank_bits
        meta_out = s.meta_layout(s.meta.r_data)
        h_valid, grp, rest, codes = Signal(), Signal(oc), Signal(oc), Signal(oc * adc)
        route = Signal(data.ArrayLayout(beats.route_layout(p), oc))
        h_plane = Signal(s.plane_bits)
        same = [Signal(oc, name=f"same{c}") for c in range(oc)]     # same[l][c]: columns l and c share an output
        h_step, h_ideal = Signal(range(oc + 2)), Signal(range(oc + 2))
        leads, sels = [], []
        for b in range(nb):
            in_bank = Cat(*[route[c].output.as_unsigned()[:lb] == b for c in range(oc)]) if lb else Const(-1, oc)
            cand = Signal(oc, name=f"cand{b}")
            m.d.comb += cand.eq(grp & in_bank)
            lead = cand & (~cand + 1)                                 # one-hot: the bank's lowest column
            sel = Signal(oc, name=f"sel{b}")
            m.d.comb += sel.eq(grp & Cat(*[(lead & Cat(*[same[l_][c] for l_ in range(oc)])).any()
                                           for c in range(oc)]))
            leads.append(lead)
            sels.append(sel)
        left = grp & ~self._or(sels)
        nxt = self._first(m, rest, "next_group")
        last = (left == 0) & (rest == 0)
        # only a response to this lane's READ_OU has its routing in the FIFO (write-verify's READ_CELL has none)
        ready = s.meta.r_rdy & (~h_valid | last)
        take = self.rsp.valid & ready
        m.d.comb += [self.rsp.ready.eq(ready), s.meta.r_en.eq(take)]
        first = self._first(m, meta_out.mask, "first_group")
        popcount = sum((meta_out.mask[c] for c in range(oc)), Const(0, range(oc + 1)))
        ideal = sum(((popcount > k * self.adcs) for k in range(1, -(-oc // self.adcs))), Const(1, range(oc + 2)))
        with m.If(take):
            m.d.sync += [h_valid.eq(1), grp.eq(first), rest.eq(meta_out.mask & ~first),
                         codes.eq(self.rsp.payload[:oc * adc]), route.eq(meta_out.route), h_plane.eq(meta_out.plane),
                         h_step.eq(0), h_ideal.eq(ideal)]
            for l_ in range(oc):
                m.d.sync += same[l_].eq(Cat(*[meta_out.route[l_].output == meta_out.route[c].output
                                              for c in range(oc)]))
        with m.Elif(h_valid):
            m.d.sync += h_step.eq(h_step + 1)
            with m.If(left == 0):
                m.d.sync += [grp.eq(nxt), rest.eq(rest & ~nxt)]
            with m.Else():
                m.d.sync += grp.eq(left)
            with m.If(last):
                m.d.sync += h_valid.eq(0)
        # the counter strobes leave through a register: off the conversion loop's critical path (the counters lag
        # by one cycle, long before the controller is idle again)
        m.d.sync += [self.take.eq(take), self.conversions.eq(Mux(take, popcount, 0)), self.step.eq(h_valid),
                     self.stall.eq(h_valid & (h_step >= h_ideal))]
        # S: one adder tree per bank over this cycle's columns of that bank
        tree_bits = adc + p.weight_bits + max(1, oc.bit_length()) + 1
        signed_terms = []
        for c in range(oc):
            mag = Signal(unsigned(adc + p.weight_bits), name=f"mag{c}")
            term = Signal(signed(adc + p.weight_bits + 1), name=f"term{c}")
            m.d.comb += [mag.eq(codes.word_select(c, adc) << route[c].shift),
                         term.eq(Mux(route[c].negative, -mag, mag))]
            signed_terms.append(term)
        s.banks_s = []
        for b in range(nb):
            valid, out, total = Signal(name=f"s_valid{b}"), Signal(beats.widths(p).output_index, name=f"s_out{b}"), \
                Signal(signed(tree_bits), name=f"s_sum{b}")
            terms = [Mux(sels[b][c], signed_terms[c], 0) for c in range(oc)]
            lead_out = 0
            for c in range(oc):
                lead_out = Mux(leads[b][c], route[c].output, lead_out)
            m.d.sync += [valid.eq(h_valid & sels[b].any()), out.eq(lead_out), total.eq(sum(terms))]
            s.banks_s.append((valid, out, total))
        s.s_plane = Signal(s.plane_bits)
        m.d.sync += s.s_plane.eq(h_plane)
        s.h_valid = h_valid

    @staticmethod
    def _or(values):
        out = values[0]
        for v in values[1:]:
            out = out | v
        return out

    def _accumulate(self, m, s):
        """A: per bank, ``acc[half][output] += ±sum << plane shift`` (read in S's cycle, written in the next;
        transparent), and the drain port of the other half (output j in bank ``j mod banks``, word ``j / banks``)."""
        p, nb, lb = self.p, self.banks, self.bank_bits
        cap = p.output_capacity
        words = -(-cap // nb)
        touched = [Signal(max(2, cap), name=f"touched{h}") for h in range(2)]
        shift, _, neg = s.rom(s.s_plane, "s")
        d_bank = Signal(range(max(2, nb)))
        d_touched = Signal()
        d_datas = []
        a_valids = []
        for b, (s_valid, s_out, s_sum) in enumerate(s.banks_s):
            acc = Memory(shape=signed(p.acc_bits), depth=max(2, 2 * words), init=[])
            m.submodules[f"acc{b}"] = acc
            acc_w = acc.write_port()
            acc_r = acc.read_port(transparent_for=(acc_w,))
            d_r = acc.read_port()
            a_valid, a_out = Signal(name=f"a_valid{b}"), Signal(range(max(2, cap)), name=f"a_out{b}")
            a_sum = Signal(signed(p.acc_bits), name=f"a_sum{b}")
            base = Mux(self.half, words, 0)
            m.d.comb += [acc_r.addr.eq(base + (s_out.as_unsigned() >> lb)), acc_r.en.eq(1)]
            m.d.sync += [a_valid.eq(s_valid), a_out.eq(s_out.as_unsigned()),
                         a_sum.eq(Mux(neg, -s_sum, s_sum) << shift)]
            was = Mux(self.half, touched[1].bit_select(a_out, 1), touched[0].bit_select(a_out, 1))
            m.d.comb += [acc_w.addr.eq(base + (a_out >> lb)), acc_w.en.eq(a_valid),
                         acc_w.data.eq(Mux(was, acc_r.data, 0) + a_sum)]
            for h in range(2):
                with m.If(a_valid & (self.half == h) & ~(self.d_clear & (self.d_half == h))):
                    m.d.sync += touched[h].bit_select(a_out, 1).eq(1)
            m.d.comb += [d_r.addr.eq(Mux(self.d_half, words, 0) + (self.d_addr >> lb)), d_r.en.eq(self.d_en)]
            d_datas.append(d_r.data)
            a_valids.append(a_valid)
        for h in range(2):
            with m.If(self.d_clear & (self.d_half == h)):
                m.d.sync += touched[h].eq(0)
        with m.If(self.d_en):
            m.d.sync += [d_touched.eq(Mux(self.d_half, touched[1].bit_select(self.d_addr, 1),
                                          touched[0].bit_select(self.d_addr, 1))),
                         d_bank.eq(self.d_addr[:lb] if lb else 0)]
        chosen = d_datas[0]
        for b in range(1, nb):
            chosen = Mux(d_bank == b, d_datas[b], chosen)
        m.d.comb += self.d_data.eq(Mux(d_touched, chosen, 0))
        s.a_valid = Cat(*a_valids).any()
