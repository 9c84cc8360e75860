"""Config → Verilog + JSON manifest: the generator behind ``make verilog`` and ``python -m gen verilog``."""

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.lib import wiring

from hw.bits import describe
from hw.systolic.array import SparseSystolicArray

from .config import SystolicConfig

__all__ = ["Artifacts", "build_array", "generate_verilog", "write_verilog", "GENERATOR_VERSION"]

try:
    GENERATOR_VERSION = metadata.version("sparsegen")
except metadata.PackageNotFoundError:   # running from a source tree that was never installed
    GENERATOR_VERSION = "0.0.0+source"

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


@dataclass(frozen=True)
class Artifacts:
    """What the generator produces for one config: the top module name, its Verilog and its manifest."""
    top: str
    verilog: str
    manifest: dict


def build_array(config: SystolicConfig) -> SparseSystolicArray:
    """The array component for a validated config (``"check"`` configs cannot overflow and use wrap adders)."""
    if not isinstance(config, SystolicConfig):
        raise TypeError(f"expected a SystolicConfig, not {config!r}")
    return SparseSystolicArray(
        rows=config.rows, cols=config.cols, act_bits=config.act_bits, act_signed=config.act_signed,
        weight_bits=config.weight_bits, acc_bits=config.acc_bits, keep=config.keep, block=config.block,
        overflow="saturate" if config.overflow == "saturate" else "wrap", counter_bits=config.counter_bits)


def _ports(top):
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    for path, member, value in top.signature.flatten(top):
        name = "__".join(map(str, path))
        ports.append({"name": name, "direction": "in" if member.flow == wiring.In else "out",
                      "width": len(amaranth.hdl.Value.cast(value))})
    for port in ports:
        port["meaning"] = PORT_MEANINGS[port["name"]]
    return ports


def manifest(config: SystolicConfig, top: SparseSystolicArray) -> dict:
    """JSON-ready description of a generated design (README "Interfaces" in machine-readable form)."""
    return {
        "top": config.top,
        "generator": {"name": "sparsegen", "version": GENERATOR_VERSION, "amaranth": amaranth.__version__},
        "config": config.to_dict(),
        "derived": {"top": config.top, "k": config.k, "max_reduction": config.max_reduction,
                    "sparse": config.sparse, "index_bits": config.index_bits, "multipliers": config.multipliers},
        "ports": _ports(top),
        "streams": {name: {"direction": "in" if name != "results" else "out",
                           "beat": describe(getattr(top, name).payload.shape())}
                    for name in ("acts", "weights", "results")},
        "weight_load": {"beats": config.rows, "order": "PE row 0 first; beat r holds PE row r",
                        "priority": "weights over activations"},
        "latency": {"result_cycles": top.latency,
                    "meaning": "cycles from an activation transfer to its result's first possible transfer"},
    }


def generate_verilog(config: SystolicConfig) -> Artifacts:
    """Elaborate the array for ``config`` and convert it to Verilog (deterministic: no source paths)."""
    top = build_array(config)
    text = verilog.convert(top, name=config.top, emit_src=False)
    return Artifacts(top=config.top, verilog=text, manifest=manifest(config, top))


def write_verilog(config: SystolicConfig, out_dir) -> list[Path]:
    """Write ``<top>.v`` and ``<top>.json`` into ``out_dir`` (created if missing); returns both paths."""
    art = generate_verilog(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out / f"{art.top}.v", out / f"{art.top}.json"
    v_path.write_text(art.verilog)
    j_path.write_text(json.dumps(art.manifest, indent=2) + "\n")
    return [v_path, j_path]
