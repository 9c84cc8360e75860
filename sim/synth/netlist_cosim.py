"""Random co-simulation of a mapped netlist against its RTL: the check that netlist rewrites keep the circuit.

:func:`netlist_verilog` turns a Yosys JSON netlist of ECP5 cells (after :func:`gen.synth.ecp5_dsp.pack_dsp_registers`,
say) into plain Verilog, with the cells flattened from Yosys' own simulation library and the MULT18X18D from
``sim/synth/models/MULT18X18D.v``. :func:`cosimulate` then runs the RTL and that netlist side by side under Icarus,
driving every input of both with the same seeded random values each cycle (reset held for the first two
cycles and raised at random afterwards) and comparing every output bit, X and Z included, every cycle.
"""

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

__all__ = ["MODELS", "netlist_verilog", "testbench", "cosimulate"]

MODELS = Path(__file__).resolve().parent / "models"


def netlist_verilog(netlist_json: Path, top: str, out: Path) -> Path:
    """Write ``out``: the netlist as one flat Verilog module named ``<top>_netlist``."""
    from gen.synth.flow import run_tool   # the YoWASP launcher of the synthesis flow

    work = Path(out).resolve().parent
    work.mkdir(parents=True, exist_ok=True)
    # only the design itself: the cell modules Yosys wrote alongside it are blackboxes
    netlist = json.loads(Path(netlist_json).read_text())
    netlist["modules"] = {top: netlist["modules"][top]}
    netlist_json = work / "netlist_only.json"
    netlist_json.write_text(json.dumps(netlist))
    model = work / "MULT18X18D.v"
    shutil.copyfile(MODELS / "MULT18X18D.v", model)
    rel = lambda p: os.path.relpath(Path(p).resolve(), work)   # noqa: E731 -- YoWASP sees relative paths only
    script = "\n".join([
        f"read_json {rel(netlist_json)}",
        "read_verilog +/lattice/common_sim.vh +/lattice/ccu2c_sim.vh",
        f"read_verilog {rel(model)}",
        # the library cells are marked lib_whitebox, which flatten and write_verilog pass over
        "setattr -mod -unset lib_whitebox", "setattr -mod -unset whitebox",
        f"hierarchy -top {top}", "proc", "flatten", "opt_clean -purge",
        f"rename {top} {top}_netlist",
        f"write_verilog -noattr {rel(out)}", ""])
    (work / "netlist_sim.ys").write_text(script)
    run_tool("yosys", ["-q", "-l", "netlist_sim.log", "-s", "netlist_sim.ys"], work, work / "netlist_sim.log")
    return Path(out)


def testbench(top: str, ports: list[dict], *, cycles: int, seed: int, reset: str = "rst") -> str:
    """Verilog of the co-simulation testbench (``ports``: the manifest's port list)."""
    ins = [p for p in ports if p["direction"] == "in" and p["name"] != "clk"]
    outs = [p for p in ports if p["direction"] == "out"]
    lines = ["`timescale 1ns/1ps", "module cosim_tb;", "  reg clk = 0;", f"  integer seed = {seed};",
             "  integer cycle, errors;"]
    for p in ins:
        lines.append(f"  reg [{p['width'] - 1}:0] {p['name']} = 0;")
    for p in outs:
        lines.append(f"  wire [{p['width'] - 1}:0] rtl_{p['name']}, net_{p['name']};")
    conns = lambda prefix: ", ".join([".clk(clk)"] + [f".{p['name']}({p['name']})" for p in ins]   # noqa: E731
                                     + [f".{p['name']}({prefix}{p['name']})" for p in outs])
    lines += [f"  {top} rtl ({conns('rtl_')});", f"  {top}_netlist net ({conns('net_')});",
              "  always #5 clk = ~clk;", "  initial begin", "    errors = 0;",
              f"    for (cycle = 0; cycle < {cycles}; cycle = cycle + 1) begin", "      @(negedge clk);"]
    for p in outs:
        lines += [f"      if (cycle > 0 && rtl_{p['name']} !== net_{p['name']}) begin",
                  "        errors = errors + 1;",
                  f"        if (errors <= 10) $display(\"MISMATCH cycle %0d {p['name']}: rtl %h netlist %h\", cycle,"
                  f" rtl_{p['name']}, net_{p['name']});",
                  "      end"]
    for p in ins:
        words = (p["width"] + 31) // 32
        value = "{" + ", ".join(["$random(seed)"] * words) + "}"
        if p["name"] == reset:
            value = "(cycle < 2) || ($random(seed) % 64 == 0)"
        lines.append(f"      {p['name']} = {value};")
    lines += ["    end", f"    $display(\"COSIM cycles=%0d errors=%0d\", {cycles}, errors);", "    $finish;",
              "  end", "endmodule", ""]
    return "\n".join(lines)


def cosimulate(rtl: Path, netlist_v: Path, top: str, ports: list[dict], *, cycles: int = 2000, seed: int | None = None,
               workdir: Path) -> dict:
    """Run the co-simulation under Icarus; returns ``{"cycles", "errors", "seed", "mismatches"}``."""
    seed = random.randrange(1, 2**31) if seed is None else seed
    work = Path(workdir)
    (work / "cosim_tb.v").write_text(testbench(top, ports, cycles=cycles, seed=seed))
    binary = work / "cosim.vvp"
    subprocess.run(["iverilog", "-g2012", "-o", str(binary), str(rtl), str(netlist_v), str(work / "cosim_tb.v")],
                   check=True, capture_output=True, text=True)
    out = subprocess.run(["vvp", "-n", str(binary)], check=True, capture_output=True, text=True).stdout
    summary = [line for line in out.splitlines() if line.startswith("COSIM")]
    if not summary:
        raise RuntimeError(f"co-simulation printed no summary:\n{out[-2000:]}")
    fields = dict(item.split("=") for item in summary[-1].split()[1:])
    return {"cycles": int(fields["cycles"]), "errors": int(fields["errors"]), "seed": seed,
            "mismatches": [line for line in out.splitlines() if line.startswith("MISMATCH")]}
