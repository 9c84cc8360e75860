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

__all__ = ["BARS", "LAYER", "STRIDE", "PADDING", "RRAM_PRUNE", "RRAM_STRATEGIES", "RRAM_PRUNES", "RRAM_GEOMETRY",
           "RRAM_DAC_BITS",
           "GEMM_PRUNE",
           "compiled_layer", "layer_input", "requant_shift", "rram_plans", "rram_config", "gemm_config",
           "plan_user_layer", "tile_config", "run_layer_on_tile", "DIGITS_LAYER", "DIGITS_STRATEGY", "digits_prune",
           "digits_pattern_layer", "SME_TERMS", "sme_layer"]

LAYER = "conv2"
STRIDE, PADDING = 2, 1                     # conv2 of the bars CNN (train_tiny: stride 2, pad 1)
RRAM_PRUNE = "pattern:k=4,P=4"
# ou-sparse and kernel-reorder schedule whole OUs; kernel-reorder+bit-squeeze adds per-OU column masks.
RRAM_STRATEGIES = ("ou-sparse", "kernel-reorder", "kernel-reorder+bit-squeeze")
# The pruning each strategy's run uses: k = 2 leaves every column group so few compacted rows that the compiler
# packs them into shared slots (one crossbar instead of two; bitlines serve two outputs in different row groups).
RRAM_PRUNES = {"ou-sparse": RRAM_PRUNE, "kernel-reorder": RRAM_PRUNE, "kernel-reorder+bit-squeeze": "pattern:k=2,P=4"}
# 64×64 crossbars of 2-bit cells, 9×16 OUs: an OU column group holds two outputs (8 bitlines each), so the kernel
# reordering has outputs to group (with 9×8 OUs a group is one output and it changes nothing), and every
# strategy's mapping of conv2 fits two crossbars.
RRAM_GEOMETRY = {"xbar_rows": 64, "xbar_cols": 64, "ou_rows": 9, "ou_cols": 16, "cell_bits": 2}
# 2-bit DAC: 5 input planes instead of 8 (signed 8-bit) cuts the simulated cycles
RRAM_DAC_BITS = 2
GEMM_PRUNE = "nm:2:4"
# The trained digits CNN's conv2 (gen.network.spec.SHIPPED "digits-int8": 3×3 8→16, stride 2, pad 1, K = 72, N = 16,
# 2×2 output positions) pattern-pruned as seed 000 prunes it (sim.seeds.pattern) and mapped with kernel-reorder on
# RRAM_GEOMETRY, whose 9×16 OUs hold two outputs per column group, so the reordering pairs outputs by pattern.
DIGITS_LAYER = "conv2"
DIGITS_STRATEGY = "kernel-reorder"
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
    """Every strategy of :data:`RRAM_STRATEGIES` on conv2 pattern-pruned as :data:`RRAM_PRUNES` says:
    ``{strategy: (plan, row)}``.

    ``plan`` is the :class:`gen.compiler.sparse_map.MapPlan` (``plan.mapping()`` the tile's mapping, ``plan.weights``
    the ``K × N`` matrix it computes); ``row`` is the compiler's report row (``map-report``) for the same layer,
    whose ``ou_activations`` and ``adc_conversions`` are per inference, i.e. for ``row["positions"]`` vectors.
    """
    plans = {}
    for s in RRAM_STRATEGIES:
        layer, q = compiled_layer(RRAM_PRUNES[s])
        row, = map_strategies(layer, q, geometry, strategies=[s], weight_bits=8, input_bits=input_bits,
                              input_signed=input_signed, dac_bits=dac_bits).values()
        plans[s] = (plan_layer(as_matrix(q), geometry, strategy=s, weight_bits=8), row)
    return plans


SME_TERMS = 1
"""The SME layer on the tile: at most one non-zero 2-bit slice per weight (the tile test's 2-bit cells)."""


def sme_layer(geometry=None):
    """The trained digits CNN's ``conv2`` (shipped float weights, K = 72, N = 16) SME-quantized
    (:func:`gen.compiler.sme.sme_quantize`, :data:`SME_TERMS` slices of :data:`RRAM_GEOMETRY`'s cells) and mapped
    with the ``bit-slice`` strategy (bit-slice mapping + squeeze-out): ``(q, plan)``, ``q`` OIHW int64."""
    from gen.compiler.sme import sme_quantize
    from gen.network.spec import load
    from hw.formats.mapping import CrossbarGeometry

    geometry = geometry or CrossbarGeometry(**RRAM_GEOMETRY)
    w = next(layer.weight for layer in load("digits-float").weighted if layer.name == LAYER)
    q, _, _ = sme_quantize(w, terms=SME_TERMS, cell_bits=geometry.cell_bits)
    return q, plan_layer(as_matrix(q), geometry, strategy="bit-slice", weight_bits=8)


def rram_config(mappings, *, name="rram_bars_conv2"):
    """The smallest tile of :data:`RRAM_GEOMETRY` (a ``replace`` of the ``rram_64x64_c1`` preset, 8-bit signed
    inputs, :data:`RRAM_DAC_BITS` DAC, lossless ADC) that holds every mapping in ``mappings``: their crossbars,
    OUs, K and N."""
    return tile_config(mappings, RRAM_GEOMETRY, dac_bits=RRAM_DAC_BITS, name=name)


def tile_config(mappings, geometry: dict, *, dac_bits: int = RRAM_DAC_BITS, name: str = "rram_layer"):
    """The smallest tile of ``geometry`` (``xbar_rows``, ``xbar_cols``, ``ou_rows``, ``ou_cols``, ``cell_bits``; a
    ``replace`` of the ``rram_64x64_c1`` preset, 8-bit signed inputs, ``dac_bits`` DAC, lossless ADC) that holds
    every mapping in ``mappings``: their crossbars, OUs, K and N."""
    g = dict(geometry)
    return dataclasses.replace(
        load_config("rram_64x64_c1"), **g, dac_bits=dac_bits,
        adc_bits=lossless_adc_bits(g["ou_rows"], g["cell_bits"], dac_bits),
        n_xbars=max(m.n_xbars for m in mappings), max_ous=max(m.n_ous for m in mappings),
        max_inputs=max(m.n_inputs for m in mappings), max_outputs=max(m.n_outputs for m in mappings), name=name)


def plan_user_layer(*, path, name=None, prune="none", strategy="dense", geometry=None):
    """One layer of a user ``.npz`` (``map-report --weights``'s format) through the compiler as ``map-report`` takes
    it: ``(layer, q, plan)`` with the pruned int8 weights ``q`` and the :class:`gen.compiler.sparse_map.MapPlan`
    (``plan.mapping()`` what the tile holds, ``plan.weights`` the ``K × N`` matrix it computes).

    ``name`` picks a layer when the file holds several; ``geometry`` is a dict of :class:`CrossbarGeometry` fields.
    Deterministic: the cocotb side plans the same layer again from the same arguments. ``ValueError`` for an
    unknown or ambiguous layer, a depthwise layer (several matrices: map it with ``map-report``), a bad strategy.
    """
    from hw.formats.mapping import CrossbarGeometry

    geometry = CrossbarGeometry(**(geometry or {}))
    layers = [(layer, q) for layer, q, _ in prepared_layers(weights=path, prune=prune, quant="int8",
                                                             geometry=geometry)]
    names = [layer.name for layer, _ in layers]
    if name is None and len(layers) != 1:
        raise ValueError(f"--layer {path} holds {len(layers)} layers {names}: allowed one layer, or pick one with "
                         "--name")
    picked = [(layer, q) for layer, q in layers if name is None or layer.name == name]
    if not picked:
        raise ValueError(f"--name {name!r} is not a layer of {path}: allowed {', '.join(names)}")
    layer, q = picked[0]
    if layer.kind == "dw":
        raise ValueError(f"--layer {path}: {layer.name!r} is depthwise (one crossbar matrix per channel chunk): "
                         "allowed a conv or fully-connected layer")
    return layer, q, plan_layer(as_matrix(q), geometry, strategy=strategy, weight_bits=8)


async def run_layer_on_tile(tb, mapping, X, *, done=None):
    """Program ``mapping`` onto the tile of ``tb`` (a :class:`sim.rram.tb.RramTileTB`: the cells its MVMs read that
    do not hold their level yet), load its tables, run every row of ``X`` (``[V, K]`` integers) as an MVM.

    Returns ``(Y, registers)``: ``Y [V, N]`` (int64) decoded from the output beats the RTL sent, and every register
    (checked against the tile golden by ``tb.check_registers``). ``done``, a list, gets one entry per finished MVM
    (progress). The one place that drives a compiled layer through the tile's program/table/input protocol.
    """
    from hw.rram import beats
    from sim.rram.tables import footprint, tables_of

    stale = tb.golden.mirror.levels[:mapping.n_xbars] != mapping.levels
    await tb.program(mapping.levels, footprint(mapping) & stale)
    code = await tb.load_tables(tables_of(tb.cfg, mapping))
    if code:
        raise ValueError(f"the tile rejects the mapping's tables (error code {code})")
    start = len(tb.results)
    for x in X:
        await tb.mvm(x)
        await tb.wait_results(start + mapping.n_outputs, "one MVM's outputs")
        start += mapping.n_outputs
        if done is not None:
            done.append(1)
    regs = await tb.check_registers()
    values = beats.unpack_beats(beats.output_layout(beats.params_of(tb.cfg)), tb.results.values)["value"]
    return values.reshape(len(X), mapping.n_outputs), regs


def gemm_config(m: int, k: int, n: int):
    """The ``gemm_4x4_2of4`` preset (2:4, ReLU, int8 output) with its maxima set to one ``M × K × N`` job."""
    return load_config("gemm_4x4_2of4", {"max_m": m, "max_k": k, "max_n": n})


def digits_prune() -> str:
    """The ``--prune`` spec of seed 000 (:func:`sim.seeds.pattern.prune_spec`: pattern k = 4 + connectivity)."""
    from sim.seeds.pattern import prune_spec

    return prune_spec()


def digits_pattern_layer(geometry, *, image: int = 0, input_bits=8, input_signed=True, dac_bits=1):
    """The shipped int8 digits CNN's :data:`DIGITS_LAYER`, pattern-pruned by the compiler (:func:`digits_prune`,
    through ``map-report --weights``'s path :func:`gen.compiler.report.prepared_layers` on the network's ``.npz``)
    and planned with :data:`DIGITS_STRATEGY`.

    Returns ``(layer, q, plan, row, A)``: the report layer, the pruned int8 weights (OIHW), the
    :class:`gen.compiler.sparse_map.MapPlan`, the compiler's report row (per inference: ``row["positions"]``
    vectors) and ``A`` ``[positions, K]``, the layer's im2col input for test image ``image``: the previous layer's
    int8 output in the int8 golden, as :data:`gen.network.spec.TEST_ACTIVATIONS` holds it (no data set needed).
    """
    import tempfile
    from pathlib import Path

    from gen.network.spec import TEST_ACTIVATIONS, load
    from sim.network.golden import layer_gemm
    from sim.seeds.pattern import network_npz

    net = load("digits-int8")
    with tempfile.TemporaryDirectory() as tmp:
        path = network_npz(net, Path(tmp) / "digits.npz", layers=[DIGITS_LAYER])
        (layer, q, _), = prepared_layers(weights=path, prune=digits_prune(), quant="int8")
    row, = map_strategies(layer, q, geometry, strategies=[DIGITS_STRATEGY], weight_bits=8, input_bits=input_bits,
                          input_signed=input_signed, dac_bits=dac_bits).values()
    plan = plan_layer(as_matrix(q), geometry, strategy=DIGITS_STRATEGY, weight_bits=8)
    names = [l.name for l in net.layers]
    with np.load(TEST_ACTIVATIONS) as acts:                  # the layer's int8 input: the previous layer's output
        x = acts[names[names.index(DIGITS_LAYER) - 1]][image:image + 1].astype(np.int64)
    A, _ = layer_gemm(next(l for l in net.layers if l.name == DIGITS_LAYER), x)
    return layer, q, plan, row, A
