"""Arrays emitted once (hw/shared.py, hw/systolic/grid.py): the same circuit as the flat Verilog, and a Verilog
size and emission time that grow with the number of instances, not with their content."""

import shutil
import time

import pytest

from gen.systolic.verilog import PORT_MEANINGS
from gen.systolic.config import SystolicConfig
from gen.verilog import EMIT_ONCE_MIN_PES, convert, generate_verilog, port_list
from hw.shared import add_verilog, shared_module
from hw.systolic.array import SparseSystolicArray
from hw.systolic.pe import SparsePE

ARRAY = dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=32, keep=2, block=4)

# (rows, cols, overrides): rows = 1 (a 0-bit weight row index), one column (no weight delay, no de-skew), pipelined
# PEs, saturating adders, dense and 3-of-8 PEs, unsigned activations
EQUIVALENCE = {
    "3x4_2of4": (3, 4, {}),
    "1x5_2of4_p1": (1, 5, {"pe_pipeline": 1}),
    "4x1_1of4": (4, 1, {"keep": 1}),
    "2x3_3of8_u6_sat16_p4": (2, 3, {"keep": 3, "block": 8, "act_bits": 6, "act_signed": False, "acc_bits": 16,
                                    "overflow": "saturate", "pe_pipeline": 4}),
}
# `make test-full` only (the grid does not depend on the PE's kind): dense PEs
SLOW_EQUIVALENCE = {"2x2_dense": (2, 2, {"keep": 4})}


@pytest.mark.parametrize("name", [*EQUIVALENCE, *(pytest.param(name, marks=pytest.mark.slow)
                                                  for name in SLOW_EQUIVALENCE)])
def test_emit_once_matches_flat_verilog(tmp_path, seed, name):
    """The emitted-once Verilog against the flat one (one module per PE, what the other tests simulate): every
    output bit, every cycle, under random inputs (weights, activations, valid, ready) and random resets."""
    if not shutil.which("iverilog"):
        pytest.skip("iverilog not found: install Icarus Verilog (apt-get install iverilog)")
    from sim.synth.netlist_cosim import cosimulate

    rows, cols, overrides = (EQUIVALENCE | SLOW_EQUIVALENCE)[name]
    top = f"ssa_{name}"
    flat = tmp_path / "flat.v"
    flat_array = SparseSystolicArray(rows=rows, cols=cols, **ARRAY | overrides)
    ports = port_list(flat_array, PORT_MEANINGS)
    flat.write_text(convert(flat_array, top))
    once = tmp_path / "once.v"
    # the co-simulation instantiates `<top>` and `<top>_netlist`: the emitted-once design takes the second name
    once.write_text(convert(SparseSystolicArray(rows=rows, cols=cols, **ARRAY | overrides), f"{top}_netlist",
                            emit_once=True))
    assert f"module {top}_netlist__grid(" in once.read_text()
    result = cosimulate(flat, once, top, ports, cycles=2000, seed=seed % (1 << 31), workdir=tmp_path)
    print(f"co-simulation seed {result['seed']}: {result['errors']} mismatches in {result['cycles']} cycles")
    assert result["cycles"] == 2000
    assert result["errors"] == 0, result["mismatches"]


def test_128x128_emits_once_in_seconds():
    """The 128×128 2:4 array: four modules (top, PE, PE row, grid), the PE row instantiated 128 times in the grid
    and the PE 128 times in the row, under 1 MB and 30 s (about 4 s on the 2-core machine)."""
    n = 128
    t0 = time.perf_counter()
    text = convert(SparseSystolicArray(rows=n, cols=n, **ARRAY), "big", emit_once=True)
    seconds = time.perf_counter() - t0
    print(f"128x128 emitted in {seconds:.1f} s, {len(text)} bytes")
    names = [line.split("(")[0].split()[1] for line in text.splitlines() if line.startswith("module ")]
    assert names == ["big", "big__shared0", "big__grid_row", "big__grid"]
    grid = text[text.index("module big__grid("):]
    row = text[text.index("module big__grid_row("):text.index("module big__grid(")]
    assert grid.count("  big__grid_row row_") == n
    assert row.count("  big__shared0 pe_") == n
    assert text.count("  big__grid grid") == 1 and text.count("  big__shared0 ") == n
    assert len(text) < 1_000_000
    assert seconds < 30


def test_emit_once_is_deterministic():
    """From EMIT_ONCE_MIN_PES PEs on the generator emits once; the same config gives the same bytes."""
    cfg = SystolicConfig(rows=5, cols=13, keep=2, block=4)
    assert cfg.rows * cfg.cols == EMIT_ONCE_MIN_PES
    first = generate_verilog(cfg).verilog
    assert f"module {cfg.top}__grid(" in first
    assert generate_verilog(cfg).verilog == first


def test_emit_once_helpers_need_the_context():
    """shared_module and add_verilog name modules of one emission: outside it they raise, with the reason."""
    with pytest.raises(RuntimeError, match="shared_module needs an open hw.shared.emit_once context"):
        shared_module(SparsePE, **ARRAY, zero_bits=3, overflow="wrap", pipeline=0)
    with pytest.raises(RuntimeError, match="add_verilog needs an open hw.shared.emit_once context"):
        add_verilog(None, "x", "x", lambda name: f"module {name}; endmodule\n")
