"""cocotb testbench of the output-stationary core's Verilog (converted directly), on Verilator and Icarus.

`make test` runs the small matrix below; `make test-full` (SPARSEGEN_FULL=1) adds a block-1, an 8×8 and a
16-bit-counter core.
"""

import os

import pytest

from sim.gemm.os_core import OSCoreParams
from sim.common.runner import SIMULATORS, run_design

CONFIGS = {
    "os_3x4_2of4_s8": OSCoreParams(rows=3, cols=4, keep=2, block=4),
    "os_4x3_1of4_u8": OSCoreParams(rows=4, cols=3, keep=1, block=4, act_signed=False),
    "os_2x3_3of8_sat14": OSCoreParams(rows=2, cols=3, keep=3, block=8, acc_bits=14, overflow="saturate"),
    "dense_2x2_4of4_a6w5_wrap12": OSCoreParams(rows=2, cols=2, keep=4, block=4, act_bits=6, weight_bits=5,
                                               acc_bits=12, overflow="wrap"),
}
if os.environ.get("SPARSEGEN_FULL"):
    CONFIGS.update({
        "dense_3x3_1of1_s8": OSCoreParams(rows=3, cols=3, keep=1, block=1),
        "os_8x8_2of4_s8": OSCoreParams(rows=8, cols=8, keep=2, block=4),
        "os_5x2_1of2_u4_sat10_cnt16": OSCoreParams(rows=5, cols=2, keep=1, block=2, act_bits=4, act_signed=False,
                                                   acc_bits=10, overflow="saturate", counter_bits=16),
    })


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("sim", SIMULATORS)
def test_os_array(sim, name, seed):
    run_design(CONFIGS[name], "sim.gemm.cocotb_os_array", sim, seed=seed)
