"""cocotb testbench for the output-stationary core ``SparseOSArray``: host driver, golden model, scoreboard, counters.

Built like :mod:`sim.systolic.tb`: stream agents from :mod:`sim.common.stream` drive the ``acts`` and ``weights``
ports (independent gap patterns: the core joins them) and monitor ``results``; :mod:`sim.gemm.os_golden`
predicts every result beat and the zero-skip count, and a :class:`~sim.common.scoreboard.Scoreboard` compares each
beat as it leaves. Beats come from :mod:`hw.gemm.os_beats`, the one definition of the formats.
"""


import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from hw.gemm import os_beats
from sim.gemm import os_golden as golden
from gen.gemm import os_perf as perf
from sim.systolic.tb import COUNTERS, ArrayTB

__all__ = ["OSArrayTB"]

class OSArrayTB(ArrayTB):
    """Drives one ``SparseOSArray`` DUT and checks it against the golden model.

    ``p`` (:class:`sim.gemm.os_core.OSCoreParams`) holds the parameters the DUT was generated from; the other
    parameters are :class:`~sim.systolic.tb.ArrayTB`'s (``gap`` applies to each input driver independently: the
    core joins the two streams).
    """

    def __init__(self, dut, p, *, seed, gap=0.0, stall=0.0):
        self.p = p
        self.k_blocks = []           # T of every tile sent, in order
        super().__init__(dut, seed=seed, gap=gap, stall=stall,
                         formatter=lambda word: "C row " + str(os_beats.os_results_from_beats(p, [word])[0].tolist()))

    def random_tile(self, k_blocks, density=0.75):
        """A random ``(W, A)`` tile of ``k_blocks`` K-blocks."""
        return golden.random_os_tile(self.rng, self.p, k_blocks, density=density)

    def queue_tile(self, W, A):
        """Queue one tile's steps on both input streams; its expected result rows go to the scoreboard."""
        p = self.p
        values, indices, C, skips = golden.os_tile(p, W, A)
        self.scoreboard.expect(os_beats.os_result_beats(p, C))
        self.expected_skips += skips
        self.k_blocks.append(len(values))
        return os_beats.os_act_beats(p, A), os_beats.os_weight_beats(p, values, indices)

    async def run_tiles(self, tiles):
        """Send ``tiles`` (a list of ``(W, A)``) back to back; returns once every step has transferred."""
        acts, weights = [], []
        for W, A in tiles:
            a, w = self.queue_tile(W, A)
            acts += a
            weights += w
        send_weights = cocotb.start_soon(self.weights.send(weights))    # both drivers run at once
        await self.acts.send(acts)
        await send_weights

    async def finish(self, timeout_cycles=None):
        """Wait for every expected result, then check the count, the counters and the stream timing."""
        p = self.p
        beats = p.rows * len(self.k_blocks)
        if timeout_cycles is None:
            timeout_cycles = 50 * (sum(self.k_blocks) + beats + p.rows + p.cols) + 1000
        await self.results.wait_for(beats, timeout_cycles)
        for _ in range(3):                     # anything extra would show up here
            await RisingEdge(self.dut.clk)
        self.scoreboard.assert_done(beats)
        end = await self.read_counters()
        start = self.counters_at_start
        got = {name: (end[name] - start[name]) % (1 << p.counter_bits) for name in COUNTERS}
        acts, weights, res = (self.acts.handshake_cycles, self.weights.handshake_cycles,
                              self.results.handshake_cycles)
        assert acts == weights, "the activation and weight streams did not transfer together"
        assert got["cycles"] == end["at"] - start["at"], \
            f"cycles counter advanced {got['cycles']}, the clock ticked {end['at'] - start['at']} times"
        assert got["zero_skips"] == self.expected_skips, \
            f"zero_skips counter {got['zero_skips']}, golden {self.expected_skips}"
        assert got["stall_cycles"] == self.results.stall_cycles, \
            f"stall_cycles counter {got['stall_cycles']}, monitor saw {self.results.stall_cycles}"
        # busy: cycles from a tile's first step to its last result beat (union over tiles), not stalled.
        covered, first = set(), 0
        for k, t in enumerate(self.k_blocks):
            covered.update(range(acts[first], res[(k + 1) * p.rows - 1] + 1))
            first += t
        assert got["busy_cycles"] == len(covered) - self.results.stall_cycles, \
            f"busy_cycles counter {got['busy_cycles']}, spec gives {len(covered) - self.results.stall_cycles}"
        lasts = np.cumsum(self.k_blocks) - 1
        for k, last in enumerate(lasts):
            first_row = res[k * p.rows]
            assert first_row - acts[last] >= perf.latency(p), \
                f"tile {k}: row 0 left {first_row - acts[last]} cycles after its last step"
        return got
