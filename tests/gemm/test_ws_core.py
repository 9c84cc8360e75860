"""WSArrayCore in the Amaranth simulator: shadow-weight tiles back to back, ragged lanes and columns, counts, peek."""

import random

import numpy as np
import pytest

from hw import bits
from hw.gemm.ws_core import WSArrayCore
from hw.systolic import beats
from gen.systolic.config import SystolicConfig
from sim.systolic.golden import gemm_nm, random_acts, random_nm_weights
from hw.formats.nm import compress_nm
from gen.systolic import perf
from sim.common.amaranth_bench import Bench, bound

CASES = {"2x3_2of4": SystolicConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24),
         "3x2_1of1": SystolicConfig(rows=3, cols=2, keep=1, block=1, acc_bits=24),
         "2x3_2of4_p4": SystolicConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24, pe_pipeline=4)}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("gap", [0.0, 0.4])
def test_core_tiles(name, gap, seed):
    cfg = CASES[name]
    rng = np.random.default_rng(seed)
    prng = random.Random(seed)
    core = WSArrayCore(rows=cfg.rows, cols=cfg.cols, act_bits=8, act_signed=True, weight_bits=8, acc_bits=24,
                       keep=cfg.keep, block=cfg.block, tag_bits=8, pe_pipeline=cfg.pe_pipeline)
    assert core.latency == cfg.rows + cfg.cols + cfg.pe_pipeline
    tiles = []
    for t in range(5):
        m = int(rng.integers(1, 2 * cfg.rows + 2))
        W = random_nm_weights(rng, k=cfg.k, n=cfg.cols, keep=cfg.keep, block=cfg.block, weight_bits=8, density=0.8)
        A = random_acts(rng, m=m, k=cfg.k, act_bits=8, act_signed=True)
        k_valid, n_valid = int(rng.integers(0, cfg.k + 1)), int(rng.integers(0, cfg.cols + 1))
        values, indices = compress_nm(W, keep=cfg.keep, block=cfg.block)
        Am = np.where(np.arange(cfg.k) < k_valid, A, 0)
        C = gemm_nm(Am, values, indices, block=cfg.block, acc_bits=24)
        pos = np.arange(cfg.rows)[:, None, None] * cfg.block + indices
        real = (pos < k_valid) & (np.arange(cfg.cols)[None, :, None] < n_valid)
        zero = Am[:, pos] == 0                                          # (m, rows, cols, keep)
        tiles.append(dict(A=A, C=C, k_valid=k_valid, n_valid=n_valid,
                          weights=beats.weight_beats(cfg, values, indices),
                          zeros=(zero & real).sum(axis=(1, 2, 3)), macs=(~zero & real).sum(axis=(1, 2, 3))))
    act_layout = core.acts.payload.shape()
    state = {"loaded": 0, "taken": 0}     # tiles whose load finished / whose first row transferred
    out = []
    # the core has no cycle model of its own; the array's (a load, then the tile's rows) per tile bounds it, as
    # this host loads a tile only after the previous one started
    model = sum(perf.job_cycles(cfg, len(tile["A"])) for tile in tiles)
    bench = Bench(core, within=bound(model, gap=gap, stall=gap), model=model)

    async def weights(ctx):
        for t, tile in enumerate(tiles):
            # the shadow is free once the previous tile started
            await bench.until(ctx, lambda: state["taken"] >= t, what=f"tile {t - 1}'s first row")
            for i, beat in enumerate(tile["weights"]):
                while prng.random() < gap:
                    await ctx.tick()
                ctx.set(core.weights.valid, 1)
                ctx.set(core.weights.payload.as_value(), beat)
                await bench.until(ctx, core.weights.ready, what=f"weights.ready (tile {t}, beat {i + 1})")
                ctx.set(core.weights.valid, 0)
            state["loaded"] = t + 1

    async def acts(ctx):
        for t, tile in enumerate(tiles):
            await bench.until(ctx, lambda: state["loaded"] > t, what=f"tile {t}'s weights")
            for m, row in enumerate(tile["A"]):
                word = bits.pack(act_layout.members["data"], row[None])[0]
                ctx.set(core.acts.payload.data.as_value(), word)
                ctx.set(core.acts.payload.swap, m == 0)
                ctx.set(core.acts.payload.lane_ok, (1 << tile["k_valid"]) - 1)
                ctx.set(core.acts.payload.n_valid, tile["n_valid"])
                ctx.set(core.acts.payload.tag, (t << 4) | m)
                ctx.set(core.acts.valid, 1)
                await bench.until(ctx, core.acts.ready, what=f"acts.ready (tile {t}, row {m})")
                if m == 0:
                    state["taken"] = t + 1
                ctx.set(core.acts.valid, 0)
                while prng.random() < gap:
                    await ctx.tick()

    async def results(ctx):
        total = sum(len(t["A"]) for t in tiles)
        peeked = None
        while len(out) < total:
            ready = prng.random() >= gap
            ctx.set(core.results.ready, ready)
            with bench.waiting(f"results.valid (row {len(out) + 1} of {total})"):
                _, _, valid, psums, tag, z, mc, pv, pt, adv = await ctx.tick().sample(
                    core.results.valid, core.results.payload.psums.as_value(), core.results.payload.tag,
                    core.results.payload.zeros, core.results.payload.macs, core.peek.valid, core.peek.tag,
                    core.advance)
            if valid and peeked is not None:
                assert tag == peeked, "peek did not announce the row that reached results"
            if valid and ready:
                out.append((psums, tag, z, mc))
            peeked = pt if (pv and adv) else (peeked if not adv else None)

    for testbench in (weights, acts, results):
        bench.add(testbench)
    bench.run()
    want = [(t, m) for t, tile in enumerate(tiles) for m in range(len(tile["A"]))]
    assert len(out) == len(want)
    for (psums, tag, z, mc), (t, m) in zip(out, want):
        tile = tiles[t]
        assert tag == (t << 4) | m
        got = beats.results_from_beats(cfg, [psums])[0]
        assert np.array_equal(got, tile["C"][m]), f"tile {t} row {m}: {got} != {tile['C'][m]}"
        assert (z, mc) == (tile["zeros"][m], tile["macs"][m]), f"tile {t} row {m} counts"
