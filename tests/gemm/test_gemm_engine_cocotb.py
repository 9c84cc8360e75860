"""cocotb testbenches of the emitted GEMM engine Verilog, on Verilator and Icarus (GEMM jobs and conv layers).

`make test` runs the small configs below; `make test-full` (SPARSEGEN_FULL=1) adds more jobs and the gemm presets.
"""

import os

import pytest

from gen.config import list_presets, load_config
from gen.gemm.config import GemmConfig
from sim.common.runner import SIMULATORS, run_design

CONFIGS = {
    # the small preset (2:4, ReLU, requantization to int8) with smaller maxima to keep `make test` short, and
    # every PE pipeline stage (pe_pipeline = 4)
    "gemm_4x4_2of4_small_p4": load_config("gemm_4x4_2of4", {"max_m": 16, "max_k": 40, "max_n": 10,
                                                             "pe_pipeline": 4}),
    # dense 2:2, unsigned activations, saturating 14-bit accumulator (saturation in the array and across K-tiles)
    "dense_3x2_2of2_u8_sat14": GemmConfig(rows=3, cols=2, keep=2, block=2, act_signed=False, acc_bits=14,
                                          overflow="saturate", max_m=12, max_k=30, max_n=7),
    # the same two on the output-stationary core (dataflow = "os"); OS saturation clamps per K-block in one chain
    "gemm_4x4_2of4_os_small": load_config("gemm_4x4_2of4_os", {"max_m": 10, "max_k": 40, "max_n": 10}),
    "os_dense_3x2_2of2_u8_sat14": GemmConfig(rows=3, cols=2, keep=2, block=2, act_signed=False, acc_bits=14,
                                             overflow="saturate", max_m=8, max_k=20, max_n=5, dataflow="os"),
    # activation sparsity (docs/gemm-actsparse.md): the small A-DBB 1:4 preset (2:4 weights, two K-blocks per PE,
    # ReLU, int8 out; pe_pipeline = 4 as shipped), and lossless 1:4 on 1:4 weights with unsigned activations and the
    # operand and product registers only (pe_pipeline = 2)
    "gemm_4x4_2of4_act1of4_small": load_config("gemm_4x4_2of4_act1of4", {"max_m": 12, "max_k": 70, "max_n": 10}),
    "act_3x2_1of4_a1_lossless_u8": GemmConfig(rows=3, cols=2, keep=1, block=4, act_signed=False, acc_bits=24,
                                              max_m=8, max_k=40, max_n=5, act_keep=1, act_mode="lossless",
                                              pe_pipeline=2),
    # weights 2:4 along N × A-DBB 2:4 (outer-product PEs, N-tile cols·block = 8), ReLU and int8 out, every PE stage
    "outer_3x2_2of4_a2_relu_o8": GemmConfig(rows=3, cols=2, keep=2, block=4, acc_bits=24, max_m=8, max_k=40,
                                            max_n=20, relu=True, out_bits=8, act_keep=2, weight_axis="n",
                                            pe_pipeline=4),
}
if os.environ.get("SPARSEGEN_FULL"):
    # the other weight × activation combinations: 1:4, 2:4 and dense 4:4 weights × act_keep 1 and 2, A-DBB and
    # lossless
    for keep, act_keep, mode in ((1, 1, "adbb"), (2, 2, "adbb"), (2, 1, "lossless"), (2, 2, "lossless"),
                                 (4, 1, "adbb"), (4, 2, "adbb"), (4, 1, "lossless"), (4, 2, "lossless")):
        CONFIGS[f"act_2x3_{keep}of4_a{act_keep}_{mode}"] = GemmConfig(
            rows=2, cols=3, keep=keep, block=4, acc_bits=24, max_m=8, max_k=80, max_n=8, act_keep=act_keep,
            act_mode=mode)
    # weights along N: 2:4 and 1:4 × act_keep 1, 2 and 4 (dense activations), A-DBB and lossless
    for keep in (1, 2):
        for act_keep in (1, 2, 4):
            for mode in ("adbb", "lossless"):
                CONFIGS[f"outer_2x3_{keep}of4_a{act_keep}_{mode}"] = GemmConfig(
                    rows=2, cols=3, keep=keep, block=4, acc_bits=24, max_m=8, max_k=40, max_n=26,
                    act_keep=act_keep, act_mode=mode, weight_axis="n")
    CONFIGS["sparse_2x2_1of4_u8_sat14_relu"] = GemmConfig(rows=2, cols=2, keep=1, block=4, act_signed=False, acc_bits=14,
                                                          overflow="saturate", max_m=10, max_k=40, max_n=6, relu=True)
    # max_n: at least three N-tiles (the weights-first host's 2·n_tile + 1; weights along N: n_tile = cols·block)
    CONFIGS.update({f"preset_{name}": load_config(name, {"max_m": 48, "max_k": 96,
                                                         "max_n": max(24, 2 * load_config(name).n_tile + 1)})
                    for name in list_presets("gemm")})


# `make test` runs the lossless config on Icarus only (a Verilator build costs minutes on 2 busy cores); both in
# `make test-full`
ICARUS_ONLY = set() if os.environ.get("SPARSEGEN_FULL") else {"act_3x2_1of4_a1_lossless_u8",
                                                               "outer_3x2_2of4_a2_relu_o8"}
RUNS = [(sim, name) for name in CONFIGS for sim in SIMULATORS if not (name in ICARUS_ONLY and sim == "verilator")]


@pytest.mark.parametrize("sim, name", RUNS)
def test_gemm_engine(sim, name, seed):
    jobs = os.environ.get("SPARSEGEN_JOBS", "8" if os.environ.get("SPARSEGEN_FULL") else "3")
    run_design(CONFIGS[name], "sim.gemm.cocotb_engine", sim, seed=seed, knobs={"jobs": jobs})


@pytest.mark.parametrize("sim, name", [(sim, name) for sim, name in RUNS if CONFIGS[name].dataflow == "ws"])
def test_gemm_engine_weights_first(sim, name, seed):
    """A host that sends all weight beats of a 3-tile job before its rows: the job completes, on the model's cycles."""
    run_design(CONFIGS[name], "sim.gemm.cocotb_engine", sim, seed=seed, knobs={"weights_first": 1},
               testcase="weights_first_host")


CONV_CONFIGS = ["gemm_4x4_2of4_small_p4", "gemm_4x4_2of4_os_small"]  # same Verilog as above: cached builds


@pytest.mark.parametrize("name", CONV_CONFIGS)
@pytest.mark.parametrize("sim", SIMULATORS)
def test_gemm_engine_conv(sim, name, seed):
    """3x3 conv layers (stride 1/2, padding 1/0) via im2col on the engine against the direct convolution."""
    run_design(CONFIGS[name], "sim.gemm.cocotb_engine", sim, seed=seed, knobs={"conv": 1}, testcase="conv_layers")
