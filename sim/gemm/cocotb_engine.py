"""cocotb tests of a generated GEMM engine, either dataflow (run by tests/gemm/test_gemm_engine_cocotb.py).

Settings (:func:`sim.common.tbenv.settings`): the config, the stimulus seed, and the knobs ``jobs`` (number of
random jobs), ``conv`` (run ``conv_layers``) and ``bench`` / ``bench_shape`` (the JSON report file and the
``M,K,N`` shape of the ``throughput`` benchmark, which runs only then).
"""

import itertools
import json
import time

import cocotb
import numpy as np

from gen.gemm.config import GemmConfig
from hw.formats.conv import conv2d, conv_gemm_shape, im2col, weights_to_gemm
from sim.gemm.driver import gemm_result, plan_descriptor
from sim.gemm.conv import conv2d_direct
from sim.gemm import golden
from sim.gemm.golden import requantize
from sim.systolic.golden import random_acts, random_nm_weights
from gen.gemm import perf
from sim.gemm.tb import GemmEngineTB
from sim.common.tbenv import knob, settings
from sim.common.testbench import SOAK_GAP, SOAK_STALL, write_soak_report


async def _start(dut, *, gap=0.0, stall=0.0):
    s = settings(GemmConfig)
    tb = GemmEngineTB(dut, s.config, seed=s.seed, gap=gap, stall=stall)
    await tb.start()
    return tb, s.config, s.knob("jobs", 4)


@cocotb.test()
async def back_to_back_cycle_model(dut):
    """Ragged jobs from an ideal host: bit-exact, every result cycle and counter equal to the cycle model."""
    tb, cfg, _ = await _start(dut)
    shapes = [(cfg.max_m, cfg.max_k, cfg.max_n), (1, 1, 1), (2, cfg.k + 1, cfg.n_tile + 1),
              (cfg.rows + 2, 2 * cfg.k - 1, 2 * cfg.n_tile - 1), tb.random_shape()]
    tb.submit([tb.random_job(*shape) for shape in shapes])
    got = await tb.finish()
    tb.check_model(got)


@cocotb.test()
async def back_to_back_no_idle_cycles(dut):
    """WS: jobs with M > rows back to back: activation rows transfer in every cycle from the first to the last one,
    across tile and job boundaries (weight loads fully hidden), the only weight stall is the first load, and the
    weight buffer takes beats ahead of the loader.
    OS: jobs with K ≥ rows·block (tiles of at least rows steps): a step in every cycle, no stall at all."""
    tb, cfg, jobs = await _start(dut)
    rng = tb.rng
    os_ = cfg.dataflow == "os"
    m_lo, k_lo = (1, min(cfg.rows * cfg.block, cfg.max_k)) if os_ else (cfg.rows + 1, 1)
    shapes = [(int(rng.integers(m_lo, cfg.max_m + 1)), int(rng.integers(k_lo, cfg.max_k + 1)),
               int(rng.integers(1, cfg.max_n + 1))) for _ in range(jobs)]
    tb.submit([tb.random_job(*shape) for shape in shapes])
    got = await tb.finish()
    pred = tb.check_model(got)
    if not os_:
        # the weight buffer takes every beat no later than the loader (the cycle model's loads) and some earlier
        d0 = tb.sources["desc"].handshake_cycles[0]
        port = [c - d0 for c in tb.sources["weights"].handshake_cycles]
        loads = [s + i for s in pred.loads for i in range(cfg.rows)]
        assert len(port) == len(loads) and all(p <= q for p, q in zip(port, loads)), "a weight beat after its load"
        if len(pred.loads) > 2:
            assert any(p < q for p, q in zip(port, loads)), "no weight beat buffered ahead of its load"
    acts = tb.sources["acts"].handshake_cycles
    if not tb.lossless:      # (lossless: a row takes its steps; every cycle is a step, checked by the model)
        assert acts == list(range(acts[0], acts[0] + len(acts))), "an idle cycle between activation rows"
    assert got["stall_weight"] == (0 if os_ else cfg.rows)


@cocotb.test()
async def random_gaps_and_backpressure(dut):
    """Random ragged jobs, dense and sparse weights, random input gaps and output backpressure."""
    tb, cfg, jobs = await _start(dut, gap=0.3, stall=0.4)
    densities = [1.0, 0.5, 0.0, 0.8] * jobs
    tb.submit([tb.random_job(*tb.random_shape(), density=d) for d in densities[:max(jobs, 1)]])
    # a rejected descriptor between jobs takes no beats and writes nothing
    tb.submit([tb.random_job(*tb.random_shape(), density=0.7)],
              bad_descs=[plan_descriptor(cfg, cfg.max_m, cfg.max_k + 1, cfg.max_n, check=False)])
    got = await tb.finish()
    assert got["stall_output"] > 0 and got["stall_input"] > 0, "gaps or backpressure were never exercised"
    assert got["jobs_rejected"] == 1 and got["error"] == 0b0010


@cocotb.test()
async def relu_requant_extremes(dut):
    """Extreme operands (accumulator and output saturation), every shift, ReLU, all-zero activations."""
    tb, cfg, _ = await _start(dut, stall=0.2)
    a_lo, a_hi = ((-(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1) if cfg.act_signed
                  else (0, (1 << cfg.act_bits) - 1))
    w_lo = -(1 << (cfg.weight_bits - 1))
    jobs = []
    shifts = range(cfg.acc_bits) if cfg.out_bits is not None else [0]
    for i, shift in enumerate(list(shifts)[::max(1, cfg.acc_bits // 6)] + [cfg.acc_bits - 1 if cfg.out_bits else 0]):
        A, W, _ = tb.random_job(3, cfg.max_k, cfg.n_tile + 1, density=1.0)
        W[W != 0] = w_lo if i % 2 else -w_lo - 1
        A[:] = a_lo if cfg.act_signed else a_hi
        A[1] = a_hi
        jobs.append((A, W, shift))
    A, W, shift = tb.random_job(2, cfg.k + 3, 2)
    jobs.append((A * 0, W, shift))
    tb.submit(jobs)
    await tb.finish()


@cocotb.test()
async def bad_descriptors(dut):
    """Out-of-range M, K, N (and shift) are rejected: error bits, counted, nothing written; the next job is exact."""
    tb, cfg, _ = await _start(dut)
    bad = [plan_descriptor(cfg, 0, 1, 1, check=False), plan_descriptor(cfg, cfg.max_m + 1, 1, 1, check=False),
           plan_descriptor(cfg, 1, cfg.max_k + 1, 1, check=False), plan_descriptor(cfg, 1, 1, 0, check=False)]
    if cfg.out_bits is not None and (1 << cfg.shift_bits) > cfg.acc_bits:
        bad.append(plan_descriptor(cfg, 1, 1, 1, cfg.acc_bits, check=False))
    # the error bits are the last rejected descriptor's: bad M, K and N at once
    bad.append(plan_descriptor(cfg, cfg.max_m + 1, 0, cfg.max_n + 1, check=False))
    last = 0b0111
    tb.submit([tb.random_job(2, cfg.k + 1, cfg.n_tile + 1)], bad_descs=bad)
    got = await tb.finish()
    assert got["jobs_rejected"] == len(bad) and got["error"] == last
    tb.check_model(got)


@cocotb.test(skip=not knob("weights_first", False))
async def weights_first_host(dut):
    """WS: a host that sends every weight beat of a 3-tile job (3 K-tiles, then 3 N-tiles) before the job's first
    activation row. The shadow registers (one tile) and the weight buffer (two) take them all, so each job
    completes bit-exact, and every weight, first-row and result cycle and every counter equals the cycle model
    (:func:`gen.gemm.perf.predict` with ``acts_from`` = the job's weight beats)."""
    tb, cfg, _ = await _start(dut)
    assert cfg.dataflow == "ws", "the output-stationary engine joins weights and activations: no weights-first host"
    weights, acts = tb.sources["weights"], tb.sources["acts"]
    # rows pause while weight beats are queued or on the bus (submit queues the weights before the rows)
    acts.set_pause_generator(not weights.idle for _ in itertools.count())
    before = {}                                  # counters after the previous job
    for shape in [(int(tb.rng.integers(1, cfg.max_m + 1)), min(3 * cfg.k - 1, cfg.max_k), cfg.n_tile),
                  (int(tb.rng.integers(1, cfg.max_m + 1)), cfg.k, 2 * cfg.n_tile + 1)]:
        kt, nt = perf.tiles(cfg, *shape[1:])
        assert kt * nt == 3, f"{shape} is not a 3-tile job on {cfg.top}"
        tb.submit([tb.random_job(*shape)])
        got = await tb.finish()
        plan = tb.jobs[-1][-1]
        A = tb.jobs[-1][0]
        pred = perf.predict(cfg, [shape], acts_from=len(plan.weights), steps=[golden.act_steps(cfg, A)])
        d0 = tb.sources["desc"].handshake_cycles[-1]
        w = [c - d0 for c in weights.handshake_cycles[-len(plan.weights):]]
        assert w == pred.weight_accepts == list(range(3 * cfg.rows)), f"weight beats in {w}"
        rows = acts.handshake_cycles[-len(plan.acts):]
        firsts = [rows[i] - d0 - (f - 1) for i, f in zip(np.cumsum([0, *plan.tile_beats[:-1]]),
                                                           tb.first_steps(A, plan))]
        assert firsts == pred.row_starts, f"tile starts {firsts}, model {pred.row_starts}"
        results = tb.results.handshake_cycles[-plan.result_beats:]
        assert [c - d0 for c in results] == pred.result_cycles, "result cycles differ from the model"
        for name, value in pred.counters().items():
            if name != "cycles":             # `cycles` also counts the idle cycles around the job
                assert got[name] - before.get(name, 0) == value, f"counter {name}: {got[name]}, model {value}"
        before = got


# (C_in, H, W, C_out, stride, padding) of the 3x3 conv layers of `conv_layers`
CONV_LAYERS = [(3, 6, 6, 5, 1, 1), (4, 7, 7, 8, 2, 1), (2, 5, 5, 6, 1, 0), (4, 5, 7, 3, 2, 0)]


@cocotb.test(skip=not knob("conv", False))
async def conv_layers(dut):
    """3x3 conv layers (stride 1 and 2, padding 1 and 0) lowered by im2col (:mod:`hw.formats.conv`) and run on the
    engine, with random input gaps and output backpressure; every output element equals ReLU/requant of the direct
    convolution (:func:`sim.gemm.conv.conv2d_direct`). The host splits the patch matrix into jobs of at most
    ``max_m`` rows. Needs ``acc_bits`` wide enough for the exact sums (no wrap or clamp) and ``max_k >= 9·C_in``."""
    tb, cfg, _ = await _start(dut, gap=0.2, stall=0.3)
    rng = tb.rng
    layers = []
    for c_in, h, w_, c_out, stride, padding in CONV_LAYERS:
        m, k, n = conv_gemm_shape(h, w_, c_in, c_out, 3, 3, stride, padding)
        assert k <= cfg.max_k and n <= cfg.max_n, f"layer {(c_in, h, w_, c_out)} does not fit {cfg.top}"
        for _ in range(20):                 # a small layer after ReLU can come out nearly all zero: draw again
            x = random_acts(rng, m=c_in, k=h * w_, act_bits=cfg.act_bits,
                            act_signed=cfg.act_signed).reshape(c_in, h, w_)
            # N:M along the im2col K order (c_in, i, j): sparse K×N matrix, back to OIHW
            kp = -(-k // cfg.block) * cfg.block
            wg = random_nm_weights(rng, k=kp, n=n, keep=cfg.keep, block=cfg.block, weight_bits=cfg.weight_bits,
                                   density=0.9)[:k]
            w = wg.T.reshape(c_out, c_in, 3, 3)
            assert np.array_equal(weights_to_gemm(w), wg)
            shift = 0
            if cfg.out_bits is not None:    # scale the layer's range to about out_bits, some outputs saturating
                top = int(np.abs(conv2d_direct(x, w, stride, padding)).max()).bit_length()
                shift = max(0, top - cfg.out_bits + int(rng.integers(0, 2)))
            want = requantize(conv2d_direct(x, w, stride, padding), relu=cfg.relu, out_bits=cfg.out_bits, shift=shift)
            if len(np.unique(want)) > 3:
                break
        a = im2col(x, 3, 3, stride, padding)
        assert a.shape == (m, k)
        chunks = [(a[r:r + cfg.max_m], wg, shift) for r in range(0, m, cfg.max_m)]
        first = len(tb.jobs)
        tb.submit(chunks)                 # the scoreboard also checks each job against the engine's golden model
        layers.append((x, w, stride, padding, want, first, len(chunks)))
    await tb.finish()
    words, at = tb.results.values, 0
    plans = [plan for *_, plan in tb.jobs]
    outputs = 0
    for x, w, stride, padding, want, first, count in layers:
        parts = []
        for plan in plans[first:first + count]:
            parts.append(gemm_result(cfg, plan, words[at:at + plan.result_beats]))
            at += plan.result_beats
        c_rtl = np.concatenate(parts)

        def engine_gemm(a, wm, c_rtl=c_rtl, x=x, w=w, stride=stride, padding=padding):
            assert np.array_equal(a, im2col(x, 3, 3, stride, padding)) and np.array_equal(wm, weights_to_gemm(w))
            return c_rtl

        got = conv2d(x, w, stride, padding, gemm=engine_gemm)
        assert got.shape == want.shape, f"conv output shape {got.shape}, direct {want.shape}"
        assert len(np.unique(want)) > 3, f"degenerate layer: outputs {np.unique(want)}"
        bad = np.argwhere(got != want)
        assert not len(bad), (f"conv (stride {stride}, padding {padding}) differs from the direct convolution at "
                              f"(c_out, y, x) {bad[:5].tolist()}: got {got[tuple(bad[0])]}, want {want[tuple(bad[0])]}")
        outputs += got.size
    assert at == len(words)
    assert outputs == sum(c_out * ((h + 2 * p - 3) // s + 1) * ((w_ + 2 * p - 3) // s + 1)
                          for _, h, w_, c_out, s, p in CONV_LAYERS)
    cocotb.log.info("%d conv layers, %d output elements equal to the direct convolution", len(layers), outputs)


@cocotb.test(skip=not knob("bench", ""))
async def throughput(dut):
    """Benchmark: one job of ``bench_shape`` = "M,K,N"; writes its cycles and counters as JSON to ``bench``."""
    tb, cfg, _ = await _start(dut)
    m, k, n = (int(v) for v in knob("bench_shape", "").split(","))
    t0 = time.perf_counter()
    tb.submit([tb.random_job(m, k, n)])
    got = await tb.finish()
    pred = tb.check_model(got)
    d0 = tb.sources["desc"].handshake_cycles[0]
    with open(knob("bench", ""), "w") as f:
        json.dump({"shape": [m, k, n], "rtl_cycles": tb.results.handshake_cycles[-1] - d0 + 1,
                   "model_cycles": pred.cycles, "busy_cycles": got["busy_cycles"],
                   "wall_s": time.perf_counter() - t0}, f)


@cocotb.test(skip=not knob("soak_beats", 0))
async def soak(dut):
    """Soak (``make bench``, section ``soak``): random ragged jobs (dense, sparse and all-zero weights) with random
    gaps on every input stream and backpressure on the results until at least ``soak_beats`` beats have crossed the
    ports; every result word against the golden model and every counter exact (:meth:`GemmEngineTB.finish`). The
    beat counts go to the ``soak_report`` file."""
    tb, cfg, _ = await _start(dut, gap=SOAK_GAP, stall=SOAK_STALL)
    target, queued = knob("soak_beats", 0), 0
    while queued < target:
        densities = tb.rng.choice([1.0, 0.8, 0.5, 0.0], size=8)
        tb.submit([tb.random_job(*tb.random_shape(), density=float(d)) for d in densities])
        queued = sum(1 + len(p.weights) + len(p.acts) + p.result_beats for *_, p in tb.jobs)
    await tb.finish()
    report = write_soak_report(tb, knob("soak_report", ""))
    assert report["beats"] >= target and report["lost"] == report["duplicated"] == report["unsent"] == 0, report
