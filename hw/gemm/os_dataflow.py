"""The GEMM engine's output-stationary dataflow: sequencer, joined K-block streams, core, row drop."""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Mux, Signal
from amaranth.lib import data
from amaranth.lib.fifo import SyncFIFOBuffered

from hw.formats.ints import hw_overflow
from hw.systolic.beats import weight_layout
from hw.systolic.mac import tree_sum
from hw.gemm.os_array import SparseOSArray
from hw.gemm.os_beats import os_act_layout
from hw.gemm.front import Dataflow

__all__ = ["OutputStationary"]


class OutputStationary(Dataflow):
    """``C[M × N] = A[M × K] · W[K × N]`` on an output-stationary keep:block array (:class:`SparseOSArray`,
    ``dataflow = "os"``).

    A job is one descriptor (M, K, N[, shift]); its work is the output tiles (n-tile ``nn``, m-tile ``mm``) in the
    order ``for nn: for mm:``, each ``rows × cols`` of C, ragged at the end of M and N. A tile takes
    ``T = ceil(K / block)`` steps; a step is one activation beat (rows ``mm·rows …`` of A, K-block t) and one
    weight beat (columns ``nn·cols …`` of W, K-block t, compressed) transferring together. The tile's sums stay
    in the PEs over the whole K, so there is no accumulator buffer; the core emits ``rows`` result rows per tile
    and the engine forwards the first ``min(rows, M − mm·rows)`` of them through ReLU/requantization (padded
    columns 0), dropping padded rows. Result beats therefore come out in the WS engine's order: for each N-tile,
    rows ``m = 0 … M−1``. docs/gemm.md ("Output-stationary dataflow") specifies ports, timing and counters;
    :mod:`gen.gemm.perf` is the exact cycle model.

    The engine's ports (:class:`hw.gemm.engine.GemmEngine`) have the WS widths (an OS activation beat,
    ``rows × block`` activations, has the WS beat's ``k = rows·block`` elements; the weight beat is the WS one,
    the core's ``last`` flag is generated here). ``acts`` and ``weights`` are joined: a beat of either
    transfers only together with one of the other; each stream's ``ready`` is high while the engine can take a
    step and the stream has no beat (so an input stall is visible on the ports), or can take one and the other
    stream offers a beat.

    The ports, descriptor check, output stage and the dataflow-independent counters are
    :class:`hw.gemm.engine.GemmEngine`'s; this is its output-stationary strategy (:class:`hw.gemm.front.Dataflow`).

    Latency: a tile whose last step transfers in cycle a offers result row i in cycle
    ``a + cols + 1 + pe_pipeline + i``.

    Parameters
    ----------
    config : gen.gemm.config.GemmConfig
        The validated configuration with ``dataflow = "os"``.
    """

    def __init__(self, config):
        if getattr(config, "kind", None) != "gemm" or config.dataflow != "os":
            raise TypeError(f"expected a GemmConfig with dataflow = \"os\", not {config!r}")
        cfg = config
        self._info_layout = data.StructLayout({
            "m_valid": range(cfg.rows + 1), "n_valid": range(cfg.cols + 1), "job_end": 1, "rows_real": cfg.rows,
            **({"shift": cfg.shift_bits} if cfg.shift_bits else {})})
        super().__init__(cfg, weights=weight_layout(cols=cfg.cols, keep=cfg.keep, weight_bits=cfg.weight_bits,
                                                    index_bits=cfg.index_bits),
                         acts=os_act_layout(rows=cfg.rows, block=cfg.block, act_bits=cfg.act_bits,
                                            act_signed=cfg.act_signed))

    @property
    def latency(self):
        """Cycles from a tile's last step to its last result row's first possible transfer:
        ``rows + cols + pe_pipeline`` (``GemmConfig.latency``)."""
        return self._cfg.latency

    def build(self, m, ports):
        """Build the output-stationary dataflow (:meth:`hw.gemm.front.Dataflow.build`): sequencer, joined K-block
        streams, core, row drop, and the counters whose meaning is its own."""
        self.ports = ports
        cfg = self._cfg
        rows, cols = cfg.rows, cfg.cols
        m.submodules.core = core = SparseOSArray(
            rows=rows, cols=cols, act_bits=cfg.act_bits, act_signed=cfg.act_signed, weight_bits=cfg.weight_bits,
            acc_bits=cfg.acc_bits, keep=cfg.keep, block=cfg.block,
            overflow=hw_overflow(cfg.overflow), counter_bits=cfg.counter_bits, pe_pipeline=cfg.pe_pipeline,
            advance_on_ready=True)
        # Tiles whose last step has entered the core and whose last result row has not left it. Last steps are
        # >= rows pipeline cycles apart and a tile's rows have left cfg.latency cycles after its last step, so at
        # most latency // rows + 1 are in flight; the three extra entries let the last-step hold look at the
        # level one cycle late (:meth:`_joined_streams`) and cover the buffered FIFO's output register. Buffered:
        # the row drop reads a register, not the FIFO's memory; an entry is readable 2 cycles after its last step,
        # its first row leaves cols + 1 + pipeline >= 2 cycles after it.
        self._info_in_flight = cfg.latency // rows + 1
        m.submodules.info = info = SyncFIFOBuffered(width=self._info_layout.size, depth=self._info_in_flight + 3)

        s = self._sequencer_registers(m)
        step_ok, fire = self._joined_streams(m, core, info, s)
        self._padding(m, core, s)
        job_done_step = self._sequencer(m, s, fire)
        self._tile_info(m, info, s, fire)
        r_info, o_row, row = self._output(m, core, info)
        self._counters(m, s, step_ok)
        self._mac_counters(m, s, fire)
        return SimpleNamespace(desc_ready=~s.busy | job_done_step, start=lambda m, desc: self._start(m, s, desc),
                               busy=fire, job_end=r_info.job_end & (o_row == r_info.m_valid - 1), sums=row,
                               shift=r_info.shift if cfg.shift_bits else 0, n_valid=r_info.n_valid)

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
        # registered copies of "row i < M", "lane b < K" and "column j < N" for the current tile and K-block,
        # updated with m_rem, k_left and n_rem (:meth:`_track`), so no compare sits on the count path
        s.row_real = Signal(rows, name="row_real")
        s.lane_real = Signal(block, name="lane_real")
        s.col_real = Signal(cols, name="col_real")
        # registered: "this is the tile's last K-block / the job's last M-tile / last N-tile", updated with t, m_rem
        # and n_rem, because the step handshake and every sequencer register's enable depend on them
        s.step_last = Signal(name="step_last")
        s.m_last = Signal(name="m_last")
        s.n_last = Signal(name="n_last")
        s.m_valid = Mux(s.m_last, s.m_rem, rows)
        s.n_valid = Mux(s.n_last, s.n_rem, cols)
        return s

    def _joined_streams(self, m, core, info, s):
        """The joined ``acts``/``weights`` handshake: a step transfers a beat on both streams together, a tile's last
        step waits for room in the tile-info FIFO. Returns "a step can enter now" and the step's transfer.
        Latency 0 (combinational into the core)."""
        # The core's acts.ready, with its weights stream always offered while busy, is "a step can enter now"
        # (pipeline advancing, a last step not held for the output spacing), independent of the host's valids.
        # A last step waits for room in the info FIFO (never happens: see dataflow()). The level is looked at one
        # cycle late, so the hold is not behind the FIFO's level logic: with at most `in_flight` entries a cycle
        # ago there are at most in_flight + 1 now, and the FIFO (in_flight + 3, its inner memory one fewer) has
        # room for one more.
        info_tight = Signal(name="info_tight")
        m.d.sync += info_tight.eq(info.level > self._info_in_flight)
        hold_for_info = s.step_last & info_tight
        m.d.comb += [
            core.weights.valid.eq(s.busy & ~hold_for_info),
            core.acts.valid.eq(s.busy & ~hold_for_info & self.ports.acts.valid & self.ports.weights.valid),
        ]
        step_ok = Signal(name="step_ok")
        m.d.comb += step_ok.eq(core.acts.ready)
        m.d.comb += [
            self.ports.acts.ready.eq(step_ok & (self.ports.weights.valid | ~self.ports.acts.valid)),
            self.ports.weights.ready.eq(step_ok & (self.ports.acts.valid | ~self.ports.weights.valid)),
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
                    real[i][b].eq(s.row_real[i] & s.lane_real[b]),
                    core.acts.payload[i][b].eq(Mux(real[i][b], self.ports.acts.payload[i][b], 0)),
                ]
        m.d.comb += [
            core.weights.payload.entries.eq(self.ports.weights.payload),
            core.weights.payload.last.eq(s.step_last),
        ]
        return real

    def _sequencer(self, m, s, fire):
        """The sequencer's walk: per step the next K-block, M-tile, N-tile or the end of the job. Returns "the job's
        last step now". One step per cycle."""
        rows, cols, block = self._cfg.rows, self._cfg.cols, self._cfg.block
        job_done_step = fire & s.step_last & s.m_last & s.n_last

        with m.If(fire):
            with m.If(s.step_last):
                m.d.sync += [s.t.eq(0), s.step_last.eq(s.j_steps == 1)]
                self._track(m, s, k_left=s.j_k)
                with m.If(s.m_last):
                    self._track(m, s, m_rem=s.j_m, n_rem=s.n_rem - cols)
                    with m.If(s.n_last):
                        m.d.sync += s.busy.eq(0)
                with m.Else():
                    self._track(m, s, m_rem=s.m_rem - rows)
            with m.Else():
                m.d.sync += [s.t.eq(s.t + 1), s.step_last.eq(s.t + 2 == s.j_steps)]
                self._track(m, s, k_left=s.k_left - block)
        return job_done_step

    def _track(self, m, s, *, m_rem=None, k_left=None, n_rem=None):
        """Load ``m_rem``/``k_left``/``n_rem`` with the given values and their ``row_real``/``lane_real``/
        ``col_real`` masks with them. 1 cycle."""
        cfg = self._cfg
        for value, reg, mask, width, last in ((m_rem, s.m_rem, s.row_real, cfg.rows, s.m_last),
                                              (k_left, s.k_left, s.lane_real, cfg.block, None),
                                              (n_rem, s.n_rem, s.col_real, cfg.cols, s.n_last)):
            if value is not None:
                m.d.sync += [reg.eq(value), mask.eq(Cat(value > i for i in range(width)))]
                if last is not None:
                    m.d.sync += last.eq(value <= width)

    def _start(self, m, s, desc):
        """Start the sequencer at the first step of job ``desc``. 1 cycle."""
        cfg = self._cfg
        log_block = cfg.block.bit_length() - 1
        m.d.sync += [s.busy.eq(1), s.j_m.eq(desc.m), s.j_k.eq(desc.k),
                     s.j_steps.eq((desc.k + cfg.block - 1) >> log_block),
                     s.t.eq(0), s.step_last.eq(desc.k <= cfg.block)]
        self._track(m, s, k_left=desc.k, m_rem=desc.m, n_rem=desc.n)
        if cfg.shift_bits:
            m.d.sync += s.j_shift.eq(desc.shift)

    def _tile_info(self, m, info, s, fire):
        """The tile info (valid rows and columns, job end, shift) into the FIFO with the tile's last step, for its
        result rows. Written as the last step enters; readable the next cycle."""
        w_info = data.View(self._info_layout, info.w_data)
        m.d.comb += [
            w_info.m_valid.eq(s.m_valid), w_info.n_valid.eq(s.n_valid), w_info.job_end.eq(s.m_last & s.n_last),
            w_info.rows_real.eq(s.row_real),
            info.w_en.eq(fire & s.step_last),
        ]
        if self._cfg.shift_bits:
            m.d.comb += w_info.shift.eq(s.j_shift)

    def _output(self, m, core, info):
        """The output: a skid register after the core, then drop a tile's padded rows (the others go to the front
        end's ReLU/requantization and ``results``); the tile's info leaves the FIFO with its last row. Returns the
        tile info, the row counter and the row. Latency 0 (a row passes the empty skid register
        combinationally)."""
        cfg = self._cfg
        rows = cfg.rows
        r_info = data.View(self._info_layout, info.r_data)
        o_row = Signal(range(rows), name="o_row")
        # The skid register decouples the core's enable (which gates every PE register) from the output: the core
        # advances exactly when the skid register is empty (advance_on_ready), so the enable is that register alone,
        # not the PEs' done flags; a row the output cannot take waits there.
        # (kept as "empty", not "full": an inverted enable would keep the DSP packer from moving the PEs' registers
        # into the DSP blocks, gen/synth/ecp5_dsp.py)
        skid_empty = Signal(name="skid_empty", init=1)
        skid = Signal.like(core.results.payload, name="skid")
        m.d.comb += core.results.ready.eq(skid_empty)
        head_valid = ~skid_empty | core.results.valid
        head = Mux(skid_empty, core.results.payload, skid)
        drop = ~r_info.rows_real.bit_select(o_row, 1)
        m.d.comb += self.ports.results.valid.eq(head_valid & ~drop)
        out_row = Signal.like(core.results.payload, name="out_row")
        m.d.comb += out_row.eq(head)
        consumed = head_valid & (drop | self.ports.results.ready)
        with m.If(skid_empty):
            # an empty register copies the core's row in every cycle (its enable is the one register skid_empty,
            # not the output's drop/ready logic); it is kept when the row is not consumed
            m.d.sync += skid.eq(core.results.payload)
            with m.If(core.results.valid & ~consumed):
                m.d.sync += skid_empty.eq(0)
        with m.Elif(consumed):
            m.d.sync += skid_empty.eq(1)
        with m.If(consumed):
            m.d.sync += o_row.eq(Mux(o_row == rows - 1, 0, o_row + 1))
        m.d.comb += info.r_en.eq(consumed & (o_row == rows - 1))
        return r_info, o_row, out_row

    def _counters(self, m, s, step_ok):
        """The output-stationary ``stall_input`` and ``stall_weight`` (docs/gemm.md "Output-stationary dataflow").
        1 cycle (registered)."""
        with m.If(step_ok & ~(self.ports.acts.valid & self.ports.weights.valid)):
            m.d.sync += self.ports.stall_input.eq(self.ports.stall_input + 1)
        # the analogue of WS's weight stall: a job cannot take a step in a cycle not stalled on output (a short
        # tile's last step held for the output spacing, or the core held by a full skid register)
        with m.If(s.busy & ~step_ok & ~(self.ports.results.valid & ~self.ports.results.ready)):
            m.d.sync += self.ports.stall_weight.eq(self.ports.stall_weight + 1)

    def _mac_counters(self, m, s, fire):
        """``macs``/``zero_skips``: a step's MAC slots on real positions (row < M, column < N, K position < K),
        split by whether the selected activation is zero. Three registered stages (the per-K-block counts over
        rows with the step's indices, the per-step sums, the counters), four with ``pe_pipeline >= 2`` (the
        slots' picks registered before the per-step sums), five with ``pe_pipeline >= 3`` (the sum in groups of 4
        slots first), so a step counts 3 (4, 5) cycles after it enters."""
        cfg = self._cfg
        rows, cols, block, keep = cfg.rows, cfg.cols, cfg.block, cfg.keep
        # with pe_pipeline >= 2 (first result row cols + 3 or more cycles after the last step) the slots' picks get
        # a register of their own, so the `rows·cols·keep`-slot sum is not behind the index mux
        picks_registered = cfg.pe_pipeline >= 2
        acts = self.ports.acts.payload
        nz_a = [Signal(range(rows + 1), name=f"nz_b{b}") for b in range(block)]
        z_a = [Signal(range(rows + 1), name=f"z_b{b}") for b in range(block)]
        idx_a = Signal.like(self.ports.weights.payload, name="w_step")
        cols_a = Signal(cols, name="cols_real")
        # indices and columns are taken whenever a weight beat is offered (they only matter beside non-zero counts),
        # so the step's transfer enables only the counts; an idle port's payload (X in simulation) never enters
        with m.If(self.ports.weights.valid):
            m.d.sync += [idx_a.eq(self.ports.weights.payload), cols_a.eq(s.col_real)]
        with m.If(fire):
            # a step's counts by K position; the multiplier slots pick theirs in the next stage
            for b in range(block):
                real = [s.row_real[i] & s.lane_real[b] for i in range(rows)]
                m.d.sync += [nz_a[b].eq(tree_sum(real[i] & (acts[i][b] != 0) for i in range(rows))),
                             z_a[b].eq(tree_sum(real[i] & (acts[i][b] == 0) for i in range(rows)))]
        with m.Else():
            m.d.sync += [nz.eq(0) for nz in nz_a] + [z.eq(0) for z in z_a]
        slot_nz, slot_z = [], []
        for j in range(cols):
            for k in range(keep):
                b = idx_a[j][k].index if cfg.sparse else k
                pick_nz = Signal(range(rows + 1), name=f"nz_c{j}_s{k}")
                pick_z = Signal(range(rows + 1), name=f"z_c{j}_s{k}")
                picks = [pick_nz.eq(Mux(cols_a[j], Array(nz_a)[b], 0)), pick_z.eq(Mux(cols_a[j], Array(z_a)[b], 0))]
                if picks_registered:
                    m.d.sync += picks
                else:
                    m.d.comb += picks
                slot_nz.append(pick_nz)
                slot_z.append(pick_z)
        if cfg.pe_pipeline >= 3:
            # first result row >= cols + 4 cycles after the last step: the slots' sum in two registered stages
            # (groups of 4 slots, then the groups), a step counts 5 cycles after it enters
            slot_nz, slot_z = (self._group_sums(m, slots, name) for slots, name in ((slot_nz, "nz"), (slot_z, "z")))
        step_macs = Signal(range(rows * cols * keep + 1), name="step_macs")
        step_zeros = Signal.like(step_macs, name="step_zeros")
        ports = self.ports
        m.d.sync += [step_macs.eq(tree_sum(slot_nz)), step_zeros.eq(tree_sum(slot_z)),
                     ports.macs.eq(ports.macs + step_macs), ports.zero_skips.eq(ports.zero_skips + step_zeros)]

    @staticmethod
    def _group_sums(m, values, name):
        """The sums of ``values`` in groups of 4, each in a register (1 cycle)."""
        sums = []
        for g in range(0, len(values), 4):
            group = values[g:g + 4]
            total = Signal(range(sum((1 << len(v)) - 1 for v in group) + 1), name=f"{name}_g{g // 4}")
            m.d.sync += total.eq(tree_sum(group))
            sums.append(total)
        return sums
