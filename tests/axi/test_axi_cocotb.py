"""The AXI wrappers under cocotb with cocotbext-axi, on Verilator and Icarus: a GEMM job stream and an RRAM
program + MVM driven only through the AXI ports (sim/axi/cocotb_*.py say what each checks)."""

import pytest

from gen.config import load_config
from sim.axi.design import WrappedDesign
from sim.common.runner import run_design

pytest.importorskip("cocotbext.axi", reason="cocotbext-axi is missing: pip install -e '.[soc]' (make test installs it)")


@pytest.mark.parametrize("preset, sim", [("gemm_4x4_2of4", "verilator"), ("gemm_4x4_2of4", "icarus"),
                                         ("gemm_4x4_2of4_os", "icarus")])
def test_gemm_axi(preset, sim, seed):
    run_design(WrappedDesign(load_config(preset, ["max_m=32", "max_k=32", "max_n=32"])),
               "sim.axi.cocotb_gemm", sim, seed=seed)


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_rram_axi(sim, seed):
    run_design(WrappedDesign(load_config("rram_32x32_c2_small")), "sim.axi.cocotb_rram", sim, seed=seed)
