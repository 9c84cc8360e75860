"""The GEMM engine: one front end (ports, descriptor accept/reject, output stage, counters) built with a dataflow."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.gemm.beats import ERROR_FIELDS, desc_layout, result_layout
from hw.gemm.front import COUNTERS, Dataflow, descriptor_errors, output_stage
from hw.gemm.os_dataflow import OutputStationary
from hw.gemm.ws_dataflow import WeightStationary

__all__ = ["GemmEngine", "DATAFLOWS"]

# config.dataflow → the strategy class (docs/gemm.md "Dataflows")
DATAFLOWS = {"ws": WeightStationary, "os": OutputStationary}


class GemmEngine(wiring.Component):
    """``C[M × N] = A[M × K] · W[K × N]`` (+ ReLU/requantization) on a keep:block array, job by job.

    One front end for every dataflow: the ports, descriptor accept/reject, the output stage and the counters both
    dataflows count alike are here; the dataflow (:class:`hw.gemm.front.Dataflow`: weight-stationary
    :class:`hw.gemm.ws_dataflow.WeightStationary`, output-stationary :class:`hw.gemm.os_dataflow.OutputStationary`,
    chosen by ``config.dataflow``) builds the array core, sequencing and accumulation, and gives the ``weights``
    and ``acts`` beat layouts. docs/gemm.md specifies the ports, beats, timing and counters; :mod:`gen.gemm.perf`
    is the exact cycle model.

    - Descriptor accept/reject: ``desc.ready`` is the dataflow's ``desc_ready``; a descriptor transfers when it is
      high with ``desc.valid``; a bad one (:func:`hw.gemm.front.descriptor_errors`) counts in ``jobs_rejected``
      and sets ``error``, a good one starts the dataflow. 1 cycle.
    - Output stage: :func:`hw.gemm.front.output_stage` on the dataflow's finished row into ``results.payload``.
    - Counters: ``cycles`` (every cycle), ``busy_cycles`` (an activation row or step enters the array),
      ``stall_output`` (``results`` valid and not ready), ``jobs_done`` (a job's last result transfers); the
      dataflow counts ``stall_input``, ``stall_weight``, ``macs`` and ``zero_skips``, whose meaning is its own.
      Registered: 1 cycle.

    Parameters
    ----------
    config : gen.gemm.config.GemmConfig
        The validated configuration (this is the generator's top component).
    dataflow : Dataflow, optional
        The strategy; default ``DATAFLOWS[config.dataflow](config)``.

    Attributes
    ----------
    dataflow : Dataflow
    latency : int
        ``rows + cols + pe_pipeline`` cycles (``GemmConfig.latency``; the dataflow says from which event).

    Members
    -------
    desc : In(stream.Signature(desc_layout))
    weights : In(stream.Signature(the dataflow's weight beat))
    acts : In(stream.Signature(the dataflow's activation beat))
    results : Out(stream.Signature(ArrayLayout(signed(result_bits), n_tile)))
    cycles, busy_cycles, stall_input, stall_output, stall_weight, macs, zero_skips, jobs_done, jobs_rejected
        Out(counter_bits): wrapping counters since reset.
    error : Out(4)
        Cause bits (m, k, n, shift) of the most recently rejected descriptor; 0 until one is rejected.
    """

    def __init__(self, config, *, dataflow=None):
        self._MustUse__silence = True          # until it is built: a refused argument leaves no unused design
        if getattr(config, "kind", None) != "gemm":
            raise TypeError(f"config = {config!r} is not a GemmConfig: allowed gen.gemm.config.GemmConfig")
        if dataflow is None:
            dataflow = DATAFLOWS[config.dataflow](config)
        elif not isinstance(dataflow, Dataflow):
            allowed = ", ".join(c.__name__ for c in DATAFLOWS.values())
            raise TypeError(f"dataflow = {dataflow!r} is not a Dataflow: allowed {allowed} or another "
                            f"hw.gemm.front.Dataflow")
        self._cfg, self._dataflow = config, dataflow
        super().__init__({
            "desc": In(stream.Signature(desc_layout(config))),
            "weights": In(stream.Signature(dataflow.weights_layout)),
            "acts": In(stream.Signature(dataflow.acts_layout)),
            "results": Out(stream.Signature(result_layout(config))),
            **{name: Out(config.counter_bits) for name in COUNTERS},
            "error": Out(len(ERROR_FIELDS)),
        })
        self._MustUse__silence = False

    @property
    def dataflow(self):
        return self._dataflow

    @property
    def latency(self):
        return self._dataflow.latency

    def elaborate(self, platform):
        m = Module()
        hooks = self._dataflow.build(m, self)
        self._accept(m, hooks)
        output_stage(m, self._cfg, hooks.sums, shift=hooks.shift, n_valid=hooks.n_valid, out=self.results.payload)
        self._counters(m, hooks)
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

    def _counters(self, m, hooks):
        """``cycles``, ``busy_cycles``, ``stall_output``, ``jobs_done``. 1 cycle (registered)."""
        m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(hooks.busy):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)
        with m.If(self.results.valid & ~self.results.ready):
            m.d.sync += self.stall_output.eq(self.stall_output + 1)
        with m.If(self.results.valid & self.results.ready & hooks.job_end):
            m.d.sync += self.jobs_done.eq(self.jobs_done + 1)
