"""Config → Verilog + JSON manifest: the generator behind ``make verilog`` and ``python -m gen verilog``.

:func:`generate_verilog` dispatches on the config's ``kind`` through :data:`GENERATORS`: each entry names a
module with ``build(config) -> wiring.Component`` and ``manifest(config, top) -> dict`` (use
:func:`manifest_header` for the common part).
"""

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.lib import wiring

from gen import __version__ as GENERATOR_VERSION

__all__ = ["Artifacts", "GENERATORS", "generate_verilog", "manifest_header", "port_list",
           "write_verilog", "GENERATOR_VERSION"]


@dataclass(frozen=True)
class Artifacts:
    """What the generator produces for one config: the top module name, its Verilog and its manifest."""
    top: str
    verilog: str
    manifest: dict


# config kind → module providing build(config) and manifest(config, top)
GENERATORS = {
    "systolic": "gen.systolic.verilog",
    "gemm": "gen.gemm.verilog",
    "rram": "gen.rram.verilog",
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


def generate_verilog(config) -> Artifacts:
    """Elaborate the design for ``config`` and convert it to Verilog (deterministic: no source paths)."""
    if config.kind not in GENERATORS:
        raise TypeError(f"no generator for config kind {config.kind!r} ({config!r})")
    generator = importlib.import_module(GENERATORS[config.kind])
    top = generator.build(config)
    text = verilog.convert(top, name=config.top, emit_src=False)
    return Artifacts(top=config.top, verilog=text, manifest=generator.manifest(config, top))


def write_verilog(config, out_dir) -> list[Path]:
    """Write ``<top>.v`` and ``<top>.json`` into ``out_dir`` (created if missing); returns both paths."""
    art = generate_verilog(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out / f"{art.top}.v", out / f"{art.top}.json"
    v_path.write_text(art.verilog)
    j_path.write_text(json.dumps(art.manifest, indent=2) + "\n")
    return [v_path, j_path]
