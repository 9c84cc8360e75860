"""A PE-wise pruned ternary layer of the trained digits CNN on the GEMM engine RTL (weight_bits = 2), its zero
tiles compiled away by the host: bit-exact against the network golden (ideal host, and random input gaps and
result backpressure), cycles and counters equal to the model, fewer than the dense layer's (issue 14, seed 001;
sim/gemm/cocotb_pe_ternary.py)."""

import json

import numpy as np
import pytest

from gen.compiler.pe_prune import pe_prune, ternary_projection
from gen.gemm import perf
from gen.network.data import digits
from gen.network.spec import load
from sim.common.runner import SIMULATORS, run_design
from sim.gemm.driver import plan_pruned
from sim.network.golden import input_ints, int8_forward, layer_gemm, output_stage, quantize
from sim.seeds.pe_ternary import engine_config

IMAGES, RATIO = 12, 0.5


def pruned_conv2(cfg):
    """conv2 of the shipped digits CNN, half its 16×4 tiles removed, ternary (no fine-tuning: a test never
    trains): ``(A, W, shift, expect)`` on the first IMAGES test images."""
    fnet = load("digits-float")
    x, _ = digits("train")
    w = fnet.weights()
    mask = pe_prune(w["conv2"], RATIO, rows=cfg.rows, block=cfg.block, cols=cfg.cols)[0]
    project = ternary_projection()
    tnet = fnet.with_weights({k: project(v * (mask if k == "conv2" else 1)) for k, v in w.items()})
    qnet = quantize(tnet, x, mode="ternary", granularity="tensor")
    xt = input_ints(qnet, digits("test")[0][:IMAGES])
    conv1 = int8_forward(qnet, inputs=xt)[0]
    layer = qnet.layers[1]
    assert layer.name == "conv2"
    A, W = layer_gemm(layer, conv1)
    return A, W, layer.shift, output_stage(A @ W, layer)


# Icarus in `make test` (about 20 s); Verilator's build of this weight_bits = 2 engine costs 1–2 min of CPU on
# 2 busy cores, so it runs in `make test-full`
@pytest.mark.parametrize("sim", [pytest.param(s, marks=pytest.mark.slow) if s == "verilator" else s
                                 for s in SIMULATORS])
def test_pruned_ternary_layer_on_rtl(sim, seed, tmp_path):
    cfg = engine_config(max_m=32)
    A, W, shift, expect = pruned_conv2(cfg)
    assert set(np.unique(W)) <= {-1, 0, 1}
    plan = plan_pruned(cfg, A, W, shift)
    assert 0 < plan.tiles.sum() < plan.tiles.size
    np.savez(tmp_path / "job.npz", A=A, W=W, shift=shift, expect=expect)
    report = tmp_path / "report.json"
    run_design(cfg, "sim.gemm.cocotb_pe_ternary", sim, seed=seed,
               knobs={"job": tmp_path / "job.npz", "report": report})
    got = json.loads(report.read_text())
    model = {"pruned": perf.predict(cfg, plan.shapes).cycles, "dense": perf.predict(cfg, plan.dense).cycles}
    for kind in ("pruned", "dense"):
        assert got[kind]["cycles"] == got[kind]["model"] == model[kind], (kind, got[kind], model[kind])
    assert got["pruned"]["counters"]["jobs_done"] == len(plan.jobs)
    saved = got["dense"]["cycles"] / got["pruned"]["cycles"]
    print(f"{sim}: conv2 of {IMAGES} images, {int(plan.tiles.sum())}/{plan.tiles.size} tiles, jobs {plan.shapes}: "
          f"{got['pruned']['cycles']} cycles vs {got['dense']['cycles']} dense ({saved:.3f}x)")
    assert saved > 1.2
