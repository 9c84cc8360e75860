"""A PE-wise pruned ternary layer of the trained digits CNN on the GEMM engine RTL (weight_bits = 2), its zero
tiles compiled away by the host: bit-exact against the network golden (ideal host, and random input gaps and
result backpressure), cycles and counters equal to the model, fewer than the dense layer's (issue 14, seed 001;
sim/gemm/cocotb_pe_ternary.py)."""

import numpy as np
import pytest

from gen.compiler.pe_prune import pe_prune, ternary_projection
from gen.gemm import perf
from gen.network.data import digits
from gen.network.spec import load
from sim.common.runner import SIMULATORS
from sim.gemm.driver import plan_pruned
from sim.network.golden import quantize
from sim.seeds.pe_ternary import conv2_job, engine_config, rtl_cycles

IMAGES, RATIO = 12, 0.5


def pruned_conv2(cfg):
    """conv2 of the shipped digits CNN, half its 16×4 tiles removed, ternary (no fine-tuning: a test never
    trains), on the first IMAGES test images (:func:`sim.seeds.pe_ternary.conv2_job`)."""
    fnet = load("digits-float")
    w = fnet.weights()
    mask = pe_prune(w["conv2"], RATIO, rows=cfg.rows, block=cfg.block, cols=cfg.cols)[0]
    project = ternary_projection()
    tnet = fnet.with_weights({k: project(v * (mask if k == "conv2" else 1)) for k, v in w.items()})
    qnet = quantize(tnet, digits("train")[0], mode="ternary", granularity="tensor")
    return conv2_job(qnet, digits("test")[0][:IMAGES])


# Icarus in `make test` (about 20 s); Verilator's build of this weight_bits = 2 engine costs 1–2 min of CPU on
# 2 busy cores, so it runs in `make test-full`
@pytest.mark.parametrize("sim", [pytest.param(s, marks=pytest.mark.slow) if s == "verilator" else s
                                 for s in SIMULATORS])
def test_pruned_ternary_layer_on_rtl(sim, seed, tmp_path):
    cfg = engine_config(max_m=32)
    job = pruned_conv2(cfg)
    assert set(np.unique(job["W"])) <= {-1, 0, 1}
    plan = plan_pruned(cfg, job["A"], job["W"], job["shift"])
    assert 0 < plan.tiles.sum() < plan.tiles.size
    got = rtl_cycles(job, sim=sim, seed=seed, out_dir=tmp_path, max_m=32)
    model = {"pruned": perf.predict(cfg, plan.shapes).cycles, "dense": perf.predict(cfg, plan.dense).cycles}
    for kind in ("pruned", "dense"):
        assert got[kind] == got[f"model_{kind}"] == model[kind], (kind, got, model)
    assert got["jobs"] == got["counters"]["jobs_done"] == len(plan.jobs)
    print(f"{sim}: conv2 of {IMAGES} images, {int(plan.tiles.sum())}/{plan.tiles.size} tiles, jobs {plan.shapes}: "
          f"{got['pruned']} cycles vs {got['dense']} dense ({got['cycles_saved']:.3f}x)")
    assert got["cycles_saved"] > 1.2
