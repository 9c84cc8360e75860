"""cocotb testbenches of the emitted Verilog, on Verilator and Icarus, over a config matrix.

`make test` runs the small matrix below; `make test-full` (SPARSEGEN_FULL=1) adds every preset.
`WAVES=1` (or `pytest --waves`) dumps waveforms; their paths are listed at the end of the pytest run.
"""

import os

import pytest

from gen.config import list_presets, load_config
from gen.systolic.config import SystolicConfig
from sim.common.runner import SIMULATORS, run_design

CONFIGS = {
    "dense_3x3_1of1_s8": SystolicConfig(rows=3, cols=3, keep=1, block=1),
    "ssa_4x4_2of4_s8": SystolicConfig(rows=4, cols=4, keep=2, block=4),
    "ssa_4x4_1of4_s8": SystolicConfig(rows=4, cols=4, keep=1, block=4),
    "ssa_3x5_2of4_u8": SystolicConfig(rows=3, cols=5, keep=2, block=4, act_signed=False),
    "ssa_2x3_3of8_sat16": SystolicConfig(rows=2, cols=3, keep=3, block=8, acc_bits=16, overflow="saturate"),
    "dense_2x2_4of4_a6w5_wrap12": SystolicConfig(rows=2, cols=2, keep=4, block=4, act_bits=6, weight_bits=5,
                                                  acc_bits=12, overflow="wrap"),
    "ssa_3x4_2of4_s8_p4": SystolicConfig(rows=3, cols=4, keep=2, block=4, pe_pipeline=4),
}
# 65 PEs: at gen.verilog.EMIT_ONCE_MIN_PES, so the Verilog holds the PE once and the grid of rows as written Verilog.
# Icarus in `make test` (the Verilator build of 65 PEs takes minutes on 2 busy cores), both in `make test-full`.
EMIT_ONCE = {"ssa_5x13_2of4_emit_once": SystolicConfig(rows=5, cols=13, keep=2, block=4, pe_pipeline=1)}
EMIT_ONCE_SIMS = SIMULATORS if os.environ.get("SPARSEGEN_FULL") else ["icarus"]
if os.environ.get("SPARSEGEN_FULL"):
    CONFIGS.update({f"preset_{name}": load_config(name) for name in list_presets("systolic")})


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("sim", SIMULATORS)
def test_systolic_array(sim, name, seed):
    rows = os.environ.get("SPARSEGEN_ROWS", "48" if os.environ.get("SPARSEGEN_FULL") else "24")
    run_design(CONFIGS[name], "sim.systolic.cocotb_array", sim, seed=seed, knobs={"rows": rows})


@pytest.mark.parametrize("name", EMIT_ONCE)
@pytest.mark.parametrize("sim", EMIT_ONCE_SIMS)
def test_systolic_array_emit_once(sim, name, seed):
    """The emit-once Verilog (hw/shared.py: PE rows and PEs as instantiated modules) computes what the array does."""
    run_design(EMIT_ONCE[name], "sim.systolic.cocotb_array", sim, seed=seed, knobs={"rows": "24"})
