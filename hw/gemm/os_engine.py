"""The sparse GEMM engine on the output-stationary core: job descriptors, joined K-block streams, ReLU/requant."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.formats.ints import hw_overflow
from hw.systolic.beats import weight_layout
from hw.gemm.os_array import SparseOSArray
from hw.gemm.os_beats import os_act_layout
from hw.gemm.beats import ERROR_FIELDS, desc_layout, result_layout
from hw.gemm.engine import COUNTERS, descriptor_errors, output_stage

__all__ = ["GemmOSEngine"]


class GemmOSEngine(wiring.Component):
    """``C[M × N] = A[M × K] · W[K × N]`` on an output-stationary keep:block array (:class:`SparseOSArray`).

    A job is one descriptor (M, K, N[, shift]); its work is the output tiles (n-tile ``nn``, m-tile ``mm``) in the
    order ``for nn: for mm:``, each ``rows × cols`` of C, ragged at the end of M and N. A tile takes
    ``T = ceil(K / block)`` steps; a step is one activation beat (rows ``mm·rows …`` of A, K-block t) and one
    weight beat (columns ``nn·cols …`` of W, K-block t, compressed) transferring together. The tile's sums stay
    in the PEs over the whole K, so there is no accumulator buffer; the core emits ``rows`` result rows per tile
    and the engine forwards the first ``min(rows, M − mm·rows)`` of them through ReLU/requantization (padded
    columns 0), dropping padded rows. Result beats therefore come out in the WS engine's order: for each N-tile,
    rows ``m = 0 … M−1``. docs/gemm.md ("Output-stationary dataflow") specifies ports, timing and counters;
    :mod:`gen.gemm.perf` is the exact cycle model.

    The ports are those of :class:`hw.gemm.engine.GemmEngine` with the same widths (an OS activation beat,
    ``rows × block`` activations, has the WS beat's ``k = rows·block`` elements; the weight beat is the WS one,
    the core's ``last`` flag is generated here). ``acts`` and ``weights`` are joined: a beat of either
    transfers only together with one of the other; each stream's ``ready`` is high while the engine can take a
    step and the stream has no beat (so an input stall is visible on the ports), or can take one and the other
    stream offers a beat.

    Latency: a tile whose last step transfers in cycle a offers result row i in cycle ``a + cols + 1 + i``.

    Parameters
    ----------
    config : gen.gemm.config.GemmConfig
        The validated configuration with ``dataflow = "os"`` (this is the generator's top component).

    Members
    -------
    desc : In(stream.Signature(desc_layout))
    weights : In(stream.Signature(weight beat))
    acts : In(stream.Signature(ArrayLayout(ArrayLayout(act, block), rows)))
    results : Out(stream.Signature(ArrayLayout(signed(result_bits), cols)))
    cycles, busy_cycles, stall_input, stall_output, stall_weight, macs, zero_skips, jobs_done, jobs_rejected
        Out(counter_bits): wrapping counters since reset.
    error : Out(4)
        Cause bits (m, k, n, shift) of the most recently rejected descriptor; 0 until one is rejected.
    """

    def __init__(self, config):
        if getattr(config, "kind", None) != "gemm" or config.dataflow != "os":
            raise TypeError(f"expected a GemmConfig with dataflow = \"os\", not {config!r}")
        self._cfg = cfg = config
        self._info_layout = data.StructLayout({
            "m_valid": range(cfg.rows + 1), "n_valid": range(cfg.cols + 1), "job_end": 1,
            **({"shift": cfg.shift_bits} if cfg.shift_bits else {})})
        super().__init__({
            "desc": In(stream.Signature(desc_layout(cfg))),
            "weights": In(stream.Signature(weight_layout(cols=cfg.cols, keep=cfg.keep, weight_bits=cfg.weight_bits,
                                                         index_bits=cfg.index_bits))),
            "acts": In(stream.Signature(os_act_layout(rows=cfg.rows, block=cfg.block, act_bits=cfg.act_bits,
                                                      act_signed=cfg.act_signed))),
            "results": Out(stream.Signature(result_layout(cfg))),
            **{name: Out(cfg.counter_bits) for name in COUNTERS},
            "error": Out(len(ERROR_FIELDS)),
        })

    @property
    def latency(self):
        """Cycles from a tile's last step to its last result row's first possible transfer: ``rows + cols``."""
        return self._cfg.rows + self._cfg.cols

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        rows, cols = cfg.rows, cfg.cols
        m.submodules.core = core = SparseOSArray(
            rows=rows, cols=cols, act_bits=cfg.act_bits, act_signed=cfg.act_signed, weight_bits=cfg.weight_bits,
            acc_bits=cfg.acc_bits, keep=cfg.keep, block=cfg.block,
            overflow=hw_overflow(cfg.overflow), counter_bits=cfg.counter_bits)
        # Tiles whose last step has entered the core and whose last result row has not left it. Last steps are
        # >= rows pipeline cycles apart and a tile's rows have left rows + cols cycles after its last step, so at
        # most (rows + cols) // rows + 1 are in flight; the extra entry is margin (a full FIFO would hold steps).
        m.submodules.info = info = SyncFIFO(width=self._info_layout.size, depth=(rows + cols) // rows + 2)

        s = self._sequencer_registers(m)
        step_ok, fire = self._joined_streams(m, core, info, s)
        real = self._padding(m, core, s)
        d_fire = self._sequencer(m, s, fire)
        self._descriptor(m, s, d_fire)
        self._tile_info(m, info, s, fire)
        r_info, o_row = self._output(m, core, info)
        self._counters(m, core, s, step_ok, fire, r_info, o_row)
        self._mac_counters(m, real, s.n_valid, fire)
        return m

    def _sequencer_registers(self, m):
        """The sequencer's state: the job (K, M, steps per tile, shift), the current tile's K-block and the M, N
        and K still ahead, with the tile's flags and valid counts derived from them. Registers (no cycles)."""
        cfg = self._cfg
        rows, cols, block = cfg.rows, cfg.cols, cfg.block
        s = SimpleNamespace()
        s.busy = Signal(name="busy")
        s.j_k = Signal(range(cfg.max_k + 1), name="j_k")
        s.j_m = Signal(range(cfg.max_m + 1), name="j_m")
        s.j_steps = Signal(range(-(-cfg.max_k // block) + 1), name="j_steps")    # T = ceil(K / block)
        s.j_shift = Signal(max(cfg.shift_bits, 1), name="j_shift")
        s.t = Signal.like(s.j_steps, name="t")                                  # K-block of the current tile
        s.k_left = Signal(range(cfg.max_k + 1), name="k_left")                  # K − t·block (lanes below are real)
        s.m_rem = Signal(range(cfg.max_m + 1), name="m_rem")                    # M − mm·rows
        s.n_rem = Signal(range(cfg.max_n + 1), name="n_rem")                    # N − nn·cols
        s.step_last = s.t == s.j_steps - 1
        s.m_last = s.m_rem <= rows
        s.n_last = s.n_rem <= cols
        s.m_valid = Mux(s.m_last, s.m_rem, rows)
        s.n_valid = Mux(s.n_last, s.n_rem, cols)
        return s

    def _joined_streams(self, m, core, info, s):
        """The joined ``acts``/``weights`` handshake: a step transfers a beat on both streams together, a tile's last
        step waits for room in the tile-info FIFO. Returns "a step can enter now" and the step's transfer.
        Latency 0 (combinational into the core)."""
        # The core's acts.ready, with its weights stream always offered while busy, is "a step can enter now"
        # (pipeline advancing, a last step not held for the output spacing), independent of the host's valids.
        hold_for_info = s.step_last & ~info.w_rdy
        m.d.comb += [
            core.weights.valid.eq(s.busy & ~hold_for_info),
            core.acts.valid.eq(s.busy & ~hold_for_info & self.acts.valid & self.weights.valid),
        ]
        step_ok = Signal(name="step_ok")
        m.d.comb += step_ok.eq(core.acts.ready)
        m.d.comb += [
            self.acts.ready.eq(step_ok & (self.weights.valid | ~self.acts.valid)),
            self.weights.ready.eq(step_ok & (self.acts.valid | ~self.weights.valid)),
        ]
        fire = Signal(name="fire")
        m.d.comb += fire.eq(core.acts.valid & core.acts.ready)
        return step_ok, fire

    def _padding(self, m, core, s):
        """The step's payloads into the core: rows of A at or past M and K lanes at or past K enter as zero (the
        host's values are ignored), the weights' ``last`` flag from K. Returns the ``real[row][lane]`` flags.
        Latency 0 (combinational)."""
        rows, block = self._cfg.rows, self._cfg.block
        real = [[Signal(name=f"real_r{i}_b{b}") for b in range(block)] for i in range(rows)]
        for i in range(rows):
            for b in range(block):
                m.d.comb += [
                    real[i][b].eq((i < s.m_valid) & (b < s.k_left)),
                    core.acts.payload[i][b].eq(Mux(real[i][b], self.acts.payload[i][b], 0)),
                ]
        m.d.comb += [
            core.weights.payload.entries.eq(self.weights.payload),
            core.weights.payload.last.eq(s.step_last),
        ]
        return real

    def _sequencer(self, m, s, fire):
        """The sequencer's walk: ``desc.ready`` (idle, or the job's last step now), then per step the next K-block,
        M-tile, N-tile or the end of the job. Returns the descriptor transfer. One step per cycle."""
        rows, cols, block = self._cfg.rows, self._cfg.cols, self._cfg.block
        job_done_step = fire & s.step_last & s.m_last & s.n_last
        m.d.comb += self.desc.ready.eq(~s.busy | job_done_step)
        d_fire = self.desc.valid & self.desc.ready

        with m.If(fire):
            with m.If(s.step_last):
                m.d.sync += [s.t.eq(0), s.k_left.eq(s.j_k)]
                with m.If(s.m_last):
                    m.d.sync += [s.m_rem.eq(s.j_m), s.n_rem.eq(s.n_rem - cols)]
                    with m.If(s.n_last):
                        m.d.sync += s.busy.eq(0)
                with m.Else():
                    m.d.sync += s.m_rem.eq(s.m_rem - rows)
            with m.Else():
                m.d.sync += [s.t.eq(s.t + 1), s.k_left.eq(s.k_left - block)]
        return d_fire

    def _descriptor(self, m, s, d_fire):
        """The descriptor check: a bad one counts in ``jobs_rejected`` and sets ``error``, a good one starts the
        sequencer at the job's first step. 1 cycle."""
        cfg = self._cfg
        log_block = cfg.block.bit_length() - 1
        desc = self.desc.payload
        bad = descriptor_errors(m, cfg, desc)
        with m.If(d_fire):
            with m.If(bad.any()):
                m.d.sync += [self.jobs_rejected.eq(self.jobs_rejected + 1), self.error.eq(bad)]
            with m.Else():
                m.d.sync += [s.busy.eq(1), s.j_m.eq(desc.m), s.j_k.eq(desc.k),
                             s.j_steps.eq((desc.k + cfg.block - 1) >> log_block),
                             s.t.eq(0), s.k_left.eq(desc.k), s.m_rem.eq(desc.m), s.n_rem.eq(desc.n)]
                if cfg.shift_bits:
                    m.d.sync += s.j_shift.eq(desc.shift)

    def _tile_info(self, m, info, s, fire):
        """The tile info (valid rows and columns, job end, shift) into the FIFO with the tile's last step, for its
        result rows. Written as the last step enters; readable the next cycle."""
        w_info = data.View(self._info_layout, info.w_data)
        m.d.comb += [
            w_info.m_valid.eq(s.m_valid), w_info.n_valid.eq(s.n_valid), w_info.job_end.eq(s.m_last & s.n_last),
            info.w_en.eq(fire & s.step_last),
        ]
        if self._cfg.shift_bits:
            m.d.comb += w_info.shift.eq(s.j_shift)

    def _output(self, m, core, info):
        """The output: drop a tile's padded rows, ReLU/requantize the others into ``results``; the tile's info leaves
        the FIFO with its last row. Returns the tile info and the row counter. Latency 0 (combinational)."""
        cfg = self._cfg
        rows = cfg.rows
        r_info = data.View(self._info_layout, info.r_data)
        o_row = Signal(range(rows), name="o_row")
        drop = o_row >= r_info.m_valid
        m.d.comb += [
            self.results.valid.eq(core.results.valid & ~drop),
            core.results.ready.eq(drop | self.results.ready),
        ]
        output_stage(m, cfg, core.results.payload, shift=r_info.shift if cfg.shift_bits else 0,
                     n_valid=r_info.n_valid, out=self.results.payload)
        c_fire = core.results.valid & core.results.ready
        with m.If(c_fire):
            m.d.sync += o_row.eq(Mux(o_row == rows - 1, 0, o_row + 1))
        m.d.comb += info.r_en.eq(c_fire & (o_row == rows - 1))
        return r_info, o_row

    def _counters(self, m, core, s, step_ok, fire, r_info, o_row):
        """The cycle-class and job counters (docs/gemm.md "Output-stationary dataflow"). 1 cycle (registered)."""
        r_fire = self.results.valid & self.results.ready
        m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(fire):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        with m.If(self.results.valid & ~self.results.ready):
            m.d.sync += self.stall_output.eq(self.stall_output + 1)
        with m.If(step_ok & ~(self.acts.valid & self.weights.valid)):
            m.d.sync += self.stall_input.eq(self.stall_input + 1)
        # the analogue of WS's weight stall: a job's step waits although the pipeline advances (a short tile's
        # last step held for the output spacing)
        with m.If(s.busy & ~step_ok & (~core.results.valid | core.results.ready)):
            m.d.sync += self.stall_weight.eq(self.stall_weight + 1)
        with m.If(r_fire & r_info.job_end & (o_row == r_info.m_valid - 1)):
            m.d.sync += self.jobs_done.eq(self.jobs_done + 1)

    def _mac_counters(self, m, real, n_valid, fire):
        """``macs``/``zero_skips``: a step's MAC slots on real positions (row < M, column < N, K position < K),
        split by whether the selected activation is zero, counted as the step enters. 1 cycle (registered)."""
        cfg = self._cfg
        rows, cols, block, keep = cfg.rows, cfg.cols, cfg.block, cfg.keep
        nonzero = [Cat(real[i][b] & (self.acts.payload[i][b] != 0) for i in range(rows)) for b in range(block)]
        zero = [Cat(real[i][b] & (self.acts.payload[i][b] == 0) for i in range(rows)) for b in range(block)]
        nz_count = [Signal(range(rows + 1), name=f"nz_b{b}") for b in range(block)]
        z_count = [Signal(range(rows + 1), name=f"z_b{b}") for b in range(block)]
        for b in range(block):
            m.d.comb += [nz_count[b].eq(sum(nonzero[b])), z_count[b].eq(sum(zero[b]))]
        step_macs, step_zeros = 0, 0
        for j in range(cols):
            for s in range(keep):
                if cfg.sparse:
                    idx = self.weights.payload[j][s].index
                    nz = Signal(range(rows + 1), name=f"nz_c{j}_s{s}")
                    z = Signal(range(rows + 1), name=f"z_c{j}_s{s}")
                    with m.Switch(idx):
                        for b in range(block):
                            with m.Case(b):
                                m.d.comb += [nz.eq(nz_count[b]), z.eq(z_count[b])]
                else:
                    nz, z = nz_count[s], z_count[s]
                step_macs += Mux(j < n_valid, nz, 0)
                step_zeros += Mux(j < n_valid, z, 0)
        with m.If(fire):
            m.d.sync += [self.macs.eq(self.macs + step_macs), self.zero_skips.eq(self.zero_skips + step_zeros)]
