"""What the GEMM engine's front end shares between dataflows (the descriptor check, the output stage, the counter
list) and the interface of a dataflow, the strategy :class:`hw.gemm.engine.GemmEngine` is built with
(:class:`Dataflow`: weight-stationary :class:`hw.gemm.ws_dataflow.WeightStationary`, output-stationary
:class:`hw.gemm.os_dataflow.OutputStationary`)."""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from hw.gemm.beats import ERROR_FIELDS

__all__ = ["COUNTERS", "Dataflow", "descriptor_errors", "output_stage"]

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


class Dataflow:
    """A GEMM dataflow: the strategy :class:`hw.gemm.engine.GemmEngine` is built with.

    The engine owns the ports, the descriptor check, the output stage and the counters both dataflows count alike;
    the dataflow owns everything else (array core, sequencing, accumulation) and the ``weights``/``acts`` beat
    layouts. :meth:`build` builds it into the engine's module and returns the hooks the engine connects:

    - ``desc_ready``: a descriptor may transfer this cycle (the engine's ``desc.ready``);
    - ``start(m, desc)``: adds the synchronous assignments that start the good descriptor ``desc``;
    - ``busy``: an activation row or step enters the array this cycle (``busy_cycles``);
    - ``job_end``: the result beat on offer is the job's last (``jobs_done`` counts it when it transfers);
    - ``sums``, ``shift``, ``n_valid``: the finished row on offer, its requantization shift (a value or 0) and its
      number of real columns, for the output stage; the dataflow drives ``results.valid`` and reads
      ``results.ready`` itself, and counts ``stall_input``, ``stall_weight``, ``macs`` and ``zero_skips``.

    Its synchronous assignments come before the engine's, so a descriptor taken in the cycle a job ends starts the
    next job.

    Parameters
    ----------
    config : gen.gemm.config.GemmConfig
        The validated configuration.
    weights, acts : Layout
        The dataflow's weight and activation beat layouts.

    Attributes
    ----------
    config : GemmConfig
    weights_layout, acts_layout : Layout
        The beat layouts (the engine's ``weights`` and ``acts`` stream payloads).
    latency : int
        ``GemmConfig.latency``, ``rows + cols + pe_pipeline`` cycles (each dataflow says from which event).
    """

    def __init__(self, config, *, weights, acts):
        self._cfg, self._weights, self._acts = config, weights, acts

    @property
    def config(self):
        return self._cfg

    @property
    def weights_layout(self):
        return self._weights

    @property
    def acts_layout(self):
        return self._acts

    @property
    def latency(self):
        return self._cfg.latency

    def build(self, m, ports):
        """Build the dataflow into ``m``, driving the engine ``ports`` (its streams and counters); return the hooks
        (a namespace, see the class docstring)."""
        raise NotImplementedError
