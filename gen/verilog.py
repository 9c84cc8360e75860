"""Config → Verilog + JSON manifest: the generator behind ``make verilog`` and ``python -m gen verilog``.

:func:`generate_verilog` dispatches on the config's ``kind`` through :data:`GENERATORS`: each entry names a
module with ``build(config) -> wiring.Component`` and ``manifest(config, top) -> dict`` (use
:func:`manifest_header` for the common part).
"""

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import amaranth
from amaranth.back import verilog
from amaranth.lib import wiring

from hw import checks

from gen import __version__ as GENERATOR_VERSION
from gen.config import ConfigBase, load_config

__all__ = ["Artifacts", "GENERATORS", "CLOCK", "generate_verilog", "manifest_header", "port_list", "stream_ports",
           "streams",
           "write_verilog", "write_artifacts", "GENERATOR_VERSION"]


@dataclass(frozen=True)
class Artifacts:
    """What the generator produces for one config: the top module name, its Verilog and its manifest."""
    top: str
    verilog: str
    manifest: dict

    def __repr__(self):
        return (f"Artifacts(top={self.top!r}, verilog=<{self.verilog.count(chr(10))} lines>, "
                f"manifest=<{len(self.manifest.get('ports', []))} ports>)")


# config kind → module providing build(config) and manifest(config, top)
GENERATORS = {
    "systolic": "gen.systolic.verilog",
    "gemm": "gen.gemm.verilog",
    "rram": "gen.rram.verilog",
}


CLOCK = "clock; every register updates on its rising edge"


def stream_ports(name: str, what: str, payload: str) -> dict:
    """Port meanings of a valid/ready stream ``name``: ``<name>__valid``, ``__ready``, ``__payload``.

    ``what`` names one beat ("weight beat"), ``payload`` describes its bits.
    """
    return {f"{name}__valid": f"{what} offered", f"{name}__ready": f"{what} accepted this cycle",
            f"{name}__payload": payload}


def streams(top, names, describe_beat) -> dict:
    """The manifest's ``streams`` section: direction (from the signature) and beat layout of each named stream."""
    return {name: {"direction": "in" if top.signature.members[name].flow == wiring.In else "out",
                   "beat": describe_beat(getattr(top, name).payload.shape())} for name in names}


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
    """Elaborate the design for ``config`` and convert it to Verilog (deterministic: no source paths).

    ``config`` is a validated config (:class:`~gen.systolic.config.SystolicConfig`, ``GemmConfig``, ``RramTileConfig``),
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
    """Write ``<top>.v``, ``<top>.json``, the FuseSoC core ``<top>.core`` and the file list ``<top>.f``
    (:mod:`gen.fusesoc`) into ``out_dir`` (created if missing); returns the paths in that order.

    ``config`` as for :func:`generate_verilog`. ``out_dir`` is checked (an existing file, an uncreatable path)
    before the design is elaborated; every text is made before the first file is written.
    """
    checks.check_writable_dir("out_dir", out_dir)
    art = generate_verilog(config)
    return write_artifacts(art, out_dir, kind=art.manifest["kind"])


def write_artifacts(art: Artifacts, out_dir, *, kind: str, extra: dict | None = None) -> list[Path]:
    """Write ``art`` (``.v``, ``.json``), its ``.core`` and ``.f``, and ``extra`` (``{file name: str or bytes}``) into
    ``out_dir``; returns the paths (``.v``, ``.json``, ``.core``, ``.f``, then ``extra``'s)."""
    from gen.fusesoc import core_text, file_list_text

    files = [f"{art.top}.v"]
    texts = {f"{art.top}.v": art.verilog, f"{art.top}.json": json.dumps(art.manifest, indent=2) + "\n",
             f"{art.top}.core": core_text(kind=kind, top=art.top, files=files,
                                          description=f"sparsegen {kind} design {art.top}"),
             f"{art.top}.f": file_list_text(files), **(extra or {})}
    out = checks.check_writable_dir("out_dir", out_dir, create=True)
    paths = []
    for name, text in texts.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(text if isinstance(text, bytes) else text.encode())
        tmp.replace(path)
        paths.append(path)
    return paths
