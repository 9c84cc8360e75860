"""cocotb testbench for the GEMM engine: host driver, golden model, scoreboard, counter and cycle-model checks.

The host driver (:mod:`sim.gemm.driver`) turns each job into descriptor, weight and activation beats; the three
streams are driven independently (the engine overlaps weight loads with computation), the results are compared
beat by beat with :func:`sim.gemm.golden.gemm_engine`, and the counters with the golden MAC counts, with what
the ports showed (transfers, stalls) and, for an ideal host, with the cycle model :mod:`gen.gemm.perf`. Both
dataflows: for ``dataflow = "os"`` the driver produces the joined K-block steps and the port-side stall checks use
both input readies (README "GEMM engine", "Output-stationary dataflow").
"""

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from hw.gemm.beats import results_from_beats
from hw.gemm.front import COUNTERS
from sim.gemm.driver import plan_gemm, result_words
from sim.gemm import golden
from sim.systolic.golden import random_acts, random_nm_weights
from gen.gemm import perf
from sim.common.testbench import Testbench

__all__ = ["GemmEngineTB"]

# Cycles the cycle model does not cover: a descriptor the engine rejects (decoded, flagged, dropped).
REJECT_CYCLES = 4


class GemmEngineTB(Testbench):
    """Drives one ``GemmEngine`` DUT (either ``cfg.dataflow``) and checks it.

    Parameters
    ----------
    dut : cocotb handle
    cfg : gen.gemm.config.GemmConfig
    seed, gap, stall
        :class:`~sim.common.testbench.Testbench`'s (``gap`` applies to each input stream).
    """

    SOURCES = ("desc", "weights", "acts")
    SINKS = ("results",)
    RESULTS = "results"
    COUNTERS = COUNTERS
    STATUS = ("error",)

    def __init__(self, dut, cfg, *, seed, gap=0.0, stall=0.0):
        super().__init__(dut, seed=seed, gap=gap, stall=stall,
                         formatter=lambda w: "C row " + str(results_from_beats(cfg, [w])[0].tolist()))
        self.cfg = cfg
        self.jobs = []                 # (A, W, shift, plan)
        self.bad = 0
        self._input_stalls = []        # cycles with acts__ready && !acts__valid
        self._no_rows = []             # cycles not frozen by backpressure with acts__ready low
        self._desc_ok = []             # per descriptor sent: True for a job, False for one to be rejected

    async def start(self, clock_ns=10):
        """:meth:`Testbench.start`, then watch the input readies (for the stall counters)."""
        await super().start(clock_ns)
        cocotb.start_soon(self._watch_inputs())

    async def _watch_inputs(self):
        dut = self.dut
        was_frozen = False
        while True:
            await ReadOnly()
            ready = int(dut.acts__ready.value)
            stalled = ready and not int(dut.acts__valid.value)
            if self.cfg.dataflow == "os":
                # joined streams: a ready stream without a beat is waiting (for itself or with the other);
                # both readies low means the engine could take no step
                w_ready = int(dut.weights__ready.value)
                stalled = stalled or (w_ready and not int(dut.weights__valid.value))
                ready = ready or w_ready
            if stalled:
                self._input_stalls.append(self.counter.cycle + 1)
            output_stall = bool(int(dut.results__valid.value) and not int(dut.results__ready.value))
            # WS: a result the port does not take waits in the skid register, and the core stands still the cycle
            # after (docs/gemm.md "Backpressure"), so that cycle is frozen by backpressure too
            frozen = output_stall or (was_frozen and self.cfg.dataflow == "ws")
            was_frozen = output_stall
            if not ready and not frozen:
                self._no_rows.append(self.counter.cycle + 1)
            await RisingEdge(dut.clk)

    def random_job(self, m, k, n, *, density=0.8, shift=None):
        """Random (A, W, shift) of the given shape: keep:block weights (along N with ``weight_axis = "n"``),
        extremes and zeros included."""
        cfg = self.cfg
        if golden.n_axis(cfg):
            npad = -(-n // cfg.block) * cfg.block
            W = random_nm_weights(self.rng, k=npad, n=k, keep=cfg.keep, block=cfg.block,
                                  weight_bits=cfg.weight_bits, density=density)[:n].T.copy()
        else:
            kp = -(-k // cfg.block) * cfg.block
            W = random_nm_weights(self.rng, k=kp, n=n, keep=cfg.keep, block=cfg.block, weight_bits=cfg.weight_bits,
                                  density=density)[:k]
        A = random_acts(self.rng, m=m, k=k, act_bits=cfg.act_bits, act_signed=cfg.act_signed)
        if cfg.act_keep:
            A = golden.act_stimulus(self.rng, A, act_bits=cfg.act_bits, act_signed=cfg.act_signed, block=cfg.block)
        if shift is None:
            shift = int(self.rng.integers(0, min(cfg.acc_bits, 14))) if cfg.out_bits is not None else 0
        return A, W, shift

    def random_shape(self):
        cfg = self.cfg
        return tuple(int(self.rng.integers(1, top + 1)) for top in (cfg.max_m, cfg.max_k, cfg.max_n))

    def submit(self, jobs, bad_descs=()):
        """Queue ``bad_descs`` (descriptor beats the engine must reject) and then every (A, W, shift) job."""
        cfg = self.cfg
        descs, weights, acts, shapes = list(bad_descs), [], [], []
        self.bad += len(bad_descs)
        self._desc_ok += [False] * len(bad_descs) + [True] * len(jobs)
        for A, W, shift in jobs:
            plan = plan_gemm(cfg, A, W, shift)
            self.scoreboard.expect(result_words(cfg, plan, golden.gemm_engine(cfg, A, W, shift)))
            self.jobs.append((A, W, shift, plan))
            shapes.append((plan.m, plan.k, plan.n))
            descs.append(plan.desc)
            weights += plan.weights
            acts += plan.acts
        steps = [golden.act_steps(cfg, A) for A, _, _ in jobs]
        self.allow((perf.predict(cfg, shapes, steps=steps).cycles if shapes else 0) + REJECT_CYCLES * len(bad_descs))
        for name, beats in (("desc", descs), ("weights", weights), ("acts", acts)):
            self.sources[name].send_nowait(beats)

    async def finish(self):
        """Wait for every result; check the count, nothing extra, and the counters the ports and golden model
        determine. Returns the counter increments (and ``"error"``, the error bits at the end)."""
        cfg = self.cfg
        beats = sum(plan.result_beats for *_, plan in self.jobs)
        rows = sum(len(plan.acts) for *_, plan in self.jobs)
        # WS: one step per row and N-tile, or the row's steps (lossless activation sparsity); OS: its beats
        steps = (sum(int(golden.act_steps(cfg, A).sum()) * plan.n_tiles for A, *_, plan in self.jobs)
                 if cfg.dataflow == "ws" else rows)
        await self.wait_results(beats)
        await self.settle(cfg.latency + 3)
        self.scoreboard.assert_done(beats)
        end = await self.read_counters()
        start = self.counters_at_start
        got = self.counter_deltas(end, cfg.counter_bits)
        got["error"] = end["error"]
        macs = skips = 0
        for A, W, _, _ in self.jobs:
            a, b = golden.mac_counts(cfg, A, W)
            macs, skips = macs + a, skips + b
        expect = {"macs": macs, "zero_skips": skips, "busy_cycles": steps,
                  "stall_output": self.results.stall_cycles, "jobs_done": len(self.jobs), "jobs_rejected": self.bad,
                  "stall_input": sum(start["at"] < c <= end["at"] for c in self._input_stalls),
                  "stall_weight": self._weight_stalls(start["at"], end["at"])}
        if self.lossless:
            # a row's later steps hold acts__ready low too: the ports alone do not show stall_weight here (it is
            # checked against the cycle model in ideal runs)
            del expect["stall_weight"]
        for name, value in expect.items():
            assert got[name] == value, f"counter {name} = {got[name]}, expected {value}"
        assert len(self.sources["acts"].handshake_cycles) == rows
        return got

    def _weight_stalls(self, t0, t1):
        """``stall_weight`` from the ports: cycles in (t0, t1] not frozen by backpressure with ``acts__ready`` low
        while a job is loading. WS: the weight buffer hides when the loader takes a beat, so the window runs from
        the cycle after the descriptor transfers to the first row of the job's last tile (the engine wants rows
        from the cycle after the last load, so the extra cycles hold no stall).
        OS: from the cycle after the descriptor to its last weight beat, with ``acts__ready`` and
        ``weights__ready`` both low (a held step)."""
        descs = [c for c, ok in zip(self.sources["desc"].handshake_cycles, self._desc_ok) if ok]
        os_ = self.cfg.dataflow == "os"
        beats = self.sources["weights" if os_ else "acts"].handshake_cycles
        at, loading = 0, set()
        for d, (*_, plan) in zip(descs, self.jobs):
            if os_:
                at += len(plan.weights)
                end = beats[at - 1]
            else:
                end = beats[at + len(plan.acts) - plan.tile_beats[-1]]
                at += len(plan.acts)
            loading.update(range(d + 1, end + 1))
        return sum(t0 < c <= t1 and c in loading for c in self._no_rows)

    @property
    def lossless(self):
        """Lossless activation sparsity: a row may take several steps (cycles) in the engine."""
        return bool(self.cfg.act_keep) and self.cfg.act_mode == "lossless"

    def first_steps(self, A, plan):
        """Steps of the first row of each of the job's tiles (tile order: N-tiles, then K-tiles)."""
        steps = golden.act_steps(self.cfg, A)
        return [int(steps[kk, 0]) for _ in range(plan.n_tiles) for kk in range(plan.k_tiles)]

    def check_model(self, got):
        """For an ideal host: every result cycle and every data-independent counter equal the cycle model."""
        pred = perf.predict(self.cfg, [(p.m, p.k, p.n) for *_, p in self.jobs],
                            steps=[golden.act_steps(self.cfg, A) for A, *_ in self.jobs])
        d0 = self.sources["desc"].handshake_cycles[self.bad]
        assert [c - d0 for c in self.results.handshake_cycles] == pred.result_cycles, "result cycles differ"
        acts = self.sources["acts"].handshake_cycles
        starts, at = [], 0
        for A, *_, p in self.jobs:
            # a row transfers with its last step: the tile started that row's steps earlier
            firsts = self.first_steps(A, p) if self.cfg.act_keep else [1] * len(p.tile_beats)
            for beats, first in zip(p.tile_beats, firsts, strict=True):
                starts.append(acts[at] - d0 - (first - 1))
                at += beats
        assert starts == pred.row_starts, f"tile starts {starts}, model {pred.row_starts}"
        for name, value in pred.counters().items():
            if name != "cycles":
                assert got[name] == value, f"counter {name} = {got[name]}, cycle model {value}"
        assert self.results.handshake_cycles[-1] - d0 + 1 == pred.cycles
        return pred
