"""ECP5 DSP register packing: flip-flops next to a MULT18X18D become its internal input and output registers.

Yosys (up to 0.70 at least) maps every ECP5 multiplier to a purely combinational MULT18X18D and leaves the
registers around it in the fabric, so a pipelined PE still times as register → routing → DSP → routing →
register. The sysDSP block has registers of its own at the A/B inputs and the P output (``REG_INPUTA_CLK``,
``REG_INPUTB_CLK``, ``REG_OUTPUT_CLK``), which nextpnr-ecp5 times as such (``MULT18X18D_REGS_*``). This module
moves compatible fabric flip-flops into them, on the Yosys JSON netlist, between technology mapping and place
and route (:func:`gen.synth.flow.synthesize_verilog` calls it).

A register is moved only when the result is the same circuit, cycle for cycle:

- inputs: every bit of A and of B is a constant or the ``Q`` of a ``TRELLIS_FF``; the DSP then takes the
  flip-flops' ``DI`` and registers it itself. A flip-flop that still has other loads stays (the DSP gets a
  copy); one that fed only the DSP is removed. Both A and B must be packable, because nextpnr times a DSP
  with only one registered input as unregistered.
- output: every connected ``P`` bit has exactly one load, the ``DI`` of a ``TRELLIS_FF``, and is not a port
  of the design; those flip-flops are removed and the DSP drives their ``Q`` nets.
- every moved flip-flop of one group (A, B or P) shares clock, clock enable and reset; it is rising-edge,
  resets to 0 (``REGSET = "RESET"``) synchronously with reset over enable (``SRMODE = "LSR_OVER_CE"``,
  the sysDSP's ``RESETMODE = "SYNC"``) or has no reset, and its enable is a net or always on. All groups of a
  DSP share one clock (nextpnr times DSP registers on ``CLK0`` only); enables and resets map to ``CE0…3`` and
  ``RST0…3``.
"""

from collections import defaultdict

__all__ = ["pack_dsp_registers"]

_DSP = "MULT18X18D"
_FF = "TRELLIS_FF"
_CONST = ("0", "1", "x", "z")


def _param(cell, name, default):
    # Yosys writes string parameters that look like binary numbers with a trailing space
    value = cell.get("parameters", {}).get(name, default)
    return value.strip() if isinstance(value, str) else value


def _bus(cell, prefix, width):
    conns = cell["connections"]
    return [(f"{prefix}{i}", conns[f"{prefix}{i}"][0]) for i in range(width) if f"{prefix}{i}" in conns]


def _control(ff):
    """The flip-flop's (clock, enable, reset) nets, or None if its behaviour has no sysDSP equivalent."""
    conns = ff["connections"]
    if _param(ff, "CLKMUX", "CLK") != "CLK" or _param(ff, "LSRMODE", "LSR") != "LSR":
        return None
    if _param(ff, "REGSET", "RESET") != "RESET":       # the DSP registers power up and reset to 0
        return None
    cemux = _param(ff, "CEMUX", "1")
    if cemux == "1":
        ce = "1"
    elif cemux == "CE" and "CE" in conns:
        ce = conns["CE"][0]
    else:
        return None
    lsr = conns.get("LSR", ["0"])[0]
    if lsr != "0":
        if _param(ff, "LSRMUX", "LSR") != "LSR" or _param(ff, "SRMODE", "LSR_OVER_CE") != "LSR_OVER_CE":
            return None
    return conns["CLK"][0], ce, lsr


def pack_dsp_registers(netlist: dict, top: str) -> dict:
    """Pack flip-flops into the MULT18X18D cells of ``netlist`` (Yosys JSON, changed in place).

    Returns counts: ``dsp`` (MULT18X18D cells), ``inputs_packed`` and ``outputs_packed`` (DSPs whose A/B,
    resp. P, are now registered inside), ``ff_removed`` and ``ff_copied`` (fabric flip-flops removed, and
    kept because they have other loads), and ``timing`` (DSPs per nextpnr timing mode).
    """
    module = netlist["modules"][top]
    cells = module["cells"]
    drivers, loads = {}, defaultdict(list)
    for name, cell in cells.items():
        directions = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            for bit in bits:
                if isinstance(bit, str):
                    continue
                if directions.get(port) == "output":
                    drivers[bit] = (name, port)
                else:
                    loads[bit].append((name, port))
    for port in module.get("ports", {}).values():
        if port["direction"] != "input":
            for bit in port["bits"]:
                loads[bit].append((None, None))     # a design output: not a flip-flop's to move

    stats = {"dsp": 0, "inputs_packed": 0, "outputs_packed": 0, "ff_removed": 0, "ff_copied": 0,
             "timing": defaultdict(int)}
    # an input flip-flop may feed several DSPs (each gets a copy); one moved to a DSP output may not be
    # anything's input register as well, or that copy would read a net the move leaves undriven
    in_claimed, out_claimed, removed, copied = set(), set(), set(), set()

    def group(bus, *, output):
        """(rewired bits, flip-flops, control) for one bus, or None. Each connected bit needs its own flip-flop:
        an input's driver (the bit becomes the flip-flop's DI) or the output's only load (the bit becomes its Q)."""
        new, ffs, controls = [], set(), set()
        for port, bit in bus:
            if isinstance(bit, str):
                if not output:
                    new.append((port, bit))
                continue
            if output:
                sinks = loads.get(bit, [])
                if not sinks:
                    continue
                if len(sinks) != 1 or sinks[0][0] is None:
                    return None
                name, via = sinks[0]
                ok = via == "DI" and name not in in_claimed | out_claimed
            else:
                name, via = drivers.get(bit, (None, None))
                ok = name is not None and via == "Q" and name not in out_claimed
            control = _control(cells[name]) if ok and cells[name]["type"] == _FF else None
            if control is None:
                return None
            ffs.add(name)
            controls.add(control)
            new.append((port, cells[name]["connections"]["Q" if output else "DI"][0]))
        return (new, ffs, controls.pop()) if len(controls) == 1 else None

    for name in sorted(cells):
        dsp = cells[name]
        if dsp["type"] != _DSP:
            continue
        stats["dsp"] += 1
        if _param(dsp, "REG_INPUTA_CLK", "NONE") != "NONE" or _param(dsp, "REG_OUTPUT_CLK", "NONE") != "NONE":
            continue                                  # already registered: leave as is
        a = group(_bus(dsp, "A", 18), output=False)
        b = group(_bus(dsp, "B", 18), output=False)
        out = group(_bus(dsp, "P", 36), output=True)
        groups = {}
        if a and b and a[2][0] == b[2][0]:
            groups["INPUTA"], groups["INPUTB"] = a, b
        if out and (not groups or out[2][0] == groups["INPUTA"][2][0]):
            groups["OUTPUT"] = out
        if not groups:
            stats["timing"]["MULT18X18D_REGS_NONE"] += 1
            continue
        ces, rsts = [], []
        for reg, (new, ffs, (clk, ce, rst)) in groups.items():
            if ce not in ces:
                ces.append(ce)
            if rst not in rsts:
                rsts.append(rst)
        if len(ces) > 4 or len(rsts) > 4:
            stats["timing"]["MULT18X18D_REGS_NONE"] += 1
            continue
        conns, dirs, params = dsp["connections"], dsp.setdefault("port_directions", {}), dsp["parameters"]
        clk = next(iter(groups.values()))[2][0]
        conns["CLK0"], dirs["CLK0"] = [clk], "input"
        for i, ce in enumerate(ces):
            conns[f"CE{i}"], dirs[f"CE{i}"] = [ce], "input"
        for i, rst in enumerate(rsts):
            conns[f"RST{i}"], dirs[f"RST{i}"] = [rst], "input"
        for reg, (new, ffs, (_, ce, rst)) in groups.items():
            params[f"REG_{reg}_CLK"] = "CLK0"
            params[f"REG_{reg}_CE"] = f"CE{ces.index(ce)}"
            params[f"REG_{reg}_RST"] = f"RST{rsts.index(rst)}"
            for port, bit in new:
                conns[port] = [bit]
            if reg == "OUTPUT":
                out_claimed.update(ffs)
                removed.update(ffs)
            else:
                in_claimed.update(ffs)
                copied.update(ffs)
        params["RESETMODE"] = "SYNC"
        if "OUTPUT" in groups:
            stats["outputs_packed"] += 1
        if "INPUTA" in groups:
            stats["inputs_packed"] += 1
        mode = ("ALL" if len(groups) == 3 else "OUTPUT" if "OUTPUT" in groups else "INPUT")
        stats["timing"][f"MULT18X18D_REGS_{mode}"] += 1

    # an input flip-flop whose only loads were DSP inputs now drives nothing
    for name in sorted(copied):
        q = cells[name]["connections"]["Q"][0]
        rest = [(cell, port) for cell, port in loads.get(q, [])
                if cell is None or cells[cell]["type"] != _DSP or cells[cell]["connections"].get(port) == [q]]
        if rest:
            stats["ff_copied"] += 1
        else:
            removed.add(name)
    for name in removed:
        del cells[name]
    stats["ff_removed"] = len(removed)
    stats["timing"] = dict(sorted(stats["timing"].items()))
    return stats
