"""The GEMM engine's weight-stationary dataflow: weight buffer, loader, issuer, array core, accumulator."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Mux, Signal
from amaranth.lib import data
from amaranth.lib.fifo import SyncFIFO

from hw.formats.ints import hw_overflow
from hw.systolic.beats import act_layout, weight_layout
from hw.gemm.front import Dataflow
from hw.gemm.ws_core import WSArrayCore
from hw.gemm.act_core import ActArrayCore
from hw.gemm.outer_core import OuterArrayCore
from hw.gemm.act_select import rank_lanes
from hw.gemm.accumulator import AccumulatorBuffer

__all__ = ["WeightStationary"]


class WeightStationary(Dataflow):
    """``C[M × N] = A[M × K] · W[K × N]`` on a weight-stationary keep:block array, tile by tile
    (``dataflow = "ws"``).

    A job is one descriptor (M, K, N[, shift]); its work is the tiles (n-tile ``nn``, k-tile ``kk``) in the order
    ``for nn: for kk:``, each ``rows·block`` deep and ``cols`` wide, ragged at the end of K and N. Per tile the
    host sends ``rows`` weight beats (through a two-tile weight buffer into the array's shadow registers, ahead of
    time and while the previous tile computes) and the M activation rows of that K-slice; the last K-tile of each
    N-tile emits M result beats. docs/gemm.md specifies the ports, beat formats, timing and counters;
    :mod:`gen.gemm.perf` is the exact cycle model, the weight port's acceptance cycles included.

    The ports, descriptor check, output stage and the dataflow-independent counters are
    :class:`hw.gemm.engine.GemmEngine`'s; this is its weight-stationary strategy (:class:`hw.gemm.front.Dataflow`).

    Pipeline stages: weight buffer (``SyncFIFO`` of ``2·rows`` beats, a beat readable the cycle after it is written; with
    the shadow registers it holds the three tiles a host may send before any activation row), loader
    (descriptor, weight beats → shadow tile token), issuer (activation rows, tagged with their tile), array core
    (:class:`WSArrayCore`, latency ``rows + cols + pe_pipeline``), accumulator stage (:class:`AccumulatorBuffer` of
    ``max_m × cols`` sums in block RAM, read two cycles ahead through the core's ``peek2`` and added through a
    registered read with a forwarding path; K-tiles add in place; the last K-tile's rows go through
    ReLU/requantization to ``results``), output skid register (:meth:`_skid`: no added latency; the core's enable is
    its "empty" flag, so backpressure on ``results`` freezes the core and the accumulator stage the cycle after a
    row is refused).

    Parameters
    ----------
    config : gen.gemm.config.GemmConfig
        The validated configuration with ``dataflow = "ws"``.
    """

    def __init__(self, config):
        if getattr(config, "kind", None) != "gemm" or config.dataflow != "ws":
            raise TypeError(f"expected a GemmConfig with dataflow = \"ws\", not {config!r}")
        cfg = config
        self._tag_layout = data.StructLayout({
            "m": range(max(cfg.max_m, 2)), "first": 1, "last": 1, "job_end": 1, "n_valid": range(cfg.n_tile + 1),
            **({"shift": cfg.shift_bits} if cfg.shift_bits else {})})
        entries = cfg.block * cfg.keep if cfg.weight_axis == "n" else cfg.group * cfg.keep
        super().__init__(cfg, weights=weight_layout(cols=cfg.cols, keep=entries,
                                                    weight_bits=cfg.weight_bits, index_bits=cfg.index_bits),
                         acts=act_layout(k=cfg.k, act_bits=cfg.act_bits, act_signed=cfg.act_signed))

    @property
    def latency(self):
        """Cycles from an activation row's transfer to its result's first possible transfer:
        ``rows + cols + pe_pipeline`` (``GemmConfig.latency``)."""
        return self._cfg.latency

    def build(self, m, ports):
        """Build the weight-stationary dataflow (:meth:`hw.gemm.front.Dataflow.build`): weight buffer, loader,
        issuer, array core, accumulator, and the counters whose meaning is its own."""
        self.ports = ports
        cfg = self._cfg
        if cfg.act_keep:
            m.submodules.core = core = (OuterArrayCore if cfg.weight_axis == "n" else ActArrayCore)(
                rows=cfg.rows, cols=cfg.cols, act_bits=cfg.act_bits, act_signed=cfg.act_signed,
                weight_bits=cfg.weight_bits, acc_bits=cfg.acc_bits, keep=cfg.keep, block=cfg.block,
                act_keep=cfg.act_keep, tag_bits=self._tag_layout.size, pipeline=cfg.pe_pipeline,
                advance_on_ready=True)
        else:
            m.submodules.core = core = WSArrayCore(
                rows=cfg.rows, cols=cfg.cols, act_bits=cfg.act_bits, act_signed=cfg.act_signed,
                weight_bits=cfg.weight_bits, acc_bits=cfg.acc_bits, keep=cfg.keep, block=cfg.block,
                overflow=hw_overflow(cfg.overflow), tag_bits=self._tag_layout.size,
                pe_pipeline=cfg.pe_pipeline, advance_on_ready=True)
        s = self._job_registers(m)
        w_fire = self._weight_buffer(m, core, s)
        desc_ready = self._loader(m, s, w_fire)
        a_fire = (self._act_issuer if cfg.act_keep else self._issuer)(m, core, s, w_fire)
        out_tag, sums = self._accumulator(m, core)
        self._counters(m, core, s, a_fire)
        return SimpleNamespace(desc_ready=desc_ready, start=lambda m, desc: self._start(m, s, desc), busy=a_fire,
                               job_end=out_tag.job_end, sums=sums, shift=out_tag.shift if cfg.shift_bits else 0,
                               n_valid=out_tag.n_valid)

    def _job_registers(self, m):
        """The job state shared by the stages: the loader's counters, the shadow tile ("token", loaded and waiting
        for its first activation row) and the issuer's active tile. Registers."""
        cfg = self._cfg
        rows, cols, kdim = cfg.rows, cfg.n_tile, cfg.k       # cols: output columns of a tile
        s = SimpleNamespace(cfg=cfg)
        # loader: descriptor, then the weight beats of each tile into the shadow registers
        s.l_busy = Signal(name="l_busy")
        s.l_k = Signal(range(cfg.max_k + 1), name="l_k")
        s.l_m = Signal(range(cfg.max_m + 1), name="l_m")
        s.l_shift = Signal(max(cfg.shift_bits, 1), name="l_shift")
        s.l_krem = Signal(range(cfg.max_k + 1), name="l_krem")     # K not yet covered by this N-tile's loads
        s.l_nrem = Signal(range(cfg.max_n + 1), name="l_nrem")     # N not yet covered by finished N-tiles
        s.l_beat = Signal(range(rows), name="l_beat")

        # the shadow tile ("token"): loaded, waiting for its first activation row
        s.t_valid = Signal(name="t_valid")
        s.t_m = Signal.like(s.l_m, name="t_m")
        s.t_nvalid = Signal(range(cols + 1), name="t_nvalid")
        s.t_first, s.t_last, s.t_job_last = Signal(name="t_first"), Signal(name="t_last"), Signal(name="t_job_last")
        s.t_shift = Signal.like(s.l_shift, name="t_shift")
        # the tile's real K as one bit per lane (lane < real K): the core's and the selector's lane masks need no
        # compare of a count, only the issuer's tile select (i_idle) in front of them
        s.t_lane_ok = Signal(kdim, name="t_lane_ok")

        # issuer: the rows of the active tile
        s.i_left = Signal(range(cfg.max_m + 1), name="i_left")       # rows of the active tile still to send
        s.i_row = Signal(range(max(cfg.max_m, 2)), name="i_row")
        s.i_nvalid = Signal.like(s.t_nvalid, name="i_nvalid")
        s.i_first, s.i_last, s.i_job_last = Signal(name="i_first"), Signal(name="i_last"), Signal(name="i_job_last")
        s.i_shift = Signal.like(s.l_shift, name="i_shift")
        s.i_lane_ok = Signal.like(s.t_lane_ok, name="i_lane_ok")
        s.i_idle = Signal(name="i_idle", init=1)                      # i_left == 0

        # The shadow registers are free once the token has been taken: from the cycle after its first row, so that
        # the loader's weight handshake depends on registers only, not on the issuer's row handshake (that path
        # across the die was the 8x8 engines' critical path, docs/synthesis.md)
        s.shadow_free = ~s.t_valid

        # registered copies of l_beat == rows − 1, l_krem <= k, l_nrem <= cols (and i_idle above), loaded with their
        # counters (:meth:`_load`): the handshakes and the descriptor's ready depend on them
        s.tile_last_beat = Signal(name="tile_last_beat", init=int(rows == 1))
        s.k_last = Signal(name="k_last", init=1)
        s.n_last = Signal(name="n_last", init=1)
        return s

    @staticmethod
    def _load(m, s, **values):
        """Load the counters named in ``values`` (``l_beat``, ``l_krem``, ``l_nrem``, ``i_left``) together with their
        registered flags. 1 cycle."""
        flags = {"l_beat": ("tile_last_beat", lambda v, c: v == c.rows - 1),
                 "l_krem": ("k_last", lambda v, c: v <= c.k), "l_nrem": ("n_last", lambda v, c: v <= c.n_tile),
                 "i_left": ("i_idle", lambda v, c: v == 0)}
        for name, value in values.items():
            flag, test = flags[name]
            m.d.sync += [getattr(s, name).eq(value), getattr(s, flag).eq(test(value, s.cfg))]

    def _weight_buffer(self, m, core, s):
        """The weight buffer: a ``SyncFIFO`` of two tiles (``2·rows`` beats) between ``weights`` and the loader.
        Returns the loader's weight-beat transfer. A beat is readable the cycle after it is written."""
        # The buffer takes the host's beats ahead of time (the next tiles' weights while a tile computes and the
        # shadow holds the one after). An ideal host's beat is in the buffer before the loader wants it (the first
        # one is written with the descriptor, the loader starts the cycle after), so the loader takes beats in the
        # cycles of gen.gemm.perf. The transfer is a function of four registers (a registered copy of the buffer's
        # "not empty", l_busy, the token flag, the core's enable), so the loader's counters hang on one LUT, not on
        # the buffer's and the issuer's logic across the die (docs/synthesis.md).
        m.submodules.wbuf = wbuf = SyncFIFO(width=self.ports.weights.payload.shape().size, depth=2 * self._cfg.rows)
        avail = Signal(name="wbuf_avail")              # == wbuf.r_rdy, one cycle ahead
        w_fire = Signal(name="w_fire")
        m.d.comb += [
            core.weights.valid.eq(avail & s.l_busy & s.shadow_free),
            core.weights.payload.eq(wbuf.r_data),
            w_fire.eq(core.weights.valid & core.weights.ready),
            wbuf.r_en.eq(w_fire),
            wbuf.w_data.eq(self.ports.weights.payload),
            wbuf.w_en.eq(self.ports.weights.valid),
            self.ports.weights.ready.eq(wbuf.w_rdy),
        ]
        m.d.sync += avail.eq(wbuf.level + (wbuf.w_en & wbuf.w_rdy) - w_fire != 0)
        return w_fire

    def _loader(self, m, s, w_fire):
        """The loader: the tile walk, ``rows`` weight beats per tile, that fills the token. Returns when a descriptor
        may transfer: while idle, from the cycle after the job's last weight beat (so the next job's first beat
        comes 2 cycles after it). One beat per cycle; the token is valid the cycle after a tile's last beat."""
        cfg = self._cfg
        rows, cols, kdim = cfg.rows, cfg.n_tile, cfg.k
        # ready only while idle (a register), not with the job's last weight beat: the weight handshake hangs on the
        # core's enable, and through the descriptor check it was the 8x8 engines' critical path (docs/synthesis.md)
        desc_ready = Signal(name="desc_ready")
        m.d.comb += desc_ready.eq(~s.l_busy)

        with m.If(w_fire):
            self._load(m, s, l_beat=0 if rows == 1 else Mux(s.tile_last_beat, 0, s.l_beat + 1))
            with m.If(s.tile_last_beat):
                m.d.sync += [
                    s.t_m.eq(s.l_m),
                    s.t_nvalid.eq(Mux(s.n_last, s.l_nrem, cols)),
                    s.t_first.eq(s.l_krem == s.l_k), s.t_last.eq(s.k_last), s.t_job_last.eq(s.k_last & s.n_last),
                    s.t_shift.eq(s.l_shift), s.t_lane_ok.eq(Cat(~s.k_last | (i < s.l_krem) for i in range(kdim))),
                ]
                with m.If(s.k_last):
                    self._load(m, s, l_krem=s.l_k, l_nrem=s.l_nrem - cols)
                    with m.If(s.n_last):
                        m.d.sync += s.l_busy.eq(0)
                with m.Else():
                    self._load(m, s, l_krem=s.l_krem - kdim)
        return desc_ready

    def _start(self, m, s, desc):
        """Start the loader on the good descriptor ``desc``. 1 cycle."""
        m.d.sync += [s.l_busy.eq(1), s.l_m.eq(desc.m), s.l_k.eq(desc.k)]
        self._load(m, s, l_krem=desc.k, l_nrem=desc.n)
        if self._cfg.shift_bits:
            m.d.sync += s.l_shift.eq(desc.shift)

    def _issuer(self, m, core, s, w_fire):
        """The issuer: activation rows into the core, tagged with their tile; a tile's first row takes the token
        (``swap``). Returns the row transfer. Latency 0 (combinational into the core)."""
        cfg = self._cfg
        tag = data.View(self._tag_layout, core.acts.payload.tag)
        take = s.i_idle
        m.d.comb += [
            core.acts.valid.eq(self.ports.acts.valid & (~s.i_idle | s.t_valid)),
            self.ports.acts.ready.eq(core.acts.ready & (~s.i_idle | s.t_valid)),
            core.acts.payload.data.eq(self.ports.acts.payload),
            core.acts.payload.swap.eq(take),
            core.acts.payload.lane_ok.eq(Mux(take, s.t_lane_ok, s.i_lane_ok)),
            core.acts.payload.n_valid.eq(Mux(take, s.t_nvalid, s.i_nvalid)),
            tag.m.eq(Mux(take, 0, s.i_row)),
            tag.first.eq(Mux(take, s.t_first, s.i_first)),
            tag.last.eq(Mux(take, s.t_last, s.i_last)),
            tag.job_end.eq(Mux(take, s.t_job_last & (s.t_m == 1), s.i_job_last & (s.i_left == 1))),
            tag.n_valid.eq(Mux(take, s.t_nvalid, s.i_nvalid)),
        ]
        if cfg.shift_bits:
            m.d.comb += tag.shift.eq(Mux(take, s.t_shift, s.i_shift))
        a_fire = core.acts.valid & core.acts.ready
        with m.If(a_fire):
            with m.If(take):
                m.d.sync += [
                    s.i_row.eq(1), s.i_lane_ok.eq(s.t_lane_ok), s.i_nvalid.eq(s.t_nvalid),
                    s.i_first.eq(s.t_first), s.i_last.eq(s.t_last), s.i_job_last.eq(s.t_job_last),
                    s.i_shift.eq(s.t_shift), s.t_valid.eq(0),
                ]
                self._load(m, s, i_left=s.t_m - 1)
            with m.Else():
                m.d.sync += s.i_row.eq(s.i_row + 1)
                self._load(m, s, i_left=s.i_left - 1)
        with m.If(w_fire & s.tile_last_beat):      # after the take above: a load finishing now refills the token
            m.d.sync += s.t_valid.eq(1)
        return a_fire

    def _act_issuer(self, m, core, s, w_fire):
        """The activation-sparse issuer: each row goes into the core as its steps (the selector's slots, one step
        per cycle; ``acts`` transfers with the last one), tagged so that the accumulator adds the steps; a tile's
        first step takes the token (``swap``). Returns the step transfer. Latency 0 (combinational)."""
        cfg = self._cfg
        tag = data.View(self._tag_layout, core.acts.payload.tag)
        take = s.i_idle
        n_steps = -(-cfg.block // cfg.act_keep)
        step = Signal(range(max(n_steps, 2)), name="act_step")
        lanes = [self.ports.acts.payload[i] for i in range(cfg.k)]
        lane_ok = Mux(take, s.t_lane_ok, s.i_lane_ok)
        vals, sel, last = rank_lanes(m, lanes=lanes, lane_ok=lane_ok, step=step, act_bits=cfg.act_bits,
                                     act_signed=cfg.act_signed, block=cfg.block, act_keep=cfg.act_keep,
                                     mode=cfg.act_mode)
        m.d.comb += [core.acts.payload.lanes[i].eq(v) for i, v in enumerate(vals)]
        m.d.comb += core.acts.payload.sel.eq(Cat(*sel))
        wanted = ~s.i_idle | s.t_valid
        m.d.comb += [
            core.acts.valid.eq(self.ports.acts.valid & wanted),
            # ready with the row's last step; while no row is offered, ready as the core is (a stall_input cycle)
            self.ports.acts.ready.eq(core.acts.ready & wanted & (last | ~self.ports.acts.valid)),
            core.acts.payload.swap.eq(take),
            core.acts.payload.n_valid.eq(Mux(take, s.t_nvalid, s.i_nvalid)),
            tag.m.eq(Mux(take, 0, s.i_row)),
            tag.first.eq(Mux(take, s.t_first, s.i_first) & (step == 0)),
            tag.last.eq(Mux(take, s.t_last, s.i_last) & last),
            tag.job_end.eq(Mux(take, s.t_job_last & (s.t_m == 1), s.i_job_last & (s.i_left == 1)) & last),
            tag.n_valid.eq(Mux(take, s.t_nvalid, s.i_nvalid)),
        ]
        if cfg.shift_bits:
            m.d.comb += tag.shift.eq(Mux(take, s.t_shift, s.i_shift))
        a_fire = core.acts.valid & core.acts.ready
        with m.If(a_fire):
            m.d.sync += step.eq(Mux(last, 0, step + 1))
            with m.If(take):
                # the token is taken by the first step; later steps of that row run from the issuer's copy
                m.d.sync += [
                    s.i_row.eq(Mux(last, 1, 0)), s.i_lane_ok.eq(s.t_lane_ok),
                    s.i_nvalid.eq(s.t_nvalid), s.i_first.eq(s.t_first),
                    s.i_last.eq(s.t_last), s.i_job_last.eq(s.t_job_last), s.i_shift.eq(s.t_shift),
                    s.t_valid.eq(0),
                ]
                self._load(m, s, i_left=Mux(last, s.t_m - 1, s.t_m))
            with m.Elif(last):
                m.d.sync += s.i_row.eq(s.i_row + 1)
                self._load(m, s, i_left=s.i_left - 1)
        with m.If(w_fire & s.tile_last_beat):
            m.d.sync += s.t_valid.eq(1)
        return a_fire

    def _accumulator(self, m, core):
        """The accumulator (:class:`AccumulatorBuffer`, ``max_m × cols`` sums, read two advances ahead through
        ``peek2``): a first K-tile row writes, a middle one adds in place, the last one adds and goes to
        ``results`` through :meth:`_skid`. Returns the tag and the sums of the row on offer. Latency 0."""
        cfg = self._cfg
        # weights along N: rows of cols·block sums over twice the block RAMs, whose write data would come straight
        # from the adders (write_register) and whose forwarding select would sit in front of them (clear_unused)
        wide = cfg.weight_axis == "n"
        # the forwarding decision registered one advance early: its select fans out over every block RAM of the
        # buffer, and decided from the row's handshake it was the act engines' critical path (docs/synthesis.md)
        m.submodules.acc = acc = AccumulatorBuffer(cols=cfg.n_tile, acc_bits=cfg.acc_bits, depth=cfg.acc_depth,
                                                   overflow=hw_overflow(cfg.overflow), forward_ahead=True,
                                                   write_register=wide, clear_unused=wide)
        m.d.comb += acc.next.write.eq(core.peek.valid & ~data.View(self._tag_layout, core.peek.tag).last)
        ahead = data.View(self._tag_layout, core.peek2.tag)
        out_tag = data.View(self._tag_layout, core.results.payload.tag)
        m.d.comb += [                       # with clear_unused a first row is flagged with its address
            acc.advance.eq(core.advance), acc.ahead.m.eq(ahead.m),
            *([acc.ahead.first.eq(ahead.first)] if wide else []),
            acc.row.valid.eq(core.results.valid), acc.row.m.eq(out_tag.m),
            *([] if wide else [acc.row.first.eq(out_tag.first)]),
            acc.row.write.eq(~out_tag.last), acc.row.psums.eq(core.results.payload.psums),
        ]
        return self._skid(m, core, core.results.valid & out_tag.last, out_tag, acc.sums)

    def _skid(self, m, core, valid, tag, sums):
        """The skid register between the accumulator and ``results``: a finished row (``valid``) passes it
        combinationally while it is empty; one ``results`` cannot take waits in it, and the core (built with
        ``advance_on_ready``) advances exactly while it is empty. Returns the tag and sums on offer. Latency 0."""
        # The core's enable gates every PE register; with the skid register it is that one register, not a
        # function of the row's tag and the port's ready (the 8x8 engines' critical path, docs/synthesis.md).
        # Kept as "empty", not "full": an inverted enable keeps the DSP packer (gen/synth/ecp5_dsp.py) from
        # moving the PEs' registers into the DSP blocks.
        results = self.ports.results
        empty = Signal(name="skid_empty", init=1)
        held_tag = Signal.like(tag, name="skid_tag")
        held_sums = Signal.like(sums, name="skid_sums")
        m.d.comb += [core.results.ready.eq(empty), results.valid.eq(valid | ~empty)]
        with m.If(empty):
            # an empty register copies the row on offer every cycle (its enable is the one register `empty`)
            m.d.sync += [held_tag.eq(tag), held_sums.eq(sums)]
            with m.If(valid & ~results.ready):
                m.d.sync += empty.eq(0)
        with m.Elif(results.ready):
            m.d.sync += empty.eq(1)
        head_tag = data.View(self._tag_layout, Mux(empty, tag.as_value(), held_tag.as_value()))
        head_sums = Signal.like(sums, name="head_sums")
        m.d.comb += head_sums.eq(Mux(empty, sums.as_value(), held_sums.as_value()))
        return head_tag, head_sums

    def _counters(self, m, core, s, a_fire):
        """The weight-stationary counters (docs/gemm.md "Counters"): ``stall_input``, ``stall_weight``, ``macs``,
        ``zero_skips``. 1 cycle (registered)."""
        advance = core.advance
        c_fire = core.results.valid & core.results.ready
        acts_wanted = ~s.i_idle | s.t_valid
        # not a weight stall: a cycle stalled on output (results offered and not taken)
        on_output = self.ports.results.valid & ~self.ports.results.ready
        with m.If(advance & ~a_fire & acts_wanted):
            m.d.sync += self.ports.stall_input.eq(self.ports.stall_input + 1)
        with m.If(advance & ~on_output & ~acts_wanted & s.l_busy):
            m.d.sync += self.ports.stall_weight.eq(self.ports.stall_weight + 1)
        with m.If(c_fire):
            m.d.sync += [self.ports.macs.eq(self.ports.macs + core.results.payload.macs),
                         self.ports.zero_skips.eq(self.ports.zero_skips + core.results.payload.zeros)]
