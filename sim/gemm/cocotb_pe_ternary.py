"""cocotb tests: a PE-wise pruned ternary layer on the GEMM engine with its zero tiles compiled away (issue 14,
seed 001; run by tests/gemm/test_gemm_pe_ternary.py).

Knobs (:mod:`sim.common.tbenv`): ``job``, an ``.npz`` with the layer's ``A`` ``[M × K]`` (int8 activations), ``W``
``[K × N]`` (ternary, whole ``k × cols`` tiles zero), ``shift`` and ``expect`` (the layer's int8 output from the
network golden, :func:`sim.network.golden.output_stage` of ``A · W``); ``report``, a JSON file each test adds its
measured cycles to. The host sends the jobs of :func:`sim.gemm.driver.plan_pruned` (or the dense layer's jobs);
every result beat is scored against the engine's golden model as it leaves (:class:`sim.gemm.tb.GemmEngineTB`), the
assembled layer against ``expect``, and on an ideal host every result cycle and counter against the cycle model.
"""

import json
from pathlib import Path

import cocotb
import numpy as np

from gen.gemm.config import GemmConfig
from sim.common.tbenv import knob, settings
from sim.gemm.driver import gemm_result, plan_pruned
from sim.gemm.tb import GemmEngineTB


async def _run(dut, *, pruned: bool, gap=0.0, stall=0.0):
    s = settings(GemmConfig)
    cfg = s.config
    data = np.load(knob("job", ""))
    A, W, shift, expect = data["A"], data["W"], int(data["shift"]), data["expect"]
    plan = plan_pruned(cfg, A, W, shift)
    jobs = plan.jobs if pruned else [(A[rs], W, shift) for rs in
                                     (slice(r, r + cfg.max_m) for r in range(0, len(A), cfg.max_m))]
    tb = GemmEngineTB(dut, cfg, seed=s.seed, gap=gap, stall=stall)
    await tb.start()
    tb.submit(jobs)
    got = await tb.finish()
    ideal = not gap and not stall
    pred = tb.check_model(got) if ideal else None
    words, at, outs = tb.results.values, 0, []
    for *_, job in tb.jobs:
        outs.append(gemm_result(cfg, job, words[at:at + job.result_beats]))
        at += job.result_beats
    C = plan.assemble(outs) if pruned else np.concatenate(outs)
    bad = np.argwhere(C != expect)
    assert not len(bad), f"layer output differs from the network golden at {bad[:5].tolist()}"
    assert len(np.unique(expect)) > 3, "degenerate layer"
    d0 = tb.sources["desc"].handshake_cycles[0]
    cycles = tb.results.handshake_cycles[-1] - d0 + 1
    cocotb.log.info("%s layer: %d jobs %s, %d cycles (model %s), %d outputs equal to the golden",
                    "pruned" if pruned else "dense", len(jobs), [(p.m, p.k, p.n) for *_, p in tb.jobs], cycles,
                    pred.cycles if pred else "-", C.size)
    if knob("report", "") and ideal:
        path = Path(knob("report", ""))
        report = json.loads(path.read_text()) if path.exists() else {}
        report["pruned" if pruned else "dense"] = {"cycles": cycles, "model": pred.cycles, "jobs": len(jobs),
                                                   "counters": {k: int(v) for k, v in got.items()}}
        path.write_text(json.dumps(report))


@cocotb.test()
async def pruned_layer_ideal_host(dut):
    """The pruned tiles compiled away, ideal host: bit-exact, every result cycle and counter equal to the model."""
    await _run(dut, pruned=True)


@cocotb.test()
async def dense_layer_ideal_host(dut):
    """The same layer sent whole (zero tiles included): the baseline of the cycles saved, equal to the model."""
    await _run(dut, pruned=False)


@cocotb.test()
async def pruned_layer_gaps_and_backpressure(dut):
    """The pruned jobs with random input gaps and result backpressure: bit-exact, counters from the ports."""
    await _run(dut, pruned=True, gap=0.3, stall=0.3)
