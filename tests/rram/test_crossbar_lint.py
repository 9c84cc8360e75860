"""`verilator --lint-only -Wall` on the crossbar model's Verilog at corner parameters (same waivers as presets)."""

import subprocess

import pytest
from test_lint import LINT_WAIVERS

from hw.rram.crossbar import CrossbarModel
from hw.formats.faults import fault_map
from sim.common.designs import verilog_for_component
from sim.common.runner import require_simulator, verilator_env

PARAMS = {
    # Smallest possible model: every field 1 bit, a 1×1 OU.
    "1x1_c1": dict(n_xbars=1, xbar_rows=1, xbar_cols=1, cell_bits=1, ou_rows=1, ou_cols=1, dac_bits=1, adc_bits=1),
    # Power-of-two everything, whole-crossbar OU, writes always miss, loud noise on a lossless 32-bit ADC.
    "4x16x16_c4_always_miss_loud": dict(n_xbars=4, xbar_rows=16, xbar_cols=16, cell_bits=4, ou_rows=16, ou_cols=16,
                                        dac_bits=8, adc_bits=32, pulse_error=65536, read_noise=255, seed=3),
    # The realistic size: 128×128, 2-bit cells, 9×8 OU, 1 % stuck cells.
    "128x128_c2_ou9x8": dict(n_xbars=2, xbar_rows=128, xbar_cols=128, cell_bits=2, ou_rows=9, ou_cols=8, dac_bits=1,
                             adc_bits=5, pulse_error=655, read_noise=1,
                             stuck=fault_map(1, 0.005, 0.005, (2, 128, 128), cell_bits=2), seed=1),
}


@pytest.mark.parametrize("name", PARAMS)
def test_lint_crossbar(name):
    require_simulator("verilator")
    verilator_env()
    top = "crossbar_lint_" + name
    path = verilog_for_component(top, CrossbarModel, PARAMS[name])
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", *LINT_WAIVERS, "--top-module", top, str(path)],
                          capture_output=True, text=True)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "%Warning" not in report and "%Error" not in report, report[:4000]
