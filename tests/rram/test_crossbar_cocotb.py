"""cocotb testbenches of the emitted CrossbarModel Verilog, on Verilator and Icarus.

The hardware parameters (stuck map and LFSR seed included) are fixed per set, so each set is built once and
cached; the stimulus follows the ``seed`` fixture. ``SPARSEGEN_FULL=1`` runs more commands.
"""

import os

import pytest

from hw.rram.crossbar import CrossbarModel
from hw.formats.faults import fault_map
from sim.common.designs import Component
from sim.common.runner import SIMULATORS, run_design

PARAMS = {
    # Partial wordline group (16 = 9 + 7), clipping ADC, every fault on.
    "16x16_c2_ou9x8_faults": dict(n_xbars=2, xbar_rows=16, xbar_cols=16, cell_bits=2, ou_rows=9, ou_cols=8,
                                  dac_bits=1, adc_bits=4, pulse_error=16384, read_noise=2,
                                  stuck=fault_map(7, 0.05, 0.05, (2, 16, 16), cell_bits=2), seed=7),
    # Ideal 4-bit cells, 2-bit DAC, lossless ADC.
    "16x16_c4_ou4x4_ideal": dict(n_xbars=1, xbar_rows=16, xbar_cols=16, cell_bits=4, ou_rows=4, ou_cols=4,
                                 dac_bits=2, adc_bits=8),
    # Binary cells, partial groups on both edges (16 = 3·5 + 1 rows, 12 = 2·5 + 2 columns), noise and faults.
    "16x12_c1_ou5x5_partial": dict(n_xbars=1, xbar_rows=16, xbar_cols=12, cell_bits=1, ou_rows=5, ou_cols=5,
                                   dac_bits=1, adc_bits=3, pulse_error=40000, read_noise=1,
                                   stuck=fault_map(11, 0.04, 0.04, (1, 16, 12), cell_bits=1), seed=12345),
}


@pytest.mark.parametrize("name", PARAMS)
@pytest.mark.parametrize("sim", SIMULATORS)
def test_crossbar(sim, name, seed):
    run_design(Component("crossbar_" + name, CrossbarModel, PARAMS[name]), "sim.rram.cocotb_crossbar", sim,
               seed=seed, knobs={"commands": 2000 if os.environ.get("SPARSEGEN_FULL") else 400})
