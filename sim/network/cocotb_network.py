"""cocotb tests: a whole int8 network, layer after layer, on the GEMM engine and on the RRAM tile
(started by :func:`sim.network.rtl.run_rtl`).

Settings (:func:`sim.common.tbenv.settings`): the DUT's config, the seed and the knob ``job``, a directory
holding ``network.npz`` (:func:`gen.network.spec.save`) and ``job.npz`` (the int8 ``inputs``, the RRAM
``strategy``, ``progress``, the GEMM engine's ``k_order``); the result (every layer's output as the RTL produced
it, the cycles per layer, ``bit_exact``) goes to ``result.npz`` there. Each layer's output is asserted equal to
:func:`sim.network.golden.int8_forward` before the next layer starts; on an A-DBB engine (``act_keep > 0``,
``act_mode = "adbb"``) with the engine's activation pruning in its GEMMs
(:func:`sim.gemm.golden.effective_acts`, as :func:`sim.network.actsparse.adbb_gemm`).
"""

import time

import cocotb
import numpy as np

from gen.compiler.sparse_map import map_layer
from gen.gemm.config import GemmConfig
from gen.network.spec import load
from gen.rram.config import RramTileConfig
from sim.common.tbenv import knob, settings
from sim.gemm.driver import gemm_result
from sim.gemm.golden import effective_acts
from sim.gemm.tb import GemmEngineTB
from sim.network.golden import int8_forward, layer_gemm, output_stage
from sim.network.rtl import gemm_matrix_of, job_paths
from sim.rram.driver import outputs_from_beats
from sim.rram.tables import footprint, tables_of
from sim.rram.tb import RramTileTB


def _job():
    net_path, job_path, out_path = job_paths(knob("job", ""))
    with np.load(job_path) as j:
        return (load(net_path), j["inputs"].astype(np.int64), str(j["strategy"]), bool(j["progress"]), out_path,
                str(j["k_order"]))


def _pool(layer, x):
    n, c, h, w = x.shape
    s = layer.size
    return x[:, :, :h // s * s, :w // s * s].reshape(n, c, h // s, s, w // s, s).max(axis=(3, 5))


def _maps(rows, n, shape):
    c, h, w = shape
    return rows.reshape(n, h * w, c).transpose(0, 2, 1).reshape(n, c, h, w)


async def _run(network, inputs, golden, out_path, progress, layer_fn, tb):
    n = len(inputs)
    x, outs, cycles = inputs, {}, {}
    for i, (layer, shape) in enumerate(zip(network.layers, network.shapes[1:])):
        t0, c0 = time.monotonic(), tb.counter.cycle
        if layer.kind == "maxpool":
            x = _pool(layer, x)
        else:
            x = _maps(await layer_fn(layer, x), n, shape)
            cycles[layer.name] = tb.counter.cycle - c0
        np.testing.assert_array_equal(x, golden[i], err_msg=f"layer {layer.name}: RTL differs from the int8 golden")
        outs[layer.name] = x
        if progress:
            cocotb.log.info("layer %s: %s, %d cycles, %.1f s", layer.name, x.shape, cycles.get(layer.name, 0),
                            time.monotonic() - t0)
    np.savez(out_path, bit_exact=np.array(True), **{f"out.{k}": v for k, v in outs.items()},
             **{f"cycles.{k}": np.array(v) for k, v in cycles.items()})


@cocotb.test()
async def gemm_network(dut):
    """Every weighted layer as im2col GEMM jobs on the engine, its ReLU/requantization between layers."""
    s = settings(GemmConfig)
    cfg = s.config
    network, inputs, _, progress, out_path, k_order = _job()
    golden = int8_forward(network, inputs=inputs, gemm=lambda layer, A, W: effective_acts(cfg, A) @ W,
                          k_order=k_order)
    tb = GemmEngineTB(dut, cfg, seed=s.seed)
    await tb.start()

    async def layer_fn(layer, x):
        A, _ = layer_gemm(layer, x, k_order=k_order)
        W = gemm_matrix_of(layer, k_order)
        first = len(tb.jobs)
        tb.submit([(A[r:r + cfg.max_m], W, layer.shift) for r in range(0, len(A), cfg.max_m)])
        await tb.finish()                 # every beat scored against the GEMM golden; counters checked
        words, at = tb.results.values, sum(p.result_beats for *_, p in tb.jobs[:first])
        parts = []
        for *_, plan in tb.jobs[first:]:
            parts.append(gemm_result(cfg, plan, words[at:at + plan.result_beats]))
            at += plan.result_beats
        C = np.concatenate(parts)
        if not layer.relu:
            half = C.shape[1] // 2
            C = C[:, :half] - C[:, half:]
        return C

    await _run(network, inputs, golden, out_path, progress, layer_fn, tb)


@cocotb.test()
async def rram_network(dut):
    """Every weighted layer mapped, programmed with write-verify, its tables loaded and every im2col vector run on
    the tile; the host applies the output stage."""
    s = settings(RramTileConfig)
    cfg = s.config
    network, inputs, strategy, progress, out_path, _ = _job()
    golden = int8_forward(network, inputs=inputs)
    tb = RramTileTB(dut, cfg, seed=s.seed)
    await tb.start()

    async def layer_fn(layer, x):
        A, W = layer_gemm(layer, x)
        mapping = map_layer(W, cfg.geometry, strategy=strategy, weight_bits=cfg.weight_bits)
        # cells are non-volatile: write only the cells this layer reads that do not already hold their level
        stale = tb.golden.mirror.levels[:mapping.n_xbars] != mapping.levels
        await tb.program(mapping.levels, footprint(mapping) & stale)
        code = await tb.load_tables(tables_of(cfg, mapping))
        assert code == 0, f"layer {layer.name}: tables rejected with code {code}"
        first = len(tb.results.values)
        for row in A:
            await tb.mvm(row)             # output beats scored against the tile golden as they leave
        await tb.idle()
        sums = outputs_from_beats(cfg, tb.results.values[first:], W.shape[1])
        np.testing.assert_array_equal(sums, A @ W, err_msg=f"layer {layer.name}: tile sums differ from x · W")
        return output_stage(sums, layer)

    await _run(network, inputs, golden, out_path, progress, layer_fn, tb)
