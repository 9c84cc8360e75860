"""AUTO-PRUNE's rows of the seeds table (sim/seeds/auto_prune.py), quick: each figure re-measured independently."""

import numpy as np
import pytest

import sim.seeds as seeds
from hw.formats.mapping import CrossbarGeometry
from gen.compiler.autoprune import energy_proxy, layer_crossbars
from gen.compiler.networks import network
from gen.compiler.prune import magnitude
from gen.compiler.workloads import synthetic_weights
from sim.seeds.auto_prune import (CLAIM, GEOMETRY, QUICK, RESNET_GEOMETRY, WORD_GEOMETRY, digits_evaluator,
                                  digits_layers)


@pytest.fixture(scope="module")
def rows():
    return seeds.seed_rows("auto-prune", quick=True)


def test_rows_follow_the_schema(rows):
    assert [(r["network"], r["weights"], r["claim"]) for r in rows] == [
        ("digits", "trained", CLAIM), ("digits", "trained", None), ("digits", "trained", CLAIM),
        ("resnet18", "synthetic", CLAIM)]
    assert all(r["metric"] == "crossbar_reduction" for r in rows)
    assert [r["settings"]["point"] for r in rows[:3]] == ["searched", "uniform", "searched"]
    assert [(r["settings"]["xbar"], r["settings"]["ou"]) for r in rows] == [
        ([32, 32], [4, 2]), ([32, 32], [4, 2]), ([32, 32], [4, 8]), ([128, 128], [8, 2])]


def test_digits_rows_reproduce_independently(rows):
    """The searched ratios, re-pruned, re-fine-tuned and re-evaluated by a fresh evaluator: the same drop; the int8
    network keeps every pruned weight at zero; its crossbars (mapped from its own weights) are the row's. Every
    trained row's crossbars are at most the mapper's count of the float weights pruned at its ratios (quantization
    may add zeros, never remove one)."""
    evaluate = digits_evaluator(epochs=QUICK["epochs"], lr=QUICK["lr"], seed=QUICK["seed"],
                                shift_search=QUICK["shift_search"], calib_images=QUICK["calib_images"])
    for row, geometry in zip(rows[:3], (GEOMETRY, GEOMETRY, WORD_GEOMETRY)):
        s = row["settings"]
        assert row["ours"] == pytest.approx(s["crossbars_dense_total"] / s["crossbars_total"])
        for layer, w in digits_layers():
            assert layer_crossbars(layer, w, geometry, ratio=s["ratios"][layer.name]) >= s["crossbars"][layer.name]
    s = rows[0]["settings"]
    assert evaluate(s["ratios"]) == pytest.approx(rows[0]["accuracy_drop"], abs=1e-3)
    q, acc = evaluate.networks[tuple(sorted(s["ratios"].items()))]
    assert acc == pytest.approx(s["accuracy"])
    for (layer, w), ql in zip(digits_layers(), q.weighted):
        keep = magnitude(w, s["ratios"][layer.name])[0]
        assert not ql.weight[~keep].any(), layer.name              # fine-tuning revived no pruned weight
        assert layer_crossbars(layer, ql.weight, GEOMETRY) == s["crossbars"][layer.name]
    searched, uni, word = rows[:3]
    assert searched["accuracy_drop"] <= 1.0 and uni["accuracy_drop"] <= 1.0 and word["accuracy_drop"] <= 1.0
    assert searched["ours"] >= uni["ours"]
    assert searched["settings"]["uniform_crossbars_total"] == uni["settings"]["crossbars_total"]
    assert len(set(uni["settings"]["ratios"].values())) == 1
    assert word["settings"]["crossbars_total"] <= word["settings"]["uniform_crossbars_total"]
    claim = word["settings"]["at_the_claim"]
    assert claim["crossbars_total"] * CLAIM <= word["settings"]["crossbars_dense_total"]
    ou = searched["settings"]["ou_structured_same_crossbars"]
    assert ou["crossbars"] <= searched["settings"]["crossbars_total"] and np.isfinite(ou["accuracy_drop"])
    assert [e["feasible"] for e in searched["settings"]["evaluated"]] == [
        e["accuracy_drop"] <= 1.0 for e in searched["settings"]["evaluated"]]


def test_resnet18_row_meets_its_proxy(rows):
    row = rows[3]
    s = row["settings"]
    layers = [(layer, synthetic_weights(layer, seed=0, index=i)) for i, layer in enumerate(network("resnet18"))]
    layers = layers[:QUICK["resnet_layers"]]
    assert list(s["ratios"]) == [layer.name for layer, _ in layers]
    assert energy_proxy(layers)(s["ratios"]) <= s["proxy_budget"] + 1e-4
    crossbars = {layer.name: layer_crossbars(layer, w, RESNET_GEOMETRY, ratio=s["ratios"][layer.name])
                 for layer, w in layers}
    assert crossbars == s["crossbars"]
    assert s["crossbars_total"] <= s["uniform_crossbars_total"]
    assert row["ours"] == pytest.approx(s["crossbars_dense_total"] / s["crossbars_total"])
    assert "proxy" in row["note"] and row["accuracy_drop"] is None
    assert np.isfinite(row["ours"])



@pytest.mark.slow
def test_searched_conv2_on_the_tile_rtl(seed, tmp_path):
    """The searched digits conv2 (magnitude 0.53, docs/seeds.md) mapped ou-sparse on 32×32 crossbars with 4×2 OUs
    runs on the RRAM tile's RTL (Verilator, its own build: make test-full): outputs equal ``x @ Wq`` (checked by
    ``simulate_layer``), counters equal the compiler's plan."""
    from sim.common.runner import require_simulator
    from sim.compiler.compiled_layer import plan_user_layer, tile_config
    from sim.simulate.run import simulate_layer

    require_simulator("verilator")
    path = tmp_path / "conv2.npz"
    np.savez(path, conv2=next(w for layer, w in digits_layers() if layer.name == "conv2"))
    geometry = {"xbar_rows": 32, "xbar_cols": 32, "ou_rows": 4, "ou_cols": 2, "cell_bits": 2}
    assert CrossbarGeometry(**geometry) == GEOMETRY
    _, q, plan = plan_user_layer(path=str(path), prune="magnitude:0.53", strategy="ou-sparse", geometry=geometry)
    assert plan.stats["crossbars"] == 3
    run = simulate_layer(path=path, prune="magnitude:0.53", strategy="ou-sparse", geometry=geometry, vectors=2,
                         seed=seed, progress=False)
    X = np.random.default_rng(seed).integers(-128, 128, size=(2, q[0].size))
    np.testing.assert_array_equal(run.outputs[0], X @ plan.weights)
    regs = run.report["registers"]
    cfg = tile_config([plan.mapping()], geometry, dac_bits=2)
    assert regs["MVMS"] == 2 and regs["ERRORS"] == 0
    planes = cfg.n_planes
    assert regs["OU_ACTIVATIONS"] == plan.stats["ous"] * planes * 2
    assert regs["ADC_CONVERSIONS"] == plan.stats["adc_per_plane"] * planes * 2
    assert regs["SKIPPED_OUS"] == (3 * (32 // 4) * (32 // 2) - plan.stats["ous"]) * planes * 2
