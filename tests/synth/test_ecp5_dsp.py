"""ECP5 DSP register packing (gen/synth/ecp5_dsp.py) on hand-built Yosys JSON netlists: what moves, what stays."""

import copy

import pytest

from gen.synth.ecp5_dsp import pack_dsp_registers

CLK, CE, RST, CE2 = 2, 3, 4, 5


def _ff(d, q, *, ce=CE, rst=RST, **params):
    p = {"CEMUX": "CE", "CLKMUX": "CLK", "LSRMUX": "LSR", "REGSET": "RESET", "SRMODE": "LSR_OVER_CE", "GSR": "ENABLED"}
    conns = {"CLK": [CLK], "DI": [d], "Q": [q]}
    if ce is None:
        p["CEMUX"] = "1"
    else:
        conns["CE"] = [ce]
    if rst is not None:
        conns["LSR"] = [rst]
    p.update(params)
    return {"type": "TRELLIS_FF", "parameters": p, "port_directions": {"CLK": "input", "CE": "input",
            "LSR": "input", "DI": "input", "Q": "output"}, "connections": conns}


def _lut(ins, out):
    return {"type": "LUT4", "parameters": {"INIT": "0x6666"},
            "port_directions": {"A": "input", "B": "input", "Z": "output"},
            "connections": {"A": [ins[0]], "B": [ins[1]], "Z": [out]}}


def _dsp(a, b, p):
    conns = {f"A{i}": [a[min(i, len(a) - 1)]] for i in range(18)}       # sign-extended like Yosys' dsp_map
    conns |= {f"B{i}": [b[min(i, len(b) - 1)]] for i in range(18)}
    conns |= {f"P{i}": [p[i]] for i in range(36)}
    conns |= {"SIGNEDA": ["1"], "SIGNEDB": ["1"]}
    dirs = {port: ("output" if port.startswith("P") else "input") for port in conns}
    return {"type": "MULT18X18D", "parameters": {"REG_INPUTA_CLK": "NONE", "REG_OUTPUT_CLK": "NONE"},
            "port_directions": dirs, "connections": conns}


def design(*, a_reg=True, out_loads=1, regset="RESET", b_ce=CE, extra_a_load=False):
    """A 2-bit x 2-bit multiplier with optional registers: returns (netlist, nets)."""
    n = iter(range(100, 1000))
    a_d, b_d = [next(n) for _ in range(2)], [next(n) for _ in range(2)]
    a_q, b_q = [next(n) for _ in range(2)], [next(n) for _ in range(2)]
    p = [next(n) for _ in range(36)]
    y = [next(n) for _ in range(4)]
    cells = {}
    for i in range(2):
        if a_reg:
            cells[f"a{i}"] = _ff(a_d[i], a_q[i], REGSET=regset)
        else:
            cells[f"a{i}"] = _lut((a_d[i], a_d[1 - i]), a_q[i])
        cells[f"b{i}"] = _ff(b_d[i], b_q[i], ce=b_ce)
    for i in range(4):
        cells[f"y{i}"] = _ff(p[i], y[i])
        if out_loads > 1:
            cells[f"l{i}"] = _lut((p[i], p[i]), next(n))
    if extra_a_load:
        cells["use_a"] = _lut((a_q[0], a_q[1]), next(n))
    cells["mul"] = _dsp(a_q, b_q, p)
    ports = {"clk": {"direction": "input", "bits": [CLK]}, "y": {"direction": "output", "bits": y}}
    return {"modules": {"top": {"ports": ports, "cells": cells, "netnames": {}}}}, dict(a_d=a_d, b_d=b_d, a_q=a_q,
                                                                                          b_q=b_q, p=p, y=y)


def test_all_registers_move_into_the_dsp():
    netlist, nets = design()
    stats = pack_dsp_registers(netlist, "top")
    cells = netlist["modules"]["top"]["cells"]
    dsp = cells["mul"]
    assert stats["timing"] == {"MULT18X18D_REGS_ALL": 1}
    assert stats["inputs_packed"] == stats["outputs_packed"] == 1
    # the DSP now reads the flip-flops' inputs and drives their outputs; the flip-flops are gone
    assert [dsp["connections"][f"A{i}"][0] for i in range(2)] == nets["a_d"]
    assert dsp["connections"]["A17"] == [nets["a_d"][1]]
    assert [dsp["connections"][f"B{i}"][0] for i in range(2)] == nets["b_d"]
    assert [dsp["connections"][f"P{i}"][0] for i in range(4)] == nets["y"]
    assert not any(cell["type"] == "TRELLIS_FF" for cell in cells.values())
    assert stats["ff_removed"] == 8 and stats["ff_copied"] == 0
    params = dsp["parameters"]
    for reg in ("INPUTA", "INPUTB", "OUTPUT"):
        assert (params[f"REG_{reg}_CLK"], params[f"REG_{reg}_CE"], params[f"REG_{reg}_RST"]) == ("CLK0", "CE0", "RST0")
    assert (dsp["connections"]["CLK0"], dsp["connections"]["CE0"], dsp["connections"]["RST0"]) == ([CLK], [CE], [RST])
    assert dsp["port_directions"]["CLK0"] == "input"


def test_different_enables_use_separate_ce_ports():
    netlist, _ = design(b_ce=CE2)
    pack_dsp_registers(netlist, "top")
    dsp = netlist["modules"]["top"]["cells"]["mul"]
    assert dsp["parameters"]["REG_INPUTA_CE"] == "CE0" and dsp["parameters"]["REG_INPUTB_CE"] == "CE1"
    assert dsp["parameters"]["REG_OUTPUT_CE"] == "CE0"
    assert dsp["connections"]["CE1"] == [CE2]


def test_input_flip_flop_with_other_loads_is_copied():
    netlist, nets = design(extra_a_load=True)
    stats = pack_dsp_registers(netlist, "top")
    cells = netlist["modules"]["top"]["cells"]
    assert {"a0", "a1"} <= set(cells) and "b0" not in cells
    assert stats["ff_copied"] == 2
    assert cells["mul"]["connections"]["A0"] == [nets["a_d"][0]]


def test_unregistered_input_keeps_inputs_combinational():
    netlist, nets = design(a_reg=False)
    stats = pack_dsp_registers(netlist, "top")
    dsp = netlist["modules"]["top"]["cells"]["mul"]
    # nextpnr times a DSP with one registered input as unregistered, so B stays outside too
    assert stats["timing"] == {"MULT18X18D_REGS_OUTPUT": 1}
    assert dsp["parameters"].get("REG_INPUTB_CLK", "NONE") == "NONE"
    assert dsp["connections"]["B0"] == [nets["b_q"][0]]
    assert "b0" in netlist["modules"]["top"]["cells"]


@pytest.mark.parametrize("flaw", ["shared product", "set flip-flop"])
def test_incompatible_registers_stay(flaw):
    netlist, _ = design(out_loads=2) if flaw == "shared product" else design(regset="SET")
    before = copy.deepcopy(netlist)
    stats = pack_dsp_registers(netlist, "top")
    if flaw == "shared product":
        assert stats["outputs_packed"] == 0 and stats["inputs_packed"] == 1
        assert all(name in netlist["modules"]["top"]["cells"] for name in ("y0", "y1", "y2", "y3"))
    else:
        # A resets to 1, which a DSP register cannot: no input moves (B alone would not be timed as registered)
        assert stats["inputs_packed"] == 0 and stats["outputs_packed"] == 1
        for name in ("a0", "b0"):
            assert netlist["modules"]["top"]["cells"][name] == before["modules"]["top"]["cells"][name]


def test_output_register_feeding_another_dsp_is_not_moved_twice():
    """A register that is one DSP's product and another's input: moving it both ways would leave a net undriven."""
    netlist, nets = design()
    cells = netlist["modules"]["top"]["cells"]
    second = _dsp(nets["y"][:2], nets["y"][2:4], list(range(2000, 2036)))
    cells["mul2"] = second
    pack_dsp_registers(netlist, "top")
    driven = {bit for cell in cells.values() for port, bits in cell["connections"].items()
              if cell["port_directions"].get(port) == "output" for bit in bits}
    for cell in cells.values():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "input":
                assert all(isinstance(bit, str) or bit in driven or bit in (CLK, CE, RST, CE2)
                           or bit in nets["a_d"] + nets["b_d"] for bit in bits), (port, bits)
