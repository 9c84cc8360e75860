"""Config → Verilog + JSON manifest: the generator behind ``make verilog`` and ``python -m gen verilog``.

:func:`generate_verilog` dispatches on the config's ``kind`` through :data:`GENERATORS`: each entry names a
module with ``build(config) -> wiring.Component`` and ``manifest(config, top) -> dict`` (use
:func:`manifest_header` for the common part). The plain sparse array (kind ``"systolic"``) is built here.
"""

import importlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.lib import wiring

from hw import checks
from hw.bits import describe
from hw.systolic.array import SparseSystolicArray

from .config import ConfigBase, SystolicConfig, load_config

__all__ = ["Artifacts", "GENERATORS", "build_array", "generate_verilog", "manifest_header", "port_list",
           "write_verilog", "GENERATOR_VERSION"]

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

    def __repr__(self):
        return (f"Artifacts(top={self.top!r}, verilog=<{self.verilog.count(chr(10))} lines>, "
                f"manifest=<{len(self.manifest.get('ports', []))} ports>)")


def build_array(config: SystolicConfig) -> SparseSystolicArray:
    """The array component for a validated config (``"check"`` configs cannot overflow and use wrap adders)."""
    if not isinstance(config, SystolicConfig):
        raise TypeError(f"expected a SystolicConfig, not {config!r}")
    return SparseSystolicArray(
        rows=config.rows, cols=config.cols, act_bits=config.act_bits, act_signed=config.act_signed,
        weight_bits=config.weight_bits, acc_bits=config.acc_bits, keep=config.keep, block=config.block,
        overflow="saturate" if config.overflow == "saturate" else "wrap", counter_bits=config.counter_bits,
        pe_pipeline=config.pe_pipeline)


# config kind → module providing build(config) and manifest(config, top)
GENERATORS = {
    "systolic": "gen.verilog",
    "gemm": "gen.gemm_verilog",
    "rram": "gen.rram_verilog",
}


def port_list(top, meanings: dict) -> list[dict]:
    """Every port of ``top`` (``clk``, ``rst`` and the signature's members) with direction, width and meaning.

    ``meanings`` must describe every port: a missing one raises ``KeyError``, so manifests stay complete.
    """
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    for path, member, value in top.signature.flatten(top):
        name = "__".join(map(str, path))
        ports.append({"name": name, "direction": "in" if member.flow == wiring.In else "out",
                      "width": len(amaranth.hdl.Value.cast(value))})
    for port in ports:
        port["meaning"] = meanings[port["name"]]
    return ports


def manifest_header(config, top, meanings: dict) -> dict:
    """The part of every manifest that does not depend on the kind: names, versions, config, derived, ports."""
    return {
        "top": config.top,
        "kind": config.kind,
        "generator": {"name": "sparsegen", "version": GENERATOR_VERSION, "amaranth": amaranth.__version__},
        "config": config.to_dict(),
        "derived": config.derived(),
        "ports": port_list(top, meanings),
    }


build = build_array


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


def generate_verilog(config) -> Artifacts:
    """Elaborate the design for ``config`` and convert it to Verilog (deterministic: no source paths).

    ``config`` is a validated config (:class:`~gen.config.SystolicConfig`, ``GemmConfig``, ``RramTileConfig``),
    or a preset name or ``.toml`` path, loaded with :func:`~gen.config.load_config`.
    """
    if isinstance(config, (str, os.PathLike)):
        config = load_config(config)
    checks.check_instance("config", config, ConfigBase,
                          "a config (SystolicConfig, GemmConfig, RramTileConfig), a preset name or a .toml path")
    if config.kind not in GENERATORS:
        raise TypeError(f"no generator for config kind {config.kind!r} ({config!r})")
    generator = importlib.import_module(GENERATORS[config.kind])
    top = generator.build(config)
    text = verilog.convert(top, name=config.top, emit_src=False)
    return Artifacts(top=config.top, verilog=text, manifest=generator.manifest(config, top))


def write_verilog(config, out_dir) -> list[Path]:
    """Write ``<top>.v`` and ``<top>.json`` into ``out_dir`` (created if missing); returns both paths.

    ``config`` as for :func:`generate_verilog`. ``out_dir`` is checked (an existing file, an uncreatable path)
    before the design is elaborated.
    """
    checks.check_writable_dir("out_dir", out_dir)
    art = generate_verilog(config)
    out = checks.check_writable_dir("out_dir", out_dir, create=True)
    v_path, j_path = out / f"{art.top}.v", out / f"{art.top}.json"
    v_path.write_text(art.verilog)
    j_path.write_text(json.dumps(art.manifest, indent=2) + "\n")
    return [v_path, j_path]
