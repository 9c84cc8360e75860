"""cocotb testbench for ``SparseSystolicArray``: host driver, golden model, scoreboard and counter checks.

Structured like cocotb's ``examples/matrix_multiplier``: stream agents from :mod:`sim.common.stream` drive and
monitor the ports, :mod:`sim.systolic.golden` predicts every result beat and the zero-skip count, and a
:class:`~sim.common.scoreboard.Scoreboard` compares each beat as it leaves. Everything about beats comes from
:mod:`hw.systolic.beats`, the one definition of the formats.
"""

from hw.systolic import beats
from sim.systolic import golden
from gen.systolic import perf
from sim.common.testbench import Testbench

__all__ = ["ArrayTB", "SystolicArrayTB"]

COUNTERS = ("cycles", "busy_cycles", "stall_cycles", "zero_skips")


class ArrayTB(Testbench):
    """What every array testbench shares: the ``weights``/``acts`` sources, the ``results`` sink, the counters
    (``cycles``, ``busy_cycles``, ``stall_cycles``, ``zero_skips``) and :meth:`finish`; the rest is
    :class:`~sim.common.testbench.Testbench`'s.

    Subclasses set ``counter_bits`` and implement :meth:`busy_spans` and :meth:`check_timing`.
    """

    SOURCES = ("weights", "acts")
    SINKS = ("results",)
    RESULTS = "results"
    COUNTERS = COUNTERS

    def __init__(self, dut, *, seed, gap, stall, formatter):
        super().__init__(dut, seed=seed, gap=gap, stall=stall, formatter=formatter)
        self.expected_skips = 0

    def busy_spans(self):
        """``(first, last)`` handshake cycles of each stretch the ``busy_cycles`` counter covers (they may overlap)."""
        raise NotImplementedError

    def check_timing(self):
        """Check the handshake cycles against the latency of the cycle model."""
        raise NotImplementedError

    async def finish(self):
        """Wait for every expected result, then check the count, the counters and the stream timing; returns the
        counter increments."""
        count = len(self.scoreboard.expected)
        await self.wait_results(count)
        await self.settle(3)
        self.scoreboard.assert_done(count)
        got = self.counter_deltas(await self.read_counters(), self.counter_bits)
        assert got["zero_skips"] == self.expected_skips, \
            f"zero_skips counter {got['zero_skips']}, golden {self.expected_skips}"
        stalls = self.results.stall_cycles
        assert got["stall_cycles"] == stalls, f"stall_cycles counter {got['stall_cycles']}, the sink saw {stalls}"
        covered = set()
        for first, last in self.busy_spans():
            covered.update(range(first, last + 1))
        assert got["busy_cycles"] == len(covered) - stalls, \
            f"busy_cycles counter {got['busy_cycles']}, spec gives {len(covered) - stalls}"
        self.check_timing()
        return got


class SystolicArrayTB(ArrayTB):
    """Drives one ``SparseSystolicArray`` DUT and checks it against the golden model.

    ``cfg`` (:class:`gen.systolic.config.SystolicConfig`) is the config the DUT was generated from; the other parameters
    are :class:`ArrayTB`'s.
    """

    def __init__(self, dut, cfg, *, seed, gap=0.0, stall=0.0):
        self.cfg = cfg
        self.counter_bits = cfg.counter_bits
        self.jobs = []          # (W, A) in the order sent
        super().__init__(dut, seed=seed, gap=gap, stall=stall,
                         formatter=lambda word: "C row " + str(beats.results_from_beats(cfg, [word])[0].tolist()))

    def random_job(self, m, density=0.75):
        """A random (W, A) for this config: extremes, zeros and partly filled blocks included."""
        cfg = self.cfg
        W = golden.random_nm_weights(self.rng, k=cfg.k, n=cfg.cols, keep=cfg.keep, block=cfg.block,
                                     weight_bits=cfg.weight_bits, density=density)
        A = golden.random_acts(self.rng, m=m, k=cfg.k, act_bits=cfg.act_bits, act_signed=cfg.act_signed)
        return W, A

    async def run_job(self, W, A):
        """Load W, then stream A; the expected results go to the scoreboard. Returns once A is sent."""
        cfg = self.cfg
        values, indices, C, skips = golden.array_job(cfg, W, A)
        self.scoreboard.expect(beats.result_beats(cfg, C))
        self.expected_skips += skips
        self.jobs.append((W, A))
        self.allow(perf.job_cycles(cfg, len(A)))
        await self.send({"weights": beats.weight_beats(cfg, values, indices)})
        await self.send({"acts": beats.act_beats(cfg, A)})

    def busy_spans(self):
        # each activation row keeps the array busy from its transfer to its result's
        return zip(self.sources["acts"].handshake_cycles, self.results.handshake_cycles)

    def check_timing(self):
        latencies = [r - a for a, r in zip(self.sources["acts"].handshake_cycles, self.results.handshake_cycles)]
        assert min(latencies) >= perf.latency(self.cfg), f"a result left after {min(latencies)} cycles"
