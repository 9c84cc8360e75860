"""cocotb tests of a GEMM engine behind the AXI wrapper, driven only through its AXI ports with cocotbext-axi
(run by tests/axi/test_axi_cocotb.py).

Jobs: the descriptor through the AXI4-Lite ``DESC_*`` registers, weights and activations as AXI4-Stream frames
packed by :mod:`sim.gemm.driver`, the results as one frame per job (``tlast`` on its last beat) checked word for
word against :func:`sim.gemm.golden.gemm_engine`; counters read over AXI4-Lite against the golden MAC counts.
"""

import cocotb

from gen.gemm.config import GemmConfig
from hw.gemm.beats import ERROR_FIELDS
from sim.axi.env import OKAY, SLVERR, AxiEnv
from sim.common.tbenv import settings
from sim.gemm.driver import plan_gemm, result_words
from sim.gemm.golden import gemm_engine, mac_counts
from sim.systolic.golden import random_acts, random_nm_weights


def _job(cfg, rng, m, k, n, density):
    kp = -(-k // cfg.block) * cfg.block
    W = random_nm_weights(rng, k=kp, n=n, keep=cfg.keep, block=cfg.block, weight_bits=cfg.weight_bits,
                          density=density)[:k]
    A = random_acts(rng, m=m, k=k, act_bits=cfg.act_bits, act_signed=cfg.act_signed)
    shift = int(rng.integers(0, min(cfg.acc_bits, 14))) if cfg.out_bits is not None else 0
    return A, W, shift


async def _start_job(env, cfg, m, k, n, shift):
    """Write the descriptor registers and ``start``; returns the response to ``start``."""
    for name, value in (("M", m), ("K", k), ("N", n), ("SHIFT", shift)):
        if f"DESC_{name}" in [r.name for r in env.regmap.registers]:
            assert await env.write(f"DESC_{name}", value) == OKAY
    return await env.write("DESC_CTRL", 1)


async def _wait_taken(env, within=10_000):
    for _ in range(within):
        if not (await env.read("DESC_CTRL")) & 2:
            return
    raise AssertionError("descriptor still pending")


@cocotb.test()
async def jobs_through_axi(dut):
    """Random ragged jobs under random gaps and backpressure: every result word against the golden, one frame per
    job, a descriptor held while pending (start answers SLVERR), a rejected descriptor (ERROR bits, no frame),
    exact counters, unmapped and read-only accesses answering SLVERR with nothing written, no protocol violation."""
    s = settings(GemmConfig)
    cfg, rng = s.config, s.rng
    env = AxiEnv(dut, cfg, seed=s.seed, gap=0.3, stall=0.4)
    await env.start()
    await env.unmapped_rejected()
    shapes = [(cfg.max_m, cfg.k + 1, cfg.cols + 1), (1, 1, 1),
              *[tuple(int(rng.integers(1, hi + 1)) for hi in (min(cfg.max_m, 24), cfg.max_k, cfg.max_n))
                for _ in range(2)]]
    jobs = [_job(cfg, rng, *shape, density) for shape, density in zip(shapes, (0.8, 1.0, 0.5, 0.0))]
    plans = [plan_gemm(cfg, A, W, shift) for A, W, shift in jobs]

    # job 0 is taken at once; job 1 waits for job 0's weights, so a third start while it is pending is refused
    assert await _start_job(env, cfg, plans[0].m, plans[0].k, plans[0].n, plans[0].shift) == OKAY
    await _wait_taken(env)
    assert await _start_job(env, cfg, plans[1].m, plans[1].k, plans[1].n, plans[1].shift) == OKAY
    assert (await env.read("DESC_CTRL")) & 2, "descriptor 1 taken before job 0's weights arrived"
    assert await env.write("DESC_CTRL", 1) == SLVERR, "start while pending must answer SLVERR"
    for plan in plans[:2]:
        env.send("weights", plan.weights)
        env.send("acts", plan.acts)
    macs = skips = 0
    for i, ((A, W, shift), plan) in enumerate(zip(jobs, plans)):
        if i >= 2:
            await _wait_taken(env)
            assert await _start_job(env, cfg, plan.m, plan.k, plan.n, plan.shift) == OKAY
            env.send("weights", plan.weights)
            env.send("acts", plan.acts)
        got = await env.recv("results")
        want = result_words(cfg, plan, gemm_engine(cfg, A, W, shift))
        assert len(got) == plan.result_beats, f"job {i}: frame of {len(got)} beats, expected {plan.result_beats}"
        bad = [b for b, (g, w) in enumerate(zip(got, want)) if g != w]
        assert not bad, f"job {i} {plan}: result beat {bad[0]} = {got[bad[0]]:#x}, golden {want[bad[0]]:#x}"
        mc, zs = mac_counts(cfg, A, W)
        macs, skips = macs + mc, skips + zs

    # a descriptor with M = 0 (and N beyond max_n) is rejected: error bits, JOBS_REJECTED, no results
    await _wait_taken(env)
    assert await _start_job(env, cfg, 0, 1, cfg.max_n + 1, 0) == OKAY
    await _wait_taken(env)
    error = await env.value("ERROR")
    assert error == (1 << ERROR_FIELDS.index("m")) | (1 << ERROR_FIELDS.index("n")), f"ERROR = {error:#x}"
    counters = {name: await env.value(name) for name in ("JOBS_DONE", "JOBS_REJECTED", "MACS", "ZERO_SKIPS")}
    assert counters == {"JOBS_DONE": len(jobs), "JOBS_REJECTED": 1, "MACS": macs, "ZERO_SKIPS": skips}, counters
    assert env.sinks["results"].empty(), "results after the last job"
    assert await env.value("CYCLES") > 0
    await env.unmapped_rejected()
    env.check_protocol()
    assert env.handshakes["m_axis_results"] == sum(p.result_beats for p in plans)
