"""The GEMM engines' one front end: ports, descriptor accept/reject, output stage and the counters both dataflows
count alike. The dataflow (weight-stationary :class:`hw.gemm.engine.GemmEngine`, output-stationary
:class:`hw.gemm.os_engine.GemmOSEngine`) is what each engine supplies (:meth:`GemmFrontEnd.dataflow`)."""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.gemm.beats import ERROR_FIELDS, desc_layout, result_layout

__all__ = ["GemmFrontEnd", "COUNTERS", "descriptor_errors", "output_stage"]

# performance counters, in port order (docs/gemm.md "Counters")
COUNTERS = ("cycles", "busy_cycles", "stall_input", "stall_output", "stall_weight", "macs", "zero_skips",
            "jobs_done", "jobs_rejected")


def _clamp(m, target, value, bits):
    """``target = value`` clamped to the signed ``bits`` range (combinational)."""
    hi, lo = (1 << (bits - 1)) - 1, -(1 << (bits - 1))
    with m.If(value > hi):
        m.d.comb += target.eq(hi)
    with m.Elif(value < lo):
        m.d.comb += target.eq(lo)
    with m.Else():
        m.d.comb += target.eq(value)


def descriptor_errors(m, cfg, desc):
    """Cause bits (:data:`ERROR_FIELDS` order) of descriptor ``desc``: a dimension outside 1 … max, a shift ≥
    ``acc_bits``. Combinational; shared by both dataflows."""
    bad = Signal(len(ERROR_FIELDS), name="bad")
    m.d.comb += [
        bad[0].eq((desc.m == 0) | (desc.m > cfg.max_m)),
        bad[1].eq((desc.k == 0) | (desc.k > cfg.max_k)),
        bad[2].eq((desc.n == 0) | (desc.n > cfg.max_n)),
        bad[3].eq((desc.shift >= cfg.acc_bits) if cfg.shift_bits else 0),
    ]
    return bad


def output_stage(m, cfg, sums, *, shift, n_valid, out):
    """``out[c] = post(sums[c])`` for ``c < n_valid``, else 0 (combinational; shared by both dataflows).

    ``post`` is ReLU (if ``cfg.relu``), then requantization ``(x + 2**(s-1)) >> s`` saturated to signed
    ``out_bits`` (if ``cfg.out_bits`` is set).
    """
    for c in range(cfg.n_tile):
        x = sums[c]
        if cfg.relu:
            x = Mux(x < 0, 0, x)
        if cfg.out_bits is not None:
            wide = Signal(signed(cfg.acc_bits + 1), name=f"round_c{c}")
            half = (Const(1, cfg.acc_bits + 1) << shift) >> 1
            m.d.comb += wide.eq(x + half)
            shifted = Signal(signed(cfg.acc_bits + 1), name=f"shifted_c{c}")
            m.d.comb += shifted.eq(wide >> shift)
            y = Signal(signed(cfg.out_bits), name=f"requant_c{c}")
            _clamp(m, y, shifted, cfg.out_bits)
            x = y
        m.d.comb += out[c].eq(Mux(c < n_valid, x, 0))


class GemmFrontEnd(wiring.Component):
    """The part of a GEMM engine that does not depend on its dataflow; the engines derive from it.

    - Ports: ``desc``, ``weights``, ``acts``, ``results``, the counters :data:`COUNTERS` and ``error``
      (docs/gemm.md "Interface"); the dataflow gives the ``weights`` and ``acts`` beat layouts.
    - Descriptor accept/reject: ``desc.ready`` is the dataflow's ``desc_ready``; a descriptor transfers when it is
      high with ``desc.valid``; a bad one (:func:`descriptor_errors`) counts in ``jobs_rejected`` and sets ``error``,
      a good one calls the dataflow's ``start``. 1 cycle.
    - Output stage: :func:`output_stage` on the dataflow's finished row (``sums``, ``shift``, ``n_valid``) into
      ``results.payload``; the dataflow drives ``results.valid`` and consumes ``results.ready``.
    - Counters: ``cycles`` (every cycle), ``busy_cycles`` (the dataflow's ``busy``: an activation row or step
      enters the array), ``stall_output`` (``results`` valid and not ready), ``jobs_done`` (a result transfers
      with the dataflow's ``job_end``); the dataflow counts ``stall_input``, ``stall_weight``, ``macs`` and
      ``zero_skips``, whose meaning is its own. Registered: 1 cycle.

    A dataflow overrides :meth:`dataflow`, which builds everything else (array core, sequencing, accumulation) and
    returns the hooks above. Its synchronous assignments come before the front end's, so a descriptor taken in the
    cycle a job ends starts the next job.

    Parameters
    ----------
    config : gen.gemm.config.GemmConfig
        The validated configuration.
    weights, acts : Layout
        The dataflow's weight and activation beat layouts.
    """

    def __init__(self, config, *, weights, acts):
        self._cfg = cfg = config
        super().__init__({
            "desc": In(stream.Signature(desc_layout(cfg))),
            "weights": In(stream.Signature(weights)),
            "acts": In(stream.Signature(acts)),
            "results": Out(stream.Signature(result_layout(cfg))),
            **{name: Out(cfg.counter_bits) for name in COUNTERS},
            "error": Out(len(ERROR_FIELDS)),
        })

    @property
    def latency(self):
        """``GemmConfig.latency``: ``rows + cols + pe_pipeline`` (each engine says from which event)."""
        return self._cfg.latency

    def dataflow(self, m):
        """Build the dataflow into ``m``; return a namespace with ``desc_ready``, ``start(m, desc)``, ``busy``,
        ``job_end``, ``sums``, ``shift`` (a value or 0) and ``n_valid`` (see the class docstring)."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        hooks = self.dataflow(m)
        self._accept(m, hooks)
        output_stage(m, self._cfg, hooks.sums, shift=hooks.shift, n_valid=hooks.n_valid, out=self.results.payload)
        self._front_counters(m, hooks)
        return m

    def _accept(self, m, hooks):
        """``desc.ready`` and the check: a bad descriptor counts in ``jobs_rejected`` and sets ``error``, a good one
        starts the dataflow. 1 cycle."""
        m.d.comb += self.desc.ready.eq(hooks.desc_ready)
        bad = descriptor_errors(m, self._cfg, self.desc.payload)
        # the transfer condition is the dataflow's ready and the port's valid (not through desc.ready)
        with m.If(hooks.desc_ready & self.desc.valid):
            with m.If(bad.any()):
                m.d.sync += [self.jobs_rejected.eq(self.jobs_rejected + 1), self.error.eq(bad)]
            with m.Else():
                hooks.start(m, self.desc.payload)

    def _front_counters(self, m, hooks):
        """``cycles``, ``busy_cycles``, ``stall_output``, ``jobs_done``. 1 cycle (registered)."""
        m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(hooks.busy):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        with m.If(self.results.valid & ~self.results.ready):
            m.d.sync += self.stall_output.eq(self.stall_output + 1)
        with m.If(self.results.valid & self.results.ready & hooks.job_end):
            m.d.sync += self.jobs_done.eq(self.jobs_done + 1)
