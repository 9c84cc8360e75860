"""A real layer through the compiler, for the RTL tests: the project's trained CNN's ``conv2`` and its input.

``gen/compiler/data/bars.npz`` holds the int8 weights of the toy CNN of :mod:`gen.compiler.train_tiny`
(conv 3×3 1→8, pad 1 → ReLU → conv 3×3 8→16, stride 2, pad 1 → …). This module prunes and maps ``conv2``
(``K = 8·3·3 = 72`` im2col rows, ``N = 16`` outputs) with the compiler exactly as ``map-report --weights`` does
(:func:`gen.compiler.report.prepared_layers`, :func:`gen.compiler.sparse_map.plan_layer`,
:func:`gen.compiler.report.map_strategies` for the predicted counters), derives a tile / engine config that holds
the result, and makes conv2's real input: a generated "bars" image quantized to int8, through conv1 (integer
convolution, ReLU and requantization to int8 with the GEMM engine's output stage). The pytest side uses it to
build the Verilog, the cocotb side (``sim/compiler/cocotb_compiled_layer.py``) to drive the same layer.
"""

import dataclasses

import numpy as np

from gen.compiler.prune import as_matrix
from gen.compiler.report import map_strategies, prepared_layers
from gen.compiler.sparse_map import plan_layer
from gen.compiler.train_tiny import DATA as BARS
from gen.compiler.train_tiny import bars
from gen.config import load_config
from hw.formats.conv import conv2d
from sim.gemm.golden import requantize
from hw.formats.mvm import lossless_adc_bits

__all__ = ["BARS", "LAYER", "STRIDE", "PADDING", "RRAM_PRUNE", "RRAM_STRATEGIES", "RRAM_GEOMETRY", "RRAM_DAC_BITS",
           "GEMM_PRUNE",
           "compiled_layer", "layer_input", "requant_shift", "rram_plans", "rram_config", "gemm_config"]

LAYER = "conv2"
STRIDE, PADDING = 2, 1                     # conv2 of the bars CNN (train_tiny: stride 2, pad 1)
RRAM_PRUNE = "pattern:k=4,P=4"
# ou-sparse and kernel-reorder schedule whole OUs; kernel-reorder+bit-squeeze adds per-OU column masks.
RRAM_STRATEGIES = ("ou-sparse", "kernel-reorder", "kernel-reorder+bit-squeeze")
# 64×64 crossbars of 2-bit cells, 9×16 OUs: an OU column group holds two outputs (8 bitlines each), so the kernel
# reordering has outputs to group (with 9×8 OUs a group is one output and it changes nothing), and every
# strategy's mapping of conv2 fits two crossbars.
RRAM_GEOMETRY = {"xbar_rows": 64, "xbar_cols": 64, "ou_rows": 9, "ou_cols": 16, "cell_bits": 2}
# 2-bit DAC: 5 input planes instead of 8 (signed 8-bit) cuts the simulated cycles
RRAM_DAC_BITS = 2
GEMM_PRUNE = "nm:2:4"
_INPUT_BITS = 8


def compiled_layer(prune: str, name: str = LAYER):
    """``(layer, q)``: the compiler's pruned int8 weights (OIHW, int64) of one bars.npz layer."""
    for layer, q, _ in prepared_layers(weights=BARS, prune=prune, quant="int8"):
        if layer.name == name:
            return layer, q
    raise ValueError(f"{BARS} has no layer {name!r}")


def requant_shift(values, out_bits: int = 8) -> int:
    """The smallest right shift that brings ``max(values, 0)`` into signed ``out_bits`` (a per-layer shift)."""
    top = int(np.max(values, initial=0))
    return max(0, top.bit_length() - (out_bits - 1))


def layer_input(seed: int) -> np.ndarray:
    """conv2's input ``[8, 12, 12]`` (int64, 0 … 127) for one generated bars image.

    The image (``train_tiny.bars(1, seed)``) is quantized to int8 by its largest magnitude, convolved with the
    int8 ``conv1`` (pad 1), then ReLU and requantization to int8 (round half up, per-layer shift), as the GEMM
    engine's output stage does (:func:`sim.gemm.golden.requantize`).
    """
    image = bars(1, seed)[0][0].astype(np.float64)                        # [1, 12, 12]
    top = (1 << (_INPUT_BITS - 1)) - 1
    x = np.clip(np.round(image / np.abs(image).max() * top), -top, top).astype(np.int64)
    _, w1 = compiled_layer("none", "conv1")
    acc = conv2d(x, w1, stride=1, padding=1)
    return requantize(acc, relu=True, out_bits=_INPUT_BITS, shift=requant_shift(acc))


def rram_plans(geometry, *, input_bits=8, input_signed=True, dac_bits=1):
    """Every strategy of :data:`RRAM_STRATEGIES` on the pattern-pruned conv2: ``{strategy: (plan, row)}``.

    ``plan`` is the :class:`gen.compiler.sparse_map.MapPlan` (``plan.mapping()`` the tile's mapping, ``plan.weights``
    the ``K × N`` matrix it computes); ``row`` is the compiler's report row (``map-report``) for the same layer,
    whose ``ou_activations`` and ``adc_conversions`` are per inference, i.e. for ``row["positions"]`` vectors.
    """
    layer, q = compiled_layer(RRAM_PRUNE)
    rows = map_strategies(layer, q, geometry, strategies=list(RRAM_STRATEGIES), weight_bits=8,
                          input_bits=input_bits, input_signed=input_signed, dac_bits=dac_bits)
    return {s: (plan_layer(as_matrix(q), geometry, strategy=s, weight_bits=8), rows[s]) for s in RRAM_STRATEGIES}


def rram_config(mappings, *, name="rram_bars_conv2"):
    """The smallest tile of :data:`RRAM_GEOMETRY` (a ``replace`` of the ``rram_64x64_c1`` preset, 8-bit signed
    inputs, :data:`RRAM_DAC_BITS` DAC, lossless ADC) that holds every mapping in ``mappings``: their crossbars,
    OUs, K and N."""
    g = RRAM_GEOMETRY
    return dataclasses.replace(
        load_config("rram_64x64_c1"), **g, dac_bits=RRAM_DAC_BITS,
        adc_bits=lossless_adc_bits(g["ou_rows"], g["cell_bits"], RRAM_DAC_BITS),
        n_xbars=max(m.n_xbars for m in mappings), max_ous=max(m.n_ous for m in mappings),
        max_inputs=max(m.n_inputs for m in mappings), max_outputs=max(m.n_outputs for m in mappings), name=name)


def gemm_config(m: int, k: int, n: int):
    """The ``gemm_4x4_2of4`` preset (2:4, ReLU, int8 output) with its maxima set to one ``M × K × N`` job."""
    return load_config("gemm_4x4_2of4", {"max_m": m, "max_k": k, "max_n": n})
