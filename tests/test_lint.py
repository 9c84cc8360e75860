"""`verilator --lint-only -Wall` on every preset's Verilog, with only the documented waivers."""

import subprocess

import pytest

from gen.config import list_presets, load_config
from sim.common.designs import verilog_for
from sim.common.runner import VERILATOR_WAIVERS, require_simulator, verilator_env

# On top of the build waivers (sim/common/runner.py), the style lints that -Wall adds and Amaranth's output trips:
LINT_WAIVERS = VERILATOR_WAIVERS + (
    # Amaranth keeps full-width intermediates whose top bits (carries) are unused, and the last PE column's
    # forwarded activations have no consumer.
    "-Wno-UNUSEDSIGNAL",
    # Amaranth emits each submodule as `\top.pe_r_c`, which never matches the file name.
    "-Wno-DECLFILENAME",
    # Amaranth initializes a process's outputs at the top of each `always @*` before the case logic.
    "-Wno-PROCASSINIT",
)


# every preset, and the RRAM tile's digital part alone (the variant `make synth` reports)
@pytest.mark.parametrize("preset, overrides", [(preset, {}) for preset in list_presets()]
                         + [("rram_32x32_c2_small", {"crossbar": "external"})])
def test_lint_preset(preset, overrides):
    require_simulator("verilator")
    verilator_env()
    cfg = load_config(preset, overrides)
    path = verilog_for(cfg)
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", *LINT_WAIVERS, "--top-module", cfg.top, str(path)],
                          capture_output=True, text=True)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "%Warning" not in report and "%Error" not in report, report[:4000]


# The output-stationary core is not a preset kind yet (the GEMM engine will wrap it): lint its Verilog directly.
OS_LINT_PARAMS = {
    "os_4x4_2of4": dict(rows=4, cols=4, keep=2, block=4),
    "os_2x3_1of1_u8_sat": dict(rows=2, cols=3, keep=1, block=1, act_signed=False, acc_bits=16, overflow="saturate"),
}


@pytest.mark.parametrize("name", OS_LINT_PARAMS)
def test_lint_os_core(name):
    from sim.gemm.os_core import OSCoreParams, os_verilog_for

    require_simulator("verilator")
    verilator_env()
    p = OSCoreParams(**OS_LINT_PARAMS[name])
    path = os_verilog_for(p)
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", *LINT_WAIVERS, "--top-module", p.top, str(path)],
                          capture_output=True, text=True)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "%Warning" not in report and "%Error" not in report, report[:4000]
