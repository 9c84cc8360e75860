"""Job boundaries of a GEMM engine's result stream, for the AXI4-Stream ``tlast`` of ``m_axis_results``."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.checks import check_attrs, check_int
from hw.gemm.beats import desc_layout
from hw.gemm.front import descriptor_errors

__all__ = ["JobTracker"]


class JobTracker(wiring.Component):
    """Follows a GEMM engine's accepted descriptors and marks the last result beat of each job.

    A job ``(M, K, N)`` answers ``M · ceil(N / cols)`` result beats (M rows per N-tile); a rejected descriptor
    (the engine's own :func:`hw.gemm.front.descriptor_errors`) answers none and is not tracked. Up to ``depth``
    accepted jobs whose results have not all left are remembered; ``room`` is low when that many are, and the
    wrapper then holds the next descriptor back.

    Parameters
    ----------
    config : gen.gemm.config.GemmConfig
        The engine's config (``max_m``, ``max_n``, ``cols`` and the descriptor layout).
    depth : int
        Jobs remembered (default 4).

    Members
    -------
    fire : In(1)
        A descriptor transfers this cycle; ``beat`` : In(descriptor layout) is it.
    out_fire : In(1)
        A result beat transfers this cycle.
    last : Out(1)
        The result beat offered now is the last of its job (combinational, 0 cycles).
    room : Out(1)
        Another descriptor may be sent.
    """

    def __init__(self, config, *, depth=4):
        check_attrs("config", config, ("max_m", "max_k", "max_n", "cols", "shift_bits", "acc_bits"), "a GemmConfig")
        check_int("depth", depth, 1, 64)
        self._cfg, self._depth = config, depth
        super().__init__({"fire": In(1), "beat": In(desc_layout(config)), "out_fire": In(1), "last": Out(1),
                          "room": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        mb, nb = (cfg.max_m + 1).bit_length(), (cfg.max_n + 1).bit_length()
        m.submodules.fifo = fifo = SyncFIFO(width=mb + nb, depth=self._depth)
        bad = descriptor_errors(m, cfg, self.beat)
        m.d.comb += [fifo.w_en.eq(self.fire & (bad == 0)), fifo.w_data.eq(self.beat.m | (self.beat.n << mb)),
                     self.room.eq(fifo.w_rdy)]
        job_m, job_n = fifo.r_data[:mb], fifo.r_data[mb:]
        row = Signal(range(cfg.max_m + 1))                # result row within the N-tile
        n_done = Signal(range(cfg.max_n + cfg.cols + 1))  # columns of the job's finished N-tiles
        tile_end = row == job_m - 1
        m.d.comb += self.last.eq(tile_end & (n_done + cfg.cols >= job_n))
        with m.If(self.out_fire):
            m.d.sync += row.eq(row + 1)
            with m.If(tile_end):
                m.d.sync += [row.eq(0), n_done.eq(n_done + cfg.cols)]
                with m.If(self.last):
                    m.d.sync += n_done.eq(0)
                    m.d.comb += fifo.r_en.eq(1)
        return m
