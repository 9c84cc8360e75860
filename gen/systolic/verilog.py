"""The N:M sparse systolic array's generator: :func:`build` the component, :func:`manifest` its description."""

from hw.bits import describe
from hw.systolic.array import SparseSystolicArray

from gen.systolic.config import SystolicConfig
from gen.verilog import manifest_header

__all__ = ["PORT_MEANINGS", "build", "manifest"]

PORT_MEANINGS = {
    "clk": "clock; every register updates on its rising edge",
    "rst": "synchronous active-high reset: clears weights, pipeline and counters",
    "acts__valid": "activation row offered", "acts__ready": "activation row accepted this cycle",
    "acts__payload": "one row of A: element i at bits [i*act_bits, (i+1)*act_bits)",
    "weights__valid": "weight beat offered", "weights__ready": "weight beat accepted this cycle",
    "weights__payload": "compressed weights of one PE row; rows beats per load, PE row 0 first",
    "results__valid": "result row offered", "results__ready": "result row accepted this cycle",
    "results__payload": "one row of C: column c at bits [c*acc_bits, (c+1)*acc_bits), two's complement",
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
        "streams": {name: {"direction": "in" if name != "results" else "out",
                           "beat": describe(getattr(top, name).payload.shape())}
                    for name in ("acts", "weights", "results")},
        "weight_load": {"beats": config.rows, "order": "PE row 0 first; beat r holds PE row r",
                        "priority": "weights over activations"},
        "latency": {"result_cycles": top.latency,
                    "meaning": "cycles from an activation transfer to its result's first possible transfer"},
    }


