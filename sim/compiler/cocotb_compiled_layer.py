"""cocotb tests: the trained CNN's conv2, compiled, on the RRAM tile and on the GEMM engine
(run by tests/compiler/test_compiled_layers_cocotb.py).

Settings (:func:`sim.common.tbenv.settings`): the DUT's config and the stimulus seed; the pytest side runs the
``rram_*`` tests on an ``RramTile`` and the ``gemm_*`` tests on a ``GemmEngine``. The layer, its mapping and its
input come from :mod:`sim.compiler.compiled_layer` (the compiler), the testbenches from :mod:`sim.rram.tb` and
:mod:`sim.gemm.tb`.
"""

import random

import cocotb
import numpy as np

from gen.compiler.nm import pack_nm
from gen.gemm.config import GemmConfig
from gen.rram.config import RramTileConfig
from sim.rram.tables import footprint, tables_of
from hw.formats.conv import conv2d, im2col, weights_to_gemm
from sim.gemm.driver import gemm_result
from sim.gemm.conv import conv2d_direct
from sim.gemm.golden import padded_weights, requantize
from hw.formats.mvm import mvm as ideal_mvm
from gen.gemm.perf import job_cycles
from sim.compiler.compiled_layer import (GEMM_PRUNE, LAYER, PADDING, RRAM_PRUNES, RRAM_STRATEGIES, STRIDE,
                                         compiled_layer, digits_pattern_layer, layer_input, requant_shift,
                                         rram_plans, run_layer_on_tile, sme_layer)
from sim.gemm.tb import GemmEngineTB
from sim.rram.tb import RramTileTB
from sim.common.tbenv import settings

VECTORS = 2          # conv2 output positions per strategy with gaps and backpressure (then all of them, ideal)
_CELLS = []          # the tile's cell levels when the last RRAM test of this build ended (cells survive a reset)


def _restore_cells(tb):
    """A fresh golden model learns what the non-volatile cells hold after the earlier tests of this build, so each
    test programs only the cells that differ (not its whole footprint)."""
    if _CELLS:
        for m, levels in zip(tb.golden.mirrors, _CELLS[0]):
            m.levels[0] = levels


def _keep_cells(tb):
    _CELLS[:] = [[m.levels[0].copy() for m in tb.golden.mirrors]]


@cocotb.test()
async def rram_compiled_layer(dut):
    """Pattern-pruned conv2 mapped by each strategy: programmed, tables loaded, real im2col vectors bit-exact with
    the tile golden, ``x @ Wq`` and the direct convolution; counters equal to the compiler's predictions. One
    mapping packs its column groups into shared slots (bitlines serving two outputs in different OUs)."""
    s = settings(RramTileConfig)
    cfg, seed, rng = s.config, s.seed, s.rng
    assert not cfg.adc_clips, "the tile's ADC must be lossless for the x @ Wq comparison"
    plans = rram_plans(cfg.geometry, input_bits=cfg.input_bits, input_signed=cfg.input_signed, dac_bits=cfg.dac_bits)
    x2 = layer_input(seed)
    tb = RramTileTB(dut, cfg, seed=seed, gap=0.2, stall=0.3)
    await tb.start()
    _restore_cells(tb)
    prev = await tb.read_regs()
    dense_ous = cfg.n_xbars * cfg.row_groups * cfg.col_groups
    reordered = shared = 0
    outputs = 0
    for strategy in RRAM_STRATEGIES:
        _, q = compiled_layer(RRAM_PRUNES[strategy])
        kh, kw = q.shape[2:]
        A = im2col(x2, kh, kw, STRIDE, PADDING)                     # [positions, K]: every output pixel's window
        direct = conv2d_direct(x2, q, STRIDE, PADDING).reshape(q.shape[0], -1).T    # [positions, N]
        pick = np.sort(rng.choice(len(A), VECTORS, replace=False))
        plan, row = plans[strategy]
        mapping = plan.mapping()
        shared += mapping.shared_bitlines() > 0
        W = plan.weights
        np.testing.assert_array_equal(W, weights_to_gemm(q))        # the compiler's K order is the driver's
        reordered += "output_order" in mapping.info
        # Cells are non-volatile: program the cells an MVM reads that do not already hold their level.
        stale = tb.golden.mirror.levels[:mapping.n_xbars] != mapping.levels
        await tb.program(mapping.levels, footprint(mapping) & stale)
        assert await tb.load_tables(tables_of(cfg, mapping)) == 0, strategy
        X = A[pick]
        ys = np.array([await tb.mvm(x) for x in X])                 # the RTL's beats are scored against these
        regs = await tb.check_registers()                           # every register equals the golden's
        got = {name: regs[name] - prev[name] for name in ("OU_ACTIVATIONS", "ADC_CONVERSIONS", "SKIPPED_OUS", "MVMS")}
        prev = regs
        cocotb.log.info("%s (%s, %s slots, %d bitlines shared): %d OUs on %d crossbars, %s per %d vectors",
                        strategy, RRAM_PRUNES[strategy], plan.stats["slots"], mapping.shared_bitlines(),
                        mapping.n_ous, mapping.n_xbars, got, VECTORS)
        np.testing.assert_array_equal(ys, ideal_mvm(mapping, X, input_bits=cfg.input_bits,
                                                    input_signed=cfg.input_signed, dac_bits=cfg.dac_bits,
                                                    adc_bits=cfg.adc_bits))
        np.testing.assert_array_equal(ys, X @ W)
        np.testing.assert_array_equal(ys, direct[pick])
        # the compiler's report row counts one inference = row["positions"] vectors
        positions = row["positions"]
        assert got["MVMS"] == VECTORS
        assert got["OU_ACTIVATIONS"] * positions == row["ou_activations"] * VECTORS, (strategy, got, row)
        assert got["ADC_CONVERSIONS"] * positions == row["adc_conversions"] * VECTORS, (strategy, got, row)
        assert got["OU_ACTIVATIONS"] == plan.stats["ous"] * cfg.n_planes * VECTORS
        assert got["ADC_CONVERSIONS"] == plan.stats["adc_per_plane"] * cfg.n_planes * VECTORS
        assert got["SKIPPED_OUS"] == (dense_ous - mapping.n_ous) * cfg.n_planes * VECTORS
        # One whole inference from an ideal host: every output position back to back; the RTL's cycles (first input
        # beat to last output beat) and counters equal the compiler's report row.
        await tb.idle()
        src, sink = tb.sources["inputs"], tb.sinks["outputs"]
        src.set_pause_generator(None)
        sink.set_pause_generator(None)
        first, done = len(src.handshake_cycles), len(sink.handshake_cycles)
        ys = np.array([await tb.mvm(x) for x in A])
        regs = await tb.check_registers()
        cycles = sink.handshake_cycles[-1] - src.handshake_cycles[first] + 1
        assert len(sink.handshake_cycles) - done == positions * q.shape[0]
        np.testing.assert_array_equal(ys, direct)
        assert cycles == row["cycles"], (strategy, cycles, row["cycles"])
        assert regs["OU_ACTIVATIONS"] - prev["OU_ACTIVATIONS"] == row["ou_activations"], strategy
        assert regs["ADC_CONVERSIONS"] - prev["ADC_CONVERSIONS"] == row["adc_conversions"], strategy
        cocotb.log.info("%s: one inference (%d vectors) in %d cycles = the compiler's row", strategy, positions, cycles)
        prev = regs
        outputs += (VECTORS + len(A)) * q.shape[0]
        src.set_pause_generator(tb.pause_generator("inputs", random.Random(seed)))
        sink.set_pause_generator(tb.pause_generator("outputs", random.Random(seed + 1)))
    assert reordered, "kernel-reorder kept the identity order: the layer did not exercise output permutation"
    assert shared, "no mapping shared a slot: the run did not exercise per-OU routing of two outputs on a bitline"
    tb.scoreboard.assert_done(outputs)
    _keep_cells(tb)


async def _layer_after_earlier_tests(dut, cfg, seed, mapping, X):
    """A fresh testbench (gaps and backpressure) on the cells the earlier tests left; ``mapping`` run on the rows of
    ``X`` (only the cells that differ programmed), every output checked against the tile golden. Returns ``(tb,
    registers before, Y, registers after)``."""
    tb = RramTileTB(dut, cfg, seed=seed, gap=0.2, stall=0.3)
    await tb.start()
    _restore_cells(tb)
    prev = await tb.read_regs()
    Y, regs = await run_layer_on_tile(tb, mapping, X)
    np.testing.assert_array_equal(Y, ideal_mvm(mapping, X, input_bits=cfg.input_bits, input_signed=cfg.input_signed,
                                               dac_bits=cfg.dac_bits, adc_bits=cfg.adc_bits))
    return tb, prev, Y, regs


@cocotb.test()
async def rram_digits_pattern_layer(dut):
    """Seed 000 on the RTL: the trained digits CNN's conv2 pattern + connectivity pruned (k = 4) and mapped with
    kernel-reorder on mapping format v2 (outputs permuted by pattern, column groups sharing slots). Every output of
    every output position, with input gaps and output backpressure, equals the tile golden and ``x @ Wq``; the
    counters of one inference and, from an ideal host, its cycles equal the compiler's report row."""
    s = settings(RramTileConfig)
    cfg, seed = s.config, s.seed
    _, q, plan, row, A = digits_pattern_layer(cfg.geometry, image=seed % 450, input_bits=cfg.input_bits,
                                              input_signed=cfg.input_signed, dac_bits=cfg.dac_bits)
    mapping, W = plan.mapping(), plan.weights
    np.testing.assert_array_equal(W, weights_to_gemm(q))
    assert "output_order" in mapping.info, "kernel-reorder kept the identity order"
    assert mapping.shared_bitlines() > 0, "no bitline serves two outputs: per-OU routing not exercised"
    assert (~q.reshape(-1, 9).any(axis=1)).sum() > 0 and (q.reshape(-1, 9) != 0).sum(axis=1).max() <= 4
    positions = row["positions"]
    assert len(A) == positions and A.any()
    tb, prev, Y, regs = await _layer_after_earlier_tests(dut, cfg, seed, mapping, A)
    np.testing.assert_array_equal(Y, A @ W)
    got = {name: regs[name] - prev[name] for name in ("OU_ACTIVATIONS", "ADC_CONVERSIONS", "SKIPPED_OUS", "MVMS")}
    dense_ous = cfg.n_xbars * cfg.row_groups * cfg.col_groups
    assert got == {"OU_ACTIVATIONS": row["ou_activations"], "ADC_CONVERSIONS": row["adc_conversions"],
                   "SKIPPED_OUS": (dense_ous - mapping.n_ous) * cfg.n_planes * positions, "MVMS": positions}, \
        (got, row)
    # the same inference from an ideal host: first input beat to last output beat = the row's cycles
    await tb.idle()
    src, sink = tb.sources["inputs"], tb.sinks["outputs"]
    src.set_pause_generator(None)
    sink.set_pause_generator(None)
    first = len(src.handshake_cycles)
    ys = np.array([await tb.mvm(x) for x in A])                     # back to back: the tables are loaded
    regs2 = await tb.check_registers()
    np.testing.assert_array_equal(ys, A @ W)
    assert regs2["OU_ACTIVATIONS"] - regs["OU_ACTIVATIONS"] == row["ou_activations"]
    cycles = sink.handshake_cycles[-1] - src.handshake_cycles[first] + 1
    assert cycles == row["cycles"], (cycles, row["cycles"])
    cocotb.log.info("digits conv2 pattern + kernel-reorder: %d OUs on %d crossbar(s), %d bitlines shared, %s per "
                    "inference, %d cycles = the compiler's row", mapping.n_ous, mapping.n_xbars,
                    mapping.shared_bitlines(), got, cycles)
    tb.scoreboard.assert_done(2 * positions * q.shape[0])
    _keep_cells(tb)


@cocotb.test()
async def rram_sme_layer(dut):
    """Seed 004 on the RTL: the trained digits CNN's conv2, SME-quantized (one non-zero 2-bit slice per weight) and
    mapped bit-slice + squeeze-out (the significances' crossbars emptied into one another, every OU column routed to
    its output and significance). Two real im2col vectors with input gaps and output backpressure: every output
    equals the tile golden and ``x @ Wq``; OU_ACTIVATIONS and ADC_CONVERSIONS equal the compiler's plan."""
    s = settings(RramTileConfig)
    cfg, seed, rng = s.config, s.seed, s.rng
    assert not cfg.adc_clips, "the tile's ADC must be lossless for the x @ Wq comparison"
    q, plan = sme_layer(cfg.geometry)
    mapping = plan.mapping()
    assert plan.stats["crossbars"] < plan.stats["bit_slice_crossbars"], "squeeze-out emptied no crossbar"
    assert len(set(mapping.ou_xbar[mapping.ou_col_shift.max(axis=1) > 0].tolist())) < len(
        plan.info["significance_crossbars"]), "significances did not share a crossbar"
    A = im2col(layer_input(seed), *q.shape[2:], STRIDE, PADDING)
    X = A[np.sort(rng.choice(len(A), VECTORS, replace=False))]
    tb, prev, Y, regs = await _layer_after_earlier_tests(dut, cfg, seed, mapping, X)
    np.testing.assert_array_equal(Y, X @ weights_to_gemm(q))
    assert regs["OU_ACTIVATIONS"] - prev["OU_ACTIVATIONS"] == plan.stats["ous"] * cfg.n_planes * VECTORS
    assert regs["ADC_CONVERSIONS"] - prev["ADC_CONVERSIONS"] == plan.stats["adc_per_plane"] * cfg.n_planes * VECTORS
    cocotb.log.info("SME conv2 (digits): %d crossbars after squeeze-out (bit-slice %d), %d OUs, %d vectors bit-exact",
                    mapping.n_xbars, plan.stats["bit_slice_crossbars"], mapping.n_ous, VECTORS)
    tb.scoreboard.assert_done(VECTORS * mapping.n_outputs)
    _keep_cells(tb)


async def _gemm_conv(dut, *, gap, stall):
    """conv2 pruned 2:4 by the compiler, lowered by im2col, one job on the engine; returns the testbench, the
    counters and the output compared with the direct convolution (ReLU and requantization applied)."""
    s = settings(GemmConfig)
    cfg, seed = s.config, s.seed
    _, q = compiled_layer(GEMM_PRUNE)
    x2 = layer_input(seed)
    kh, kw = q.shape[2:]
    A, W = im2col(x2, kh, kw, STRIDE, PADDING), weights_to_gemm(q)
    # The compiler's packed slots are the ones the driver sends: same compress_nm, same zero padding.
    values, indices = pack_nm(LAYER, q, keep=cfg.keep, block=cfg.block)
    dv, di = padded_weights(cfg, W)
    np.testing.assert_array_equal(values, dv[:len(values), :W.shape[1]])
    np.testing.assert_array_equal(indices, di[:len(indices), :W.shape[1]])
    direct = conv2d_direct(x2, q, STRIDE, PADDING)
    shift = requant_shift(direct)
    expected = requantize(direct, relu=cfg.relu, out_bits=cfg.out_bits, shift=shift)
    tb = GemmEngineTB(dut, cfg, seed=seed, gap=gap, stall=stall)
    await tb.start()
    tb.submit([(A, W, shift)])
    got = await tb.finish()                # every result beat against the GEMM golden, count, counters
    (*_, plan), = tb.jobs
    C = gemm_result(cfg, plan, tb.results.values)

    def engine(a, w):
        np.testing.assert_array_equal(a, A)
        np.testing.assert_array_equal(w, W)
        return C
    out = conv2d(x2, q, STRIDE, PADDING, gemm=engine)
    assert out.shape == expected.shape == (q.shape[0], *direct.shape[1:])
    assert len(tb.results.values) == plan.result_beats and out.size == A.shape[0] * W.shape[1]
    np.testing.assert_array_equal(out, expected)
    assert (expected > 0).mean() > 0.1, "ReLU/requantization left (almost) nothing: the comparison is too weak"
    cocotb.log.info("conv2 2:4 as a %d×%d×%d GEMM, shift %d: %d outputs, %d cycles", *A.shape, W.shape[1], shift,
                    out.size, got["cycles"])
    return tb, got


@cocotb.test()
async def gemm_nm_conv_cycle_model(dut):
    """2:4 conv2 from an ideal host: bit-exact with the direct convolution, cycles equal to ``gen.gemm.perf``."""
    tb, got = await _gemm_conv(dut, gap=0.0, stall=0.0)
    pred = tb.check_model(got)
    (*_, plan), = tb.jobs
    assert pred.cycles == job_cycles(tb.cfg, plan.m, plan.k, plan.n)


@cocotb.test()
async def gemm_nm_conv_gaps_backpressure(dut):
    """2:4 conv2 with random input gaps and output backpressure: still bit-exact, nothing lost or duplicated."""
    _, got = await _gemm_conv(dut, gap=0.3, stall=0.4)
    assert got["stall_output"] > 0 and got["stall_input"] > 0, "gaps or backpressure were never exercised"
