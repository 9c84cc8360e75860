"""``--wrap axi``: a config → the wrapped design's Verilog and manifest (docs/integration.md).

The wrapped top module is ``<top>_axi``; its register map comes from :func:`hw.axi.designs.register_map`.
"""

import importlib

import amaranth
from amaranth.back import verilog
from amaranth.hdl import Elaboratable

from hw import checks
from hw.axi.designs import axi_wrap
from hw.axi.wrapper import AxiWrapper

from gen.config import ConfigBase, load_config
from gen.verilog import GENERATORS, GENERATOR_VERSION, Artifacts, write_artifacts

__all__ = ["WRAPS", "PORT_MEANINGS", "wrapped_top", "build", "register_map_of", "manifest", "generate_wrapped", "write_wrapped"]

WRAPS = ("axi",)


# meanings of the wrapper's own ports (the AXI4-Stream ones are made per stream in manifest())
PORT_MEANINGS = {
    "aclk": "clock; every register updates on its rising edge",
    "aresetn": "synchronous active-low reset of the wrapper and the design",
    "s_axil_awaddr": "write byte address (bits 1:0 ignored)", "s_axil_awprot": "ignored",
    "s_axil_awvalid": "write address offered", "s_axil_awready": "write address accepted",
    "s_axil_wdata": "write data", "s_axil_wstrb": "byte enables of wdata", "s_axil_wvalid": "write data offered",
    "s_axil_wready": "write data accepted", "s_axil_bresp": "OKAY (0) or SLVERR (2, nothing written)",
    "s_axil_bvalid": "write response offered", "s_axil_bready": "write response accepted",
    "s_axil_araddr": "read byte address (bits 1:0 ignored)", "s_axil_arprot": "ignored",
    "s_axil_arvalid": "read address offered", "s_axil_arready": "read address accepted",
    "s_axil_rdata": "read data (0 with SLVERR)", "s_axil_rresp": "OKAY (0) or SLVERR (2, unmapped)",
    "s_axil_rvalid": "read data offered", "s_axil_rready": "read data accepted",
}


def wrapped_top(config) -> str:
    """Name of the wrapped top module: ``<top>_axi``."""
    return f"{config.top}_axi"


def build(config) -> AxiWrapper:
    """The design of ``config`` (its kind's generator) behind the AXI wrapper."""
    checks.check_instance("config", config, ConfigBase, "a config (SystolicConfig, GemmConfig, RramTileConfig)")
    generator = importlib.import_module(GENERATORS[config.kind])
    return axi_wrap(generator.build(config), name=wrapped_top(config), meanings=generator.PORT_MEANINGS,
                    config=config)


def register_map_of(config):
    """``(register map, {stream: AXI4-Stream prefix}, {stream: tdata bits})`` of ``config``'s wrapped design,
    without converting it (a testbench's view of the one definition)."""
    top = build(config)
    widths = {name: len(getattr(top, f"{prefix}_tdata")) for name, prefix in top.axis.items()}
    _read_only(top, set())
    return top.regmap, top.axis, widths


def _read_only(obj, seen):
    """Mark ``obj`` and the elaboratables it holds as built only to be read: Amaranth's UnusedElaboratable
    warning is for forgotten designs, and these are not."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Elaboratable):
        obj._MustUse__silence = True
        for value in vars(obj).values():
            _read_only(value, seen)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _read_only(value, seen)


def manifest(config, top: AxiWrapper) -> dict:
    """The wrapped design's manifest: the wrapped design's own manifest, plus the AXI ports, streams and map."""
    generator = importlib.import_module(GENERATORS[config.kind])
    inner = generator.manifest(config, top.inner)
    axis, meanings = {}, dict(PORT_MEANINGS)
    for name, prefix in top.axis.items():
        payload = len(amaranth.hdl.Value.cast(getattr(top.inner, name).payload))
        described = inner.get("streams", {}).get(name, {})
        axis[name] = {"prefix": prefix, "direction": "in" if prefix.startswith("s_") else "out",
                      "tdata_bits": len(getattr(top, f"{prefix}_tdata")), "payload_bits": payload,
                      "beat": described.get("beat", {"width": payload}), "tlast": _tlast_rule(top, name, prefix)}
        what = next((p["meaning"] for p in inner["ports"] if p["name"] == f"{name}__payload"), name)
        meanings |= {f"{prefix}_tdata": f"{what}; zero-extended to whole bytes",
                     f"{prefix}_tvalid": f"{name} beat offered", f"{prefix}_tready": f"{name} beat accepted",
                     f"{prefix}_tlast": axis[name]["tlast"]}
    ports = [{"name": name, "direction": "in" if member.flow == amaranth.lib.wiring.In else "out",
              "width": len(getattr(top, name)), "meaning": meanings[name]}
             for name, member in top.signature.members.items()]
    return {
        "top": wrapped_top(config),
        "kind": config.kind,
        "wrap": "axi",
        "wraps": {"top": config.top, "manifest": inner},
        "generator": {"name": "sparsegen", "version": GENERATOR_VERSION, "amaranth": amaranth.__version__},
        "clock": "aclk; aresetn: synchronous active-low reset",
        "ports": ports,
        "axis": axis,
        "axil": top.regmap.to_dict(),
    }


def _tlast_rule(top, name, prefix) -> str:
    if prefix.startswith("s_"):
        return "ignored"
    layout = getattr(top.inner, name).payload.shape()
    if hasattr(layout, "members") and "last" in dict(layout.members):
        return "the beat's last field"
    if "desc" in top.inner.signature.members and name == "results":
        return "1 on the last result beat of each job (M * ceil(N / cols) beats)"
    return "1 on every beat"


def generate_wrapped(config, wrap="axi") -> Artifacts:
    """Like :func:`gen.verilog.generate_verilog`, for the design wrapped by ``wrap`` (``"axi"``)."""
    return _generate(config, wrap)[1]


def _generate(config, wrap):
    if isinstance(config, str) or hasattr(config, "__fspath__"):
        config = load_config(config)
    checks.check_choice("wrap", wrap, WRAPS)
    top = build(config)
    text = verilog.convert(top, name=wrapped_top(config), emit_src=False)
    return top, Artifacts(top=wrapped_top(config), verilog=text, manifest=manifest(config, top))


def write_wrapped(config, out_dir, wrap="axi", *, html=False) -> list:
    """Write the wrapped design into ``out_dir``: ``<top>_axi.v``, ``.json``, ``.core``, ``.f`` (as
    :func:`gen.verilog.write_verilog`), then ``.rdl``, the C header ``.h`` and ``_regs.md`` (and with ``html`` the
    HTML register docs, ``_regs_html/``). Returns the paths. Everything is generated before the first file is
    written: a bad config, a missing PeakRDL or an unwritable ``out_dir`` writes nothing.
    """
    from gen.axi.rdl import register_files

    checks.check_writable_dir("out_dir", out_dir)
    if isinstance(config, str) or hasattr(config, "__fspath__"):
        config = load_config(config)
    top, art = _generate(config, wrap)
    regs = register_files(top.regmap, html=html)
    return write_artifacts(art, out_dir, kind=config.kind, extra=regs)
