"""`verilator --lint-only -Wall` on every preset's Verilog, with only the documented waivers."""

import subprocess

import pytest

from gen.config import list_presets, load_config
from sim.tb.designs import verilog_for
from sim.tb.runner import VERILATOR_WAIVERS, require_simulator, verilator_env

# On top of the build waivers (sim/tb/runner.py), the style lints that -Wall adds and Amaranth's output trips:
LINT_WAIVERS = VERILATOR_WAIVERS + (
    # Amaranth keeps full-width intermediates whose top bits (carries) are unused, and the last PE column's
    # forwarded activations have no consumer.
    "-Wno-UNUSEDSIGNAL",
    # Amaranth emits each submodule as `\top.pe_r_c`, which never matches the file name.
    "-Wno-DECLFILENAME",
    # Amaranth initializes a process's outputs at the top of each `always @*` before the case logic.
    "-Wno-PROCASSINIT",
)


@pytest.mark.parametrize("preset", list_presets())
def test_lint_preset(preset):
    require_simulator("verilator")
    verilator_env()
    cfg = load_config(preset)
    path = verilog_for(cfg)
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", *LINT_WAIVERS, "--top-module", cfg.top, str(path)],
                          capture_output=True, text=True)
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "%Warning" not in report and "%Error" not in report, report[:4000]
