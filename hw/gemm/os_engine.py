"""The sparse GEMM engine on the output-stationary core: job descriptors, joined K-block streams, ReLU/requant."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

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
        rows, cols, block, keep = cfg.rows, cfg.cols, cfg.block, cfg.keep
        log_block = block.bit_length() - 1

        m.submodules.core = core = SparseOSArray(
            rows=rows, cols=cols, act_bits=cfg.act_bits, act_signed=cfg.act_signed, weight_bits=cfg.weight_bits,
            acc_bits=cfg.acc_bits, keep=keep, block=block,
            overflow="saturate" if cfg.overflow == "saturate" else "wrap", counter_bits=cfg.counter_bits)
        # Tiles whose last step has entered the core and whose last result row has not left it. Last steps are
        # >= rows pipeline cycles apart and a tile's rows have left rows + cols cycles after its last step, so at
        # most (rows + cols) // rows + 1 are in flight; the extra entry is margin (a full FIFO would hold steps).
        m.submodules.info = info = SyncFIFO(width=self._info_layout.size, depth=(rows + cols) // rows + 2)

        # ---- sequencer: the job's tiles and each tile's K-blocks ----
        busy = Signal(name="busy")
        j_k = Signal(range(cfg.max_k + 1), name="j_k")
        j_m = Signal(range(cfg.max_m + 1), name="j_m")
        j_steps = Signal(range(-(-cfg.max_k // block) + 1), name="j_steps")      # T = ceil(K / block)
        j_shift = Signal(max(cfg.shift_bits, 1), name="j_shift")
        t = Signal.like(j_steps, name="t")                                      # K-block of the current tile
        k_left = Signal(range(cfg.max_k + 1), name="k_left")                    # K − t·block (lanes below are real)
        m_rem = Signal(range(cfg.max_m + 1), name="m_rem")                      # M − mm·rows
        n_rem = Signal(range(cfg.max_n + 1), name="n_rem")                      # N − nn·cols
        step_last = t == j_steps - 1
        m_last = m_rem <= rows
        n_last = n_rem <= cols
        m_valid = Mux(m_last, m_rem, rows)
        n_valid = Mux(n_last, n_rem, cols)

        # The core's acts.ready, with its weights stream always offered while busy, is "a step can enter now"
        # (pipeline advancing, a last step not held for the output spacing), independent of the host's valids.
        hold_for_info = step_last & ~info.w_rdy
        m.d.comb += [
            core.weights.valid.eq(busy & ~hold_for_info),
            core.acts.valid.eq(busy & ~hold_for_info & self.acts.valid & self.weights.valid),
        ]
        step_ok = Signal(name="step_ok")
        m.d.comb += step_ok.eq(core.acts.ready)
        m.d.comb += [
            self.acts.ready.eq(step_ok & (self.weights.valid | ~self.acts.valid)),
            self.weights.ready.eq(step_ok & (self.acts.valid | ~self.weights.valid)),
        ]
        fire = Signal(name="fire")
        m.d.comb += fire.eq(core.acts.valid & core.acts.ready)

        # Padding: rows of A at or past M and K lanes at or past K enter as zero (the host's values are ignored).
        real = [[Signal(name=f"real_r{i}_b{b}") for b in range(block)] for i in range(rows)]
        for i in range(rows):
            for b in range(block):
                m.d.comb += [
                    real[i][b].eq((i < m_valid) & (b < k_left)),
                    core.acts.payload[i][b].eq(Mux(real[i][b], self.acts.payload[i][b], 0)),
                ]
        m.d.comb += [
            core.weights.payload.entries.eq(self.weights.payload),
            core.weights.payload.last.eq(step_last),
        ]

        job_done_step = fire & step_last & m_last & n_last
        m.d.comb += self.desc.ready.eq(~busy | job_done_step)
        d_fire = self.desc.valid & self.desc.ready

        with m.If(fire):
            with m.If(step_last):
                m.d.sync += [t.eq(0), k_left.eq(j_k)]
                with m.If(m_last):
                    m.d.sync += [m_rem.eq(j_m), n_rem.eq(n_rem - cols)]
                    with m.If(n_last):
                        m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += m_rem.eq(m_rem - rows)
            with m.Else():
                m.d.sync += [t.eq(t + 1), k_left.eq(k_left - block)]

        desc = self.desc.payload
        bad = descriptor_errors(m, cfg, desc)
        with m.If(d_fire):
            with m.If(bad.any()):
                m.d.sync += [self.jobs_rejected.eq(self.jobs_rejected + 1), self.error.eq(bad)]
            with m.Else():
                m.d.sync += [busy.eq(1), j_m.eq(desc.m), j_k.eq(desc.k), j_steps.eq((desc.k + block - 1) >> log_block),
                             t.eq(0), k_left.eq(desc.k), m_rem.eq(desc.m), n_rem.eq(desc.n)]
                if cfg.shift_bits:
                    m.d.sync += j_shift.eq(desc.shift)

        # ---- tile info, from the last step to the tile's result rows ----
        w_info = data.View(self._info_layout, info.w_data)
        m.d.comb += [
            w_info.m_valid.eq(m_valid), w_info.n_valid.eq(n_valid), w_info.job_end.eq(m_last & n_last),
            info.w_en.eq(fire & step_last),
        ]
        if cfg.shift_bits:
            m.d.comb += w_info.shift.eq(j_shift)

        # ---- output: drop padded rows, ReLU/requantize the others ----
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

        # ---- counters ----
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
        with m.If(busy & ~step_ok & (~core.results.valid | core.results.ready)):
            m.d.sync += self.stall_weight.eq(self.stall_weight + 1)
        with m.If(r_fire & r_info.job_end & (o_row == r_info.m_valid - 1)):
            m.d.sync += self.jobs_done.eq(self.jobs_done + 1)

        # MAC slots of a step on real positions (row < M, column < N, K position < K), split by whether the
        # selected activation is zero; counted as the step enters.
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
        return m
