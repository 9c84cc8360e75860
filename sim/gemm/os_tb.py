"""cocotb testbench for the output-stationary core ``SparseOSArray``: host driver, golden model, scoreboard, counters.

Built like :mod:`sim.systolic.tb`: stream agents from :mod:`sim.common.stream` drive the ``acts`` and ``weights``
ports (independent gap patterns: the core joins them) and monitor ``results``; :mod:`sim.gemm.os_golden`
predicts every result beat and the zero-skip count, and a :class:`~sim.common.scoreboard.Scoreboard` compares each
beat as it leaves. Beats come from :mod:`hw.gemm.os_beats`, the one definition of the formats.
"""

import numpy as np

from hw.gemm import os_beats
from sim.gemm import os_golden as golden
from gen.gemm import os_perf as perf
from sim.systolic.tb import ArrayTB

__all__ = ["OSArrayTB"]


class OSArrayTB(ArrayTB):
    """Drives one ``SparseOSArray`` DUT and checks it against the golden model.

    ``p`` (:class:`sim.gemm.os_core.OSCoreParams`) holds the parameters the DUT was generated from; the other
    parameters are :class:`~sim.systolic.tb.ArrayTB`'s (``gap`` applies to each input source independently: the
    core joins the two streams).
    """

    def __init__(self, dut, p, *, seed, gap=0.0, stall=0.0):
        self.p = p
        self.counter_bits = p.counter_bits
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
        acts, weights, k_blocks = [], [], []
        for W, A in tiles:
            a, w = self.queue_tile(W, A)
            acts += a
            weights += w
            k_blocks.append(self.k_blocks[-1])
        self.allow(perf.stream_cycles(self.p, k_blocks))
        await self.send({"acts": acts, "weights": weights})      # both sources at once: the core joins them

    def busy_spans(self):
        # a tile keeps the core busy from its first step to its last result row
        p, acts, res = self.p, self.sources["acts"].handshake_cycles, self.results.handshake_cycles
        first = np.cumsum([0] + self.k_blocks[:-1])
        return [(acts[f], res[(k + 1) * p.rows - 1]) for k, f in enumerate(first)]

    def check_timing(self):
        p, acts, res = self.p, self.sources["acts"].handshake_cycles, self.results.handshake_cycles
        assert acts == self.sources["weights"].handshake_cycles, \
            "the activation and weight streams did not transfer together"
        for k, last in enumerate(np.cumsum(self.k_blocks) - 1):
            first_row = res[k * p.rows]
            assert first_row - acts[last] >= perf.latency(p), \
                f"tile {k}: row 0 left {first_row - acts[last]} cycles after its last step"
