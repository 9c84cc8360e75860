"""The synthesis flow (gen/synth/flow.py): Yosys structural check on the small preset, report parsers, the serial
wrapper, ECP5 DSP register packing checked by co-simulating the packed netlist against the RTL, and (slow) the
whole ECP5 flow on a tiny design.

Tests that run Yosys skip with an install hint when the ``[synth]`` extra is missing (``make test`` installs it).
"""

import json
import shutil

import pytest

from gen.cli import main
from gen.config import load_config
from gen.synth.flow import (SynthError, parse_nextpnr_report, parse_stat, serial_wrapper, structural_check,
                       summarize_cells, synthesize_verilog, tools_available, yosys_script)
from sim.common.designs import verilog_for

SMALL_PRESET = "dense_4x4"


def require_tools():
    ok, reason = tools_available()
    if not ok:
        pytest.skip(reason)


# --- pure parsers and generators -------------------------------------------------------------------------------

STAT = {"creator": "Yosys", "modules": {"\\top": {}, "\\top.pe_0_0": {}},
        "design": {"num_cells": 9, "num_cells_by_type": {"LUT4": 3, "CCU2C": 2, "TRELLIS_FF": 2, "$scopeinfo": 1,
                                                         "top.pe_0_0": 1}}}


def test_parse_stat_drops_scopes_and_submodules():
    assert parse_stat(json.dumps(STAT)) == {"CCU2C": 2, "LUT4": 3, "TRELLIS_FF": 2}
    with pytest.raises(ValueError, match="num_cells_by_type"):
        parse_stat(json.dumps({"modules": {}}))


def test_summarize_cells_columns():
    cells = {"LUT4": 10, "CCU2C": 4, "TRELLIS_FF": 7, "MULT18X18D": 2, "DP16KD": 1, "PFUMX": 3, "L6MUX21": 1}
    assert summarize_cells("ecp5", cells) == {"lut4": 10, "carry": 4, "ff": 7, "dsp": 2, "bram": 1, "widemux": 4,
                                              "lutram": 0}
    ice = {"SB_LUT4": 5, "SB_DFF": 2, "SB_DFFE": 3, "SB_DFFSR": 1, "SB_CARRY": 4, "SB_MAC16": 1}
    assert summarize_cells("ice40", ice)["ff"] == 6
    assert summarize_cells("ice40", ice)["dsp"] == 1


def _step(kind, cell_from, cell_to, delay, net=None, port_from="Q", port_to="D"):
    step = {"type": kind, "delay": delay, "from": {"cell": cell_from, "port": port_from},
            "to": {"cell": cell_to, "port": port_to}}
    return step | ({"net": net} if net else {})


def test_parse_nextpnr_report():
    short = [_step("clk-to-q", "a", "a", 0.5), _step("routing", "a", "b", 1.0, net="n_short"),
             _step("setup", "b", "b", 0.1)]
    long = [_step("clk-to-q", "x", "x", 0.5), _step("routing", "x", "m", 2.0, net="x_q"),
            _step("logic", "m", "m", 3.0, port_from="A", port_to="F"), _step("routing", "m", "y", 1.5, net="m_f"),
            _step("setup", "y", "y", 0.25, port_from="D", port_to="D")]
    report = {"fmax": {"clk": {"achieved": 123.456, "constraint": 100}, "clk2": {"achieved": 80.0, "constraint": 50}},
              "utilization": {"TRELLIS_FF": {"used": 12, "available": 100}, "DP16KD": {"used": 0, "available": 8}},
              "critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": short},
                                 {"from": "posedge clk2", "to": "posedge clk2", "path": long}]}
    r = parse_nextpnr_report(json.dumps(report))
    assert r["fmax_mhz"] == 80.0 and r["clock"] == "clk2" and r["constraint_mhz"] == 50
    assert r["clocks"]["clk"]["achieved_mhz"] == 123.46
    assert r["utilization"] == {"TRELLIS_FF": {"used": 12, "available": 100}}
    cp = r["critical_path"]
    assert (cp["from"], cp["to"], cp["from_net"], cp["to_net"]) == ("x.Q", "y.D", "x_q", "m_f")
    assert cp["delay_ns"] == 7.25 and cp["logic_ns"] == 3.75 and cp["steps"] == 5
    with pytest.raises(ValueError, match="no clock"):
        parse_nextpnr_report(json.dumps({"fmax": {}}))


def test_yosys_script_steps():
    generic = yosys_script("generic", "top", ["top.v"])
    assert "check -assert" in generic and "select -assert-none t:$dlatch" in generic
    ecp5 = yosys_script("ecp5", "top", ["top.v"], dsp=False)
    assert "synth_ecp5 -nodsp -top top -run begin:map_luts" in ecp5 and "ecp5.netlist.json" in ecp5
    assert "synth_ice40 -dsp" in yosys_script("ice40", "top", ["top.v"], dsp=True)
    assert "-dsp" not in yosys_script("ice40", "top", ["top.v"], dsp=False)
    with pytest.raises(ValueError, match="target = 'xilinx'"):
        yosys_script("xilinx", "top", ["top.v"])


PORTS = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1},
         {"name": "a", "direction": "in", "width": 3}, {"name": "y", "direction": "out", "width": 5},
         {"name": "z", "direction": "out", "width": 1}]


def test_serial_wrapper_connects_every_port():
    name, text, overhead = serial_wrapper("core", PORTS)
    assert name == "core_serial"
    assert overhead == {"wrapper_ff": 4 + 6, "in_bits": 4, "out_bits": 6}
    assert ".rst(in_sh[0:0])" in text and ".a(in_sh[3:1])" in text
    assert ".y(outs[4:0])" in text and ".z(outs[5:5])" in text and ".clk(clk)" in text
    with pytest.raises(ValueError, match="clk"):
        serial_wrapper("core", PORTS[1:])


# --- Yosys ------------------------------------------------------------------------------------------------------

def test_structural_check_small_preset(tmp_path):
    """`check -assert` and no latches on the small preset's Verilog; the RTL has one $mul per multiplier."""
    require_tools()
    cfg = load_config(SMALL_PRESET)
    result = structural_check(verilog_for(cfg), cfg.top, tmp_path)
    assert result["rtl_cells"]["$mul"] == cfg.multipliers
    assert not any(kind in result["rtl_cells"] for kind in ("$dlatch", "$adlatch", "$dlatchsr", "$sr"))
    assert sum(n for kind, n in result["generic_cells"].items() if "DFF" in kind) > 0


def test_cli_generic_report(tmp_path, capsys):
    """`python -m gen synth --target generic` writes <top>.synth.json next to the Verilog and its manifest."""
    require_tools()
    cfg = load_config("ssa_4x8_2of4")
    assert main(["synth", "--config", "ssa_4x8_2of4", "--target", "generic", "--out", str(tmp_path),
                 "--no-cache"]) == 0
    assert "ssa_4x8_2of4" in capsys.readouterr().out
    out = tmp_path / "ssa_4x8_2of4"
    assert (out / f"{cfg.top}.v").exists() and (out / f"{cfg.top}.json").exists()
    report = json.loads((out / f"{cfg.top}.synth.json").read_text())
    assert report["top"] == cfg.top and list(report["targets"]) == ["generic"]
    generic = report["targets"]["generic"]
    assert generic["check"]["ok"] and generic["config"] == cfg.to_dict()
    # the index muxes' constant index·width products are folded away: one $mul per multiplier remains
    assert generic["rtl_cells"]["$mul"] == cfg.multipliers
    assert generic["generic"]["ff_cells"] > 0 and generic["generic"]["gates"] > 0


BAD_DESIGNS = {
    "latch": "module bad(input wire clk, input wire en, input wire d, output reg q);\n"
             "  always @* if (en) q = d;\nendmodule\n",
    "loop": "module bad(input wire clk, input wire a, output wire y);\n"
            "  wire b; assign b = a ^ y; assign y = b & a;\nendmodule\n",
    "undriven": "module bad(input wire clk, input wire a, output wire y);\n"
                "  wire u; assign y = a & u;\nendmodule\n",
}


REASONS = {"latch": r"selection is not empty: t:\$dlatch", "loop": "found logic loop", "undriven": "has no driver"}


@pytest.mark.parametrize("flaw", sorted(BAD_DESIGNS))
def test_structural_check_fails(tmp_path, flaw):
    require_tools()
    (tmp_path / "bad.v").write_text(BAD_DESIGNS[flaw])
    with pytest.raises(SynthError, match=REASONS[flaw]):
        structural_check(tmp_path / "bad.v", "bad", tmp_path / "work")


def test_cli_rejects_bad_options(capsys):
    with pytest.raises(SystemExit):
        main(["synth", "--config", SMALL_PRESET, "--target", "xilinx"])
    assert main(["synth", "--all", "--set", "rows=2"]) == 2
    assert "--set applies to --config" in capsys.readouterr().err


TINY = ("module tiny(input wire clk, input wire rst, input wire signed [7:0] a, input wire signed [7:0] b,"
        " output reg signed [19:0] acc);\n"
        "  reg signed [7:0] ra, rb;\n"
        "  always @(posedge clk) begin ra <= a; rb <= b; acc <= rst ? 20'sd0 : acc + ra * rb; end\nendmodule\n")
TINY_PORTS = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1},
              {"name": "a", "direction": "in", "width": 8}, {"name": "b", "direction": "in", "width": 8},
              {"name": "acc", "direction": "out", "width": 20}]


@pytest.mark.slow
@pytest.mark.parametrize("dsp", ["on", "off"])
def test_ecp5_flow_tiny(tmp_path, dsp):
    """The whole ECP5 flow on a one-MAC design: DSP policy, cell counts, fmax and the critical path."""
    require_tools()
    (tmp_path / "tiny.v").write_text(TINY)
    r = synthesize_verilog(tmp_path / "tiny.v", "tiny", TINY_PORTS, target="ecp5", dsp=dsp, workdir=tmp_path / "w",
                           use_cache=False)
    assert r["resources"]["dsp"] == (1 if dsp == "on" else 0)
    if dsp == "on":
        # ra and rb feed only the multiplier: they become the DSP's input registers (the adder keeps acc outside)
        assert r["dsp_packing"]["timing"] == {"MULT18X18D_REGS_INPUT": 1}
        assert r["dsp_packing"]["ff_removed"] == 16
        assert r["resources"]["ff"] == 20
    else:
        assert r["resources"]["ff"] >= 8 + 8 + 20
    assert r["pnr"]["utilization"]["TRELLIS_FF"]["used"] == r["resources"]["ff"]
    assert 10 < r["pnr"]["fmax_mhz"] < 1000
    assert r["pnr"]["critical_path"]["delay_ns"] > 0


@pytest.mark.slow
def test_ice40_flow_tiny(tmp_path):
    require_tools()
    (tmp_path / "tiny.v").write_text(TINY)
    r = synthesize_verilog(tmp_path / "tiny.v", "tiny", TINY_PORTS, target="ice40", dsp="off",
                           workdir=tmp_path / "w", use_cache=False)
    assert r["wrapper"]["wrapper_ff"] == 1 + 16 + 20
    assert r["resources"]["ff"] >= r["wrapper"]["wrapper_ff"] + 36
    assert r["pnr"]["fmax_mhz"] > 0


# (preset, overrides, expected DSP timing modes as a function of the config)
PACKING_CASES = [
    # every multiplier between registers: all three register groups move
    ("dense_4x4", {"pe_pipeline": 2}, lambda c: {"MULT18X18D_REGS_ALL": c.multipliers}),
    # index muxes before the multipliers: only the product register moves
    ("ssa_4x8_2of4", {"rows": 2, "pe_pipeline": 1}, lambda c: {"MULT18X18D_REGS_OUTPUT": c.multipliers}),
    # unpipelined dense PE: activation and weight registers feed the DSPs (copies: the activations also go
    # right); the top row's partial sum is the bare product (psum_in = 0), so its register moves too
    ("dense_4x4", {}, lambda c: {"MULT18X18D_REGS_ALL": c.cols, "MULT18X18D_REGS_INPUT": (c.rows - 1) * c.cols}),
]


@pytest.mark.parametrize("preset, overrides, timing", PACKING_CASES)
def test_dsp_register_packing_keeps_the_circuit(tmp_path, seed, preset, overrides, timing):
    """ECP5 mapping + DSP register packing, then the packed netlist against the RTL: every output, every cycle,
    under random inputs and random resets (sim/synth/netlist_cosim.py)."""
    require_tools()
    if not shutil.which("iverilog"):
        pytest.skip("iverilog not found: install Icarus Verilog (apt-get install iverilog)")
    from gen.config import load_config
    from gen.verilog import write_verilog
    from sim.synth.netlist_cosim import cosimulate, netlist_verilog

    cfg = load_config(preset, overrides)
    v_path, manifest = write_verilog(cfg, tmp_path)[:2]
    ports = json.loads(manifest.read_text())["ports"]
    r = synthesize_verilog(v_path, cfg.top, ports, target="ecp5", workdir=tmp_path / "w", use_cache=False, pnr=False)
    packing = r["dsp_packing"]
    assert packing["timing"] == timing(cfg)
    assert r["resources"]["dsp"] == cfg.multipliers
    netlist = netlist_verilog(tmp_path / "w" / "ecp5.packed.json", cfg.top, tmp_path / "w" / "netlist_sim.v")
    result = cosimulate(v_path, netlist, cfg.top, ports, cycles=3000, seed=seed % (1 << 31), workdir=tmp_path / "w")
    print(f"co-simulation seed {result['seed']}: {result['errors']} mismatches in {result['cycles']} cycles")
    assert result["cycles"] == 3000
    assert result["errors"] == 0, result["mismatches"]


def test_slice_rows_for_designs_the_device_cannot_hold():
    """The largest row slice that fits: by DSPs, by LUTs, and none when the design fits or has no rows."""
    from gen.synth.flow import slice_rows

    def report(dsp, lut4, carry=0, skipped="does not fit: too big"):
        return {"resources": {"dsp": dsp, "lut4": lut4, "carry": carry}, "pnr": {"skipped": skipped}}

    cfg = load_config("dense_8x8_4of4")
    assert slice_rows(cfg, report(256, 20000), "ecp5") == 4           # 156 / 256 of 8 rows
    assert slice_rows(load_config("ssa_16x16_2of4"), report(512, 40000), "ecp5") == 4
    assert slice_rows(cfg, report(0, 60000, 10000), "ecp5") == 6      # 0.8 * 83640 / 80000 of 8 rows
    assert slice_rows(cfg, report(256, 20000, skipped="not requested (--no-pnr)"), "ecp5") is None
    assert slice_rows(cfg, report(256, 20000), "ice40") is None
    assert slice_rows(load_config("rram_32x32_c2_small"), report(0, 100000), "ecp5") is None
