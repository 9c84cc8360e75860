"""A real layer from the compiler on the RTL, on Verilator and Icarus.

The trained toy CNN's conv2 (``gen/compiler/data/bars.npz``, K = 72, N = 16; :mod:`sim.compiler.compiled_layer`):

- pattern-pruned (k = 4) and mapped by the compiler with ``ou-sparse``, ``kernel-reorder`` and
  ``kernel-reorder+bit-squeeze`` onto an RRAM tile derived from the mappings (two 64×64 crossbars, 2-bit cells,
  9×16 OUs, 2-bit DAC, lossless ADC); real im2col vectors of conv2's input are compared with the tile golden,
  ``x @ Wq`` and the direct convolution, and OU_ACTIVATIONS / ADC_CONVERSIONS / SKIPPED_OUS with the compiler's predictions;
- the trained digits CNN's conv2 (``gen/network/data/digits_cnn_int8.npz``), pattern + connectivity pruned as seed
  000 prunes it (:mod:`sim.seeds.pattern`) and mapped with kernel-reorder (v2: outputs permuted, shared slots) on
  the same tile build: every output position bit-exact, counters and cycles equal to the compiler's report row;
- the same conv2 SME-quantized (one non-zero 2-bit slice per weight) and mapped bit-slice + squeeze-out (seed 004,
  4 significance crossbars squeezed into 2), same build: two vectors bit-exact, counters equal to the plan's;
- pruned 2:4 by the compiler and run as a whole convolution (im2col, one 36×72×16 job) on ``gemm_4x4_2of4``
  (ReLU, int8 requantization), compared with the direct convolution after the same output stage, cycles equal to
  the cycle model.
"""

import pytest

from hw.formats.mapping import CrossbarGeometry
from hw.formats.conv import conv_gemm_shape
from sim.compiler.compiled_layer import (GEMM_PRUNE, PADDING, RRAM_DAC_BITS, RRAM_GEOMETRY, STRIDE, compiled_layer,
                                   digits_pattern_layer, gemm_config, rram_config, rram_plans, sme_layer)
from sim.common.runner import SIMULATORS, run_design


def _rram_config():
    geometry = CrossbarGeometry(**RRAM_GEOMETRY)
    plans = rram_plans(geometry, dac_bits=RRAM_DAC_BITS)
    digits = digits_pattern_layer(geometry, dac_bits=RRAM_DAC_BITS)[2]          # seed 000's layer, same build
    sme = sme_layer(geometry)[1]                                                   # seed 004's layer, same build
    return rram_config([plan.mapping() for plan, _ in plans.values()] + [digits.mapping(), sme.mapping()])


def _gemm_config():
    _, q = compiled_layer(GEMM_PRUNE)
    h = 12                                             # conv2's input is conv1's 12×12 output
    m, k, n = conv_gemm_shape(h, h, q.shape[1], q.shape[0], *q.shape[2:], stride=STRIDE, padding=PADDING)
    return gemm_config(m, k, n)


DESIGNS = {"rram": (_rram_config, ["rram_compiled_layer", "rram_digits_pattern_layer", "rram_sme_layer"]),
           "gemm": (_gemm_config, ["gemm_nm_conv_cycle_model", "gemm_nm_conv_gaps_backpressure"])}


# the RRAM build on Icarus (80 s) runs in `make test-full` only: `make test` is at its ~15 min budget, and the tile's
# Icarus runs in make test keep the second simulator on the same RTL (tests/rram/test_rram_tile_cocotb.py)
RUNS = [pytest.param(sim, design, marks=[pytest.mark.slow] if (sim, design) == ("icarus", "rram") else [],
                     id=f"{sim}-{design}") for design in DESIGNS for sim in SIMULATORS]


@pytest.mark.parametrize("sim, design", RUNS)
def test_compiled_layer(sim, design, seed):
    make, tests = DESIGNS[design]
    run_design(make(), "sim.compiler.cocotb_compiled_layer", sim, seed=seed, testcase=tests)
