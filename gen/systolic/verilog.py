"""The N:M sparse systolic array's generator: :func:`build` the component, :func:`manifest` its description."""

from hw.bits import describe
from hw.systolic.array import SparseSystolicArray

from gen.systolic.config import SystolicConfig
from gen.verilog import CLOCK, manifest_header, stream_ports, streams

__all__ = ["PORT_MEANINGS", "build", "manifest"]

PORT_MEANINGS = {
    "clk": CLOCK,
    "rst": "synchronous active-high reset: clears weights, pipeline and counters",
    **stream_ports("acts", "activation row", "one row of A: element i at bits [i*act_bits, (i+1)*act_bits)"),
    **stream_ports("weights", "weight beat", "compressed weights of one PE row; rows beats per load, PE row 0 first"),
    **stream_ports("results", "result row",
                   "one row of C: column c at bits [c*acc_bits, (c+1)*acc_bits), two's complement"),
    "cycles": "clock cycles since reset (wraps)",
    "busy_cycles": "cycles not stalled with an activation row entering or in flight (wraps)",
    "stall_cycles": "cycles with results__valid && !results__ready (wraps)",
    "zero_skips": "multiplications skipped for a zero activation, counted as results leave (wraps)",
}


def build(config: SystolicConfig) -> SparseSystolicArray:
    """The array component for a validated config (``"check"`` configs cannot overflow and use wrap adders)."""
    if not isinstance(config, SystolicConfig):
        raise TypeError(f"expected a SystolicConfig, not {config!r}")
    return SparseSystolicArray(**config.array_params())


def manifest(config: SystolicConfig, top: SparseSystolicArray) -> dict:
    """JSON-ready description of a generated array (README "Interfaces" in machine-readable form)."""
    return manifest_header(config, top, PORT_MEANINGS) | {
        "streams": streams(top, ("acts", "weights", "results"), describe),
        "weight_load": {"beats": config.rows, "order": "PE row 0 first; beat r holds PE row r",
                        "priority": "weights over activations"},
        "latency": {"result_cycles": top.latency,
                    "meaning": "cycles from an activation transfer to its result's first possible transfer"},
    }


