"""GemmEngine in the Amaranth simulator: bit-exact ragged GEMMs, back-to-back jobs, cycle model, bad descriptors."""

import dataclasses
import random

import numpy as np
import pytest

from gen.gemm.config import GemmConfig
from gen.gemm.verilog import build
from hw.gemm.front import COUNTERS
from sim.gemm.driver import gemm_result, plan_descriptor, plan_gemm
from sim.gemm import golden
from hw.formats.nm_n import prune_n
from sim.systolic.golden import random_acts, random_nm_weights
from gen.gemm import perf
from sim.common.amaranth_bench import Bench, bound
from sim.common.amaranth_streams import get_all, put_all

CONFIGS = {
    "2x3_2of4_relu_o8": GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24, max_m=8, max_k=40, max_n=10,
                                   relu=True, out_bits=8),
    "3x2_1of1_dense": GemmConfig(rows=3, cols=2, keep=1, block=1, acc_bits=24, max_m=9, max_k=12, max_n=7),
    "2x3_2of4_p4": GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24, max_m=8, max_k=40, max_n=10,
                              pe_pipeline=4),
    "2x2_1of2_sat12_u8": GemmConfig(rows=2, cols=2, keep=1, block=2, act_signed=False, acc_bits=12,
                                    overflow="saturate", max_m=6, max_k=20, max_n=5),
    # output-stationary core: ragged M-tiles (rows 3), short tiles (K < rows·block: held last steps), saturation
    "os_3x2_2of4_relu_o8": GemmConfig(rows=3, cols=2, keep=2, block=4, acc_bits=24, max_m=8, max_k=30, max_n=5,
                                      relu=True, out_bits=8, dataflow="os"),
    "os_2x3_1of1_dense": GemmConfig(rows=2, cols=3, keep=1, block=1, acc_bits=24, max_m=7, max_k=9, max_n=7,
                                    dataflow="os"),
    # the pipelined OS core (every PE register stage, the sum of products included)
    "os_3x2_2of4_p4": GemmConfig(rows=3, cols=2, keep=2, block=4, acc_bits=24, max_m=8, max_k=30, max_n=5,
                                 dataflow="os", pe_pipeline=4),
    "os_2x2_1of2_sat12_u8": GemmConfig(rows=2, cols=2, keep=1, block=2, act_signed=False, acc_bits=12,
                                       overflow="saturate", max_m=5, max_k=20, max_n=5, dataflow="os"),
    # activation sparsity (docs/gemm-actsparse.md): A-DBB 1:4 on 2:4 weights (two K-blocks per PE, every PE stage),
    # lossless with two slots per block (PE stages 1-3), lossless 1:4 on dense 4:4 weights with unsigned activations
    "act_2x3_2of4_a1_relu_o8": GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24, max_m=8, max_k=40,
                                          max_n=10, relu=True, out_bits=8, act_keep=1, pe_pipeline=4),
    "act_2x3_2of4_a2_lossless": GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24, max_m=8, max_k=40,
                                           max_n=10, act_keep=2, act_mode="lossless", pe_pipeline=3),
    "act_2x2_4of4_a1_lossless_u8": GemmConfig(rows=2, cols=2, keep=4, block=4, act_signed=False, acc_bits=24,
                                              max_m=6, max_k=70, max_n=5, act_keep=1, act_mode="lossless"),
    # weights 2:4 / 1:4 along N (outer-product PEs, N-tile cols·block): A-DBB 2:4 with ReLU/int8 out and every PE
    # stage, lossless 1:4 with unsigned activations and registered products (pe_pipeline = 1)
    "outer_2x3_2of4_a2_relu_o8": GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24, max_m=8, max_k=40,
                                            max_n=30, relu=True, out_bits=8, act_keep=2, weight_axis="n",
                                            pe_pipeline=4),
    "outer_2x2_1of4_a1_lossless_u8_p1": GemmConfig(rows=2, cols=2, keep=1, block=4, act_signed=False, acc_bits=24,
                                                   max_m=6, max_k=30, max_n=19, act_keep=1, act_mode="lossless",
                                                   weight_axis="n", pe_pipeline=1),
}


def random_job(cfg, rng, m=None, k=None, n=None):
    m = m or int(rng.integers(1, cfg.max_m + 1))
    k = k or int(rng.integers(1, cfg.max_k + 1))
    n = n or int(rng.integers(1, cfg.max_n + 1))
    kp = -(-k // cfg.block) * cfg.block
    if cfg.weight_axis == "n":      # keep:block along N, magnitude ties in the pruned rows
        W = prune_n(random_acts(rng, m=k, k=n, act_bits=3, act_signed=True), keep=cfg.keep, block=cfg.block)
    else:
        W = random_nm_weights(rng, k=kp, n=n, keep=cfg.keep, block=cfg.block, weight_bits=cfg.weight_bits,
                              density=0.8)[:k]
    A = random_acts(rng, m=m, k=k, act_bits=cfg.act_bits, act_signed=cfg.act_signed)
    if cfg.act_keep:       # zeros, blocks A-DBB truncates and ties in magnitude
        A = golden.act_stimulus(rng, A, act_bits=cfg.act_bits, act_signed=cfg.act_signed, block=cfg.block)
    shift = int(rng.integers(0, 12)) if cfg.out_bits is not None else 0
    return A, W, shift


def simulate(cfg, jobs, *, seed, gap=0.0, stall=0.0, bad_descs=(), weights_first=False):
    """Send every job (plan_gemm beats on three independent streams); ``bad_descs`` go before the jobs.

    ``weights_first``: one host sends every weight beat, then (from the next cycle) every activation row. The run
    is bounded by the cycle model's count (:func:`sim.common.amaranth_bench.bound`); ``log["pred"]`` is the model
    for an ideal host (``acts_from`` = the weight beats for ``weights_first``, see :mod:`gen.gemm.perf`).
    """
    dut = build(cfg)
    plans = [plan_gemm(cfg, A, W, shift) for A, W, shift in jobs]
    weights, acts = [b for p in plans for b in p.weights], [b for p in plans for b in p.acts]
    total = sum(p.result_beats for p in plans)
    rngs = [random.Random(seed + i) for i in range(4)]
    pred = perf.predict(cfg, [(p.m, p.k, p.n) for p in plans], acts_from=len(weights) if weights_first else 0,
                        steps=[golden.act_steps(cfg, A) for A, _, _ in jobs])
    log = {"pred": pred, "input_stalls": [], "A": [A for A, _, _ in jobs]}
    model = len(bad_descs) + pred.cycles
    bench = Bench(dut, within=bound(model, gap=gap, stall=stall), model=model)

    async def descs(ctx):
        log["d"], _ = await put_all(ctx, dut.desc, list(bad_descs) + [p.desc for p in plans], rng=rngs[0], gap=gap,
                                    bench=bench)

    async def weights_then_acts(ctx):
        log["w"], now = await put_all(ctx, dut.weights, weights, rng=rngs[1], gap=gap, bench=bench)
        if weights_first:
            log["a"], _ = await put_all(ctx, dut.acts, acts, rng=rngs[2], gap=gap, start=now, bench=bench)

    async def acts_alone(ctx):
        log["a"], _ = await put_all(ctx, dut.acts, acts, rng=rngs[2], gap=gap, bench=bench)

    async def results(ctx):
        log["words"], log["r"], log["stalls"] = await get_all(ctx, dut.results, total, rng=rngs[3], stall=stall,
                                                              bench=bench)
        # counters as of the edge of the last result transfer: `cycles` = every cycle up to that one
        log["counters"] = {name: ctx.get(getattr(dut, name)) for name in COUNTERS}
        log["error"] = ctx.get(dut.error)
        for _ in range(4):          # nothing extra may arrive
            _, _, valid = await ctx.tick().sample(dut.results.valid)
            assert not valid, "an extra result beat"

    async def input_stalls(ctx):
        # stall_input from the ports (docs/gemm.md "Counters"): the engine was ready for a row (OS: a step) that
        # the host did not offer
        now = 0
        while True:
            _, _, a_rdy, a_vld, w_rdy, w_vld = await ctx.tick().sample(dut.acts.ready, dut.acts.valid,
                                                                       dut.weights.ready, dut.weights.valid)
            if (a_rdy and not a_vld) or (cfg.dataflow == "os" and w_rdy and not w_vld):
                log["input_stalls"].append(now)
            now += 1

    for testbench in (descs, weights_then_acts, results) + (() if weights_first else (acts_alone,)):
        bench.add(testbench)
    bench.add(input_stalls, background=True)
    bench.run()
    return plans, log


def check_results(cfg, jobs, plans, log):
    """Every result word against the golden model, the count, and every counter the ports determine."""
    words = log["words"]
    assert len(words) == sum(p.result_beats for p in plans)
    at = 0
    for (A, W, shift), plan in zip(jobs, plans):
        got = gemm_result(cfg, plan, words[at:at + plan.result_beats])
        at += plan.result_beats
        want = golden.gemm_engine(cfg, A, W, shift)
        assert got.shape == want.shape
        for m in range(len(want)):
            assert np.array_equal(got[m], want[m]), f"row {m}: got {got[m]}, expected {want[m]}"
    counts = [golden.mac_counts(cfg, A, W) for A, W, _ in jobs]
    counters, end = log["counters"], log["r"][-1]
    assert counters["macs"] == sum(c[0] for c in counts)
    assert counters["zero_skips"] == sum(c[1] for c in counts)
    # busy_cycles counts steps (one per row unless lossless activation sparsity splits it), each N-tile again
    assert counters["busy_cycles"] == (sum(int(golden.act_steps(cfg, A).sum()) * p.n_tiles
                                           for (A, _, _), p in zip(jobs, plans))
                                       if cfg.dataflow == "ws" else len(log["a"]))
    assert counters["stall_output"] == log["stalls"]
    assert counters["stall_input"] == sum(c <= end for c in log["input_stalls"])
    assert counters["jobs_done"] == len(jobs)
    assert counters["cycles"] == end + 1, "cycles counts every cycle from reset to the last result transfer"


def _tile_steps(cfg, plans, log):
    """The steps of every row of every tile, in tile order (N-tiles, then K-tiles)."""
    out = []
    for plan, A in zip(plans, log["A"]):
        steps = golden.act_steps(cfg, A)
        out += [steps[kk] for _ in range(plan.n_tiles) for kk in range(plan.k_tiles)]
    return out


def check_model(cfg, plans, log):
    """An ideal host: every weight, row and result transfer cycle and every counter equal to the cycle model."""
    pred, d0 = log["pred"], log["d"][0]
    assert [w - d0 for w in log["w"]] == pred.weight_accepts, "weight beats not taken when the model takes them"
    if cfg.act_keep:
        # a row transfers with its last step: tile t's row i at a_t + (its steps and those before it) − 1
        ends = [a + int(e) - 1 for a, s in zip(pred.row_starts, _tile_steps(cfg, plans, log)) for e in np.cumsum(s)]
        assert [x - d0 for x in log["a"]] == ends
    else:
        starts = np.cumsum([0] + [b for p in plans for b in p.tile_beats])[:-1]
        assert [log["a"][i] - d0 for i in starts] == pred.row_starts
    assert [r - d0 for r in log["r"]] == pred.result_cycles
    counters = log["counters"]
    for key, value in pred.counters().items():
        want = d0 + value if key == "cycles" else value        # `cycles` counts from reset, d0 before cycle 0
        assert counters[key] == want, f"{key}: RTL {counters[key]}, model {want}"


@pytest.mark.parametrize("name", CONFIGS)
def test_engine_back_to_back_matches_model(name, seed):
    """Ideal host: results bit-exact, every weight, row and result cycle and every counter equal to the model."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    shapes = [(cfg.max_m, cfg.max_k, cfg.max_n), (1, 1, 1), (2, cfg.k + 1, cfg.n_tile + 1),
              (cfg.rows + 1, 2 * cfg.k, cfg.n_tile), (int(rng.integers(1, cfg.max_m + 1)), 3, cfg.max_n)]
    jobs = [random_job(cfg, rng, *shape) for shape in shapes]
    plans, log = simulate(cfg, jobs, seed=seed)
    check_results(cfg, jobs, plans, log)
    check_model(cfg, plans, log)
    if cfg.dataflow == "os":
        assert log["a"] == log["w"], "a step took an activation beat without its weight beat"
    assert perf.job_cycles(cfg, *shapes[0]) == perf.predict(cfg, shapes[:1]).cycles


WS_CONFIGS = [name for name, cfg in CONFIGS.items() if cfg.dataflow == "ws"]


@pytest.mark.parametrize("name", WS_CONFIGS)
@pytest.mark.parametrize("split", ["k3", "n3"])
def test_engine_weights_first_host(name, split, seed):
    """A host that sends all weight beats of a 3-tile job (3 K-tiles, or 3 N-tiles) before any activation row:
    the weight buffer (two tiles) and the shadow registers (one) take them all, so the job completes, bit-exact,
    with every transfer cycle and counter equal to the cycle model for a host whose rows start after its weights."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, cfg.max_m + 1))
    shape = (m, min(3 * cfg.k - 1, cfg.max_k), cfg.n_tile) if split == "k3" else (m, cfg.k, 2 * cfg.n_tile + 1)
    assert perf.tiles(cfg, *shape[1:]) == ((3, 1) if split == "k3" else (1, 3))
    jobs = [random_job(cfg, rng, *shape)]
    plans, log = simulate(cfg, jobs, seed=seed, weights_first=True)
    check_results(cfg, jobs, plans, log)
    check_model(cfg, plans, log)
    # the model's weights-first host: beats back to back from cycle 0, so its rows start the cycle after the last
    assert log["pred"].weight_accepts == list(range(3 * cfg.rows))
    # (a row transfers with its last step: lossless activation sparsity may give the first row several)
    assert log["a"][0] == log["w"][-1] + int(golden.act_steps(cfg, jobs[0][0])[0, 0])


@pytest.mark.parametrize("name", CONFIGS)
def test_engine_gaps_and_backpressure(name, seed):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    jobs = [random_job(cfg, rng) for _ in range(3)]
    plans, log = simulate(cfg, jobs, seed=seed, gap=0.3, stall=0.4)
    check_results(cfg, jobs, plans, log)


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_engine_rejects_bad_descriptors(dataflow, seed):
    cfg = dataclasses.replace(CONFIGS["2x3_2of4_relu_o8"], dataflow=dataflow)
    rng = np.random.default_rng(seed)
    bad = [plan_descriptor(cfg, 0, 1, 1, check=False), plan_descriptor(cfg, 1, cfg.max_k + 1, 1, check=False),
           plan_descriptor(cfg, 1, 1, cfg.max_n + 1, check=False), plan_descriptor(cfg, 1, 1, 1, 24, check=False)]
    jobs = [random_job(cfg, rng, 3, 5, 4)]
    plans, log = simulate(cfg, jobs, seed=seed, bad_descs=bad)
    check_results(cfg, jobs, plans, log)
    assert log["counters"]["jobs_rejected"] == 4
    assert log["error"] == 0b1000
