"""Seed 001, PE-wise structured pruning with ternary weights (gen/compiler/pe_prune.py, the host driver's
plan_pruned, sim/seeds/pe_ternary.py): mask structure, ternary threshold, exact results with the zero tiles compiled
away, cycles, the seeds rows, map-report/perf acceptance and bad input. The RTL run is
tests/gemm/test_gemm_pe_ternary.py."""

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.compiler.pe_prune import (compression, pe_prune, skip_jobs, skip_perf, ternarize_pruned, ternary_projection,
                                   tile_map, unit_norms)
from gen.compiler.prune import as_matrix, parse_prune, prune
from gen.compiler.quantize import ternarize
from gen.compiler.sparse_map import map_layer
from gen.config import load_config
from gen.gemm import perf
from gen.network.data import digits
from gen.network.spec import load
from gen.network.train import finetune
from hw.formats.mapping import CrossbarGeometry
from hw.formats.mvm import lossless_adc_bits, mvm
from sim.gemm import golden
from sim.gemm.driver import plan_gemm, plan_pruned
from sim.seeds import check_row
from sim.seeds import pe_ternary


@st.composite
def layers(draw):
    """A random conv or fc layer, an engine tile shape, a ratio, a PE-column group and a seed."""
    conv = draw(st.booleans())
    n = draw(st.integers(1, 20))
    shape = (n, draw(st.integers(1, 8)), 3, 3) if conv else (n, draw(st.integers(1, 70)))
    cols = draw(st.sampled_from([1, 2, 3, 4, 8]))
    group = draw(st.sampled_from([d for d in range(1, cols + 1) if cols % d == 0]))
    return dict(shape=shape, rows=draw(st.integers(1, 4)), block=draw(st.sampled_from([1, 2, 4])), cols=cols,
                group=group, ratio=draw(st.floats(0, 0.95)), seed=draw(st.integers(0, 2**32 - 1)))


def weights_of(p):
    rng = np.random.default_rng(p["seed"])
    return rng.laplace(size=p["shape"]) * rng.lognormal(0, 0.5, size=(p["shape"][0],) + (1,) * (len(p["shape"]) - 1))


@settings(max_examples=150, deadline=None)
@given(p=layers())
def test_pe_mask_removes_whole_units_smallest_first(p):
    w = weights_of(p)
    mask, report = pe_prune(w, p["ratio"], rows=p["rows"], block=p["block"], cols=p["cols"], group=p["group"])
    tk, g = p["rows"] * p["block"], p["group"]
    m, keep = as_matrix(w), as_matrix(mask)
    kt, ut = -(-m.shape[0] // tk), -(-m.shape[1] // g)
    removed = np.zeros((kt, ut), bool)
    for i in range(kt):
        for j in range(ut):
            unit = keep[i * tk:(i + 1) * tk, j * g:(j + 1) * g]
            assert unit.all() or not unit.any(), "a unit partly pruned"
            removed[i, j] = not unit.any()
    assert removed.sum() == report["units_removed"] == round(p["ratio"] * (kt * ut))     # ratio · units
    norms = unit_norms(m, tk, g)
    if removed.any() and (~removed).any():
        assert norms[removed].max() <= norms[~removed].min()
    assert report["tiles_removed"] == int((~tile_map(keep, tk, p["cols"])).sum())
    assert report["sparsity"] == pytest.approx(1 - mask.mean())


@settings(max_examples=100, deadline=None)
@given(p=layers(), rule=st.sampled_from(["twn", "optimal"]), granularity=st.sampled_from(["tensor", "channel"]))
def test_pe_ternary_mapping_is_exact_on_the_tile(p, rule, granularity):
    """Pruned + ternary layers on the RRAM tile (dense and OU-sparse mappings, lossless ADC): mvm == x @ Wq; the
    ternary weights are {-1, 0, 1}, zero wherever the mask pruned."""
    w = weights_of(p)
    mask, _ = pe_prune(w, p["ratio"], rows=p["rows"], block=p["block"], cols=p["cols"], group=p["group"])
    q, scale = ternarize_pruned(w * mask, rule=rule, granularity=granularity)
    assert set(np.unique(q)) <= {-1, 0, 1} and not q[~mask].any() and (scale > 0).all()
    Wq = as_matrix(q).astype(np.int64)
    g = CrossbarGeometry(xbar_rows=32, xbar_cols=32, ou_rows=8, ou_cols=4, cell_bits=1)
    x = np.random.default_rng(p["seed"]).integers(-128, 128, size=(3, Wq.shape[0]))
    for strategy in ("dense", "ou-sparse"):
        mapping = map_layer(Wq, g, strategy=strategy, weight_bits=2)
        y = mvm(mapping, x, input_bits=8, input_signed=True, dac_bits=1, adc_bits=lossless_adc_bits(8, 1, 1))
        np.testing.assert_array_equal(y, x @ Wq, err_msg=strategy)


def test_threshold_adapts_to_the_pruning():
    """The threshold comes from the kept weights only: a pruned layer ternarizes its kept weights exactly as those
    weights alone would; the plain TWN rule (mean over all, zeros included) lowers it and keeps more."""
    rng = np.random.default_rng(1)
    w = rng.laplace(size=(16, 8, 3, 3))
    mask, _ = pe_prune(w, 0.6, rows=4, block=4, cols=4)
    q, scale = ternarize_pruned(w * mask)
    alone, s_alone = ternarize_pruned(w[mask].reshape(1, -1))
    np.testing.assert_array_equal(q[mask], alone[0])
    assert scale[0] == s_alone[0] == pytest.approx(np.abs(w[mask])[alone[0] != 0].mean())
    plain, _ = ternarize((w * mask).reshape(1, -1))
    assert np.count_nonzero(plain) > np.count_nonzero(q)


def test_optimal_rule_minimizes_the_l2_error():
    rng = np.random.default_rng(2)
    for _ in range(20):
        w = rng.laplace(size=(1, 30)) * (rng.random((1, 30)) > 0.3)
        q, scale = ternarize_pruned(w, rule="optimal")
        err = np.sum((w - q * scale[0]) ** 2)
        a = np.sort(np.abs(w[w != 0]))[::-1]
        best = min(np.sum(a ** 2) - np.sum(a[:n]) ** 2 / n for n in range(1, a.size + 1))
        assert err == pytest.approx(best)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 70), n=st.integers(1, 20), keep=st.sampled_from([1, 2, 4]),
       density=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_plan_pruned_is_exact_and_never_slower(m, k, n, keep, density, seed):
    """Random layers with random all-zero tiles: the jobs sent (every one an ordinary job) give the layer's golden
    results exactly, cover only live tiles, and take no more cycles than the layer sent whole."""
    cfg = load_config("gemm_4x4_2of4", {"keep": keep, "weight_bits": 2, "max_m": 16, "max_k": 72, "max_n": 20})
    rng = np.random.default_rng(seed)
    kp = -(-k // 4) * 4
    W = golden_nm(rng, kp, n, keep)[:k]
    live = rng.random(((-(-k // cfg.k)), -(-n // cfg.cols))) < density
    W = W * np.repeat(np.repeat(live, cfg.k, 0), cfg.cols, 1)[:k, :n]
    A = rng.integers(-128, 128, size=(m, k))
    plan = plan_pruned(cfg, A, W, 3)
    got = plan.assemble([golden.gemm_engine(cfg, a, w, s) for a, w, s in plan.jobs])
    want = np.concatenate([golden.gemm_engine(cfg, A[r:r + 16], W, 3) for r in range(0, m, 16)])
    np.testing.assert_array_equal(got, want)
    for a, w, s in plan.jobs:
        plan_gemm(cfg, a, w, s)                     # a job the engine takes
    sent = sum(np.prod(perf.tiles(cfg, w.shape[0], w.shape[1])) for _, w, _ in plan.jobs)
    assert sent == int(plan.tiles.sum()) * -(-m // 16)           # exactly the live tiles, once per row chunk
    dense = perf.predict(cfg, plan.dense).cycles
    assert (perf.predict(cfg, plan.shapes).cycles if plan.jobs else 0) <= dense
    assert plan.shapes == [(rs.stop - rs.start, len(ks), len(cs)) for rs, ks, cs in
                           skip_jobs(W, m, k=cfg.k, cols=cfg.cols, max_m=16)]


def golden_nm(rng, k, n, keep):
    """A ``k × n`` ternary matrix with at most ``keep`` non-zeros in every 4 consecutive rows of a column."""
    W = rng.integers(-1, 2, size=(k, n))
    for b in range(0, k, 4):
        for c in range(n):
            nz = np.flatnonzero(W[b:b + 4, c])
            W[b + nz[keep:], c] = 0
    return W


def test_compression_counts_weights_and_the_tile_map():
    W = np.ones((20, 6), np.int64)                  # tiles 16×4: 2 K-tiles × 2 N-tiles, ragged 4 × 2 corners
    assert compression([W], tile_k=16, tile_n=4)["compression"] == 16.0      # nothing pruned: no map
    W[:16, :4] = 0
    r = compression([W], tile_k=16, tile_n=4)
    assert (r["weights_stored"], r["index_bits"], r["tiles_kept"]) == (120 - 64, 4, 3)
    assert r["compression"] == pytest.approx(120 * 32 / (56 * 2 + 4))


def test_finetuning_never_revives_a_pruned_weight():
    """One epoch of quantization-aware masked fine-tuning: the pruned tiles stay exactly zero through the int8
    pipeline, the weights are ternary, the engine skips the pruned tiles."""
    cfg = pe_ternary.engine_config()
    mask, tuned, qnet = pe_ternary.prune_and_tune(load("digits-float"), 0.5, epochs=1, cfg=cfg, calib=100)
    for layer in qnet.weighted:
        assert set(np.unique(layer.weight)) <= {-1, 0, 1}
        if layer.name in mask:
            assert not tuned.weights()[layer.name][~mask[layer.name]].any()
            assert not layer.weight[~mask[layer.name]].any()
            assert (~tile_map(as_matrix(layer.weight), cfg.k, cfg.cols)).sum() >= 10     # half of 20 tiles
    cyc = pe_ternary.layer_cycles(cfg, qnet, 10)
    assert cyc["conv2"]["pruned"] < cyc["conv2"]["dense"] and cyc["conv2"]["tiles_kept"] <= 10


@settings(max_examples=20, deadline=None)
@given(ratio=st.floats(0, 0.9), group=st.sampled_from([1, 2, 4]), rule=st.sampled_from(["twn", "optimal"]),
       seed=st.integers(0, 2**16))
def test_finetuning_keeps_every_pe_mask(ratio, group, rule, seed):
    """Quantization-aware masked fine-tuning (one epoch on 64 training images) under random PE masks on every layer:
    no pruned weight comes back, and every layer is ternary times one scale."""
    fnet = load("digits-float")
    x, y = digits("train")
    mask = {k: pe_prune(w, ratio, group=group)[0] for k, w in fnet.weights().items()}
    tuned = finetune(fnet, mask, x[:64], y[:64], seed=seed, epochs=1, project=ternary_projection(rule=rule))
    for k, w in tuned.weights().items():
        assert not w[~mask[k]].any(), k
        assert len(np.unique(np.abs(w[w != 0]))) <= 1, k


def test_projection_keeps_zeros_and_is_ternary():
    w = np.random.default_rng(3).normal(size=(6, 5))
    w[:, :2] = 0
    out = ternary_projection(granularity="channel")(w)
    assert not out[:, :2].any()
    for row in out:
        assert len(np.unique(np.abs(row[row != 0]))) <= 1


def test_rows_quick():
    rows = pe_ternary.rows(quick=True)
    for row in rows:
        check_row(row)
    by = {(r["network"], r["metric"]): r for r in rows}
    assert set(by) == {("digits", "compression"), ("digits", "compression_ternary"), ("digits", "cycles_saved"),
                       ("resnet18", "compression")}
    assert by["digits", "compression_ternary"]["ours"] == 16.0
    assert by["digits", "compression"]["claim"] == 21.0 and by["digits", "compression"]["accuracy_target"] == 2.0
    sweep = by["digits", "compression"]["settings"]["sweep"]
    assert [p["ratio"] for p in sweep] == [0.0, 0.5]
    assert sweep[1]["compression"] > 16 * 1.3 and sweep[1]["cycles_saved"] > 1.2
    assert by["digits", "cycles_saved"]["ours"] >= 1.0
    assert by["resnet18", "compression"]["ours"] > 20 and by["resnet18", "compression"]["accuracy_drop"] is None


@pytest.mark.parametrize("call, word", [
    (lambda: pe_prune(np.ones((4, 4)), 1.0), "ratio = 1.0 is out of range"),
    (lambda: pe_prune(np.ones((4, 4)), -0.1), "ratio = -0.1 is out of range"),
    (lambda: pe_prune(np.ones((4, 4)), float("nan")), "ratio"),
    (lambda: pe_prune(np.ones((4, 4)), 0.5, cols=4, group=3), "group = 3 does not divide cols = 4"),
    (lambda: pe_prune(np.array([[1.0, np.nan]]), 0.5), "w"),
    (lambda: pe_prune(np.ones((2, 2, 2)), 0.5), "weights must be conv"),
    (lambda: ternarize_pruned(np.array([[np.inf, 1.0]])), "w"),
    (lambda: ternarize_pruned(np.ones((2, 2)), rule="best"), "ternary rule"),
    (lambda: ternarize_pruned(np.ones((2, 2)), threshold=-1.0), "ternary threshold"),
    (lambda: compression([], tile_k=16, tile_n=4), "matrices"),
    (lambda: plan_pruned(load_config("gemm_4x4_2of4_os"), np.ones((2, 4), np.int64), np.ones((4, 2), np.int64)),
     "dataflow"),
    (lambda: plan_pruned(pe_ternary.engine_config(), np.ones((2, 4), np.int64), 2 * np.ones((4, 2), np.int64)), "W"),
    (lambda: skip_perf(pe_ternary.engine_config(), 0, np.ones((4, 2), np.int64)), "M = 0"),
    (lambda: parse_prune("pe:ratio=0.5,tile=3"), "not allowed"),
    (lambda: parse_prune("pe"), "needs ratio"),
])
def test_bad_input_is_one_line(call, word):
    with pytest.raises((TypeError, ValueError)) as error:
        call()
    assert word in str(error.value) and "\n" not in str(error.value)


def test_operating_point():
    def pt(ratio, drop):
        return {"ratio": ratio, "drop": drop}
    assert pe_ternary.operating_point([pt(0, 1.0), pt(0.3, 1.9), pt(0.5, 2.5)])[0]["ratio"] == 0.3
    op, why = pe_ternary.operating_point([pt(0, 6.0), pt(0.1, 9.0), pt(0.3, 7.9), pt(0.5, 14.0)])
    assert op["ratio"] == 0.3 and "ternarization alone already drops 6.00 points" in why


def test_plot(tmp_path):
    points = [{"ratio": r, "drop": d, "baseline": 0.9667, "accuracies": [0.9667 - d / 100] * 2,
               "compression": {"compression": c}} for r, d, c in ((0, 7.4, 16.0), (0.3, 8.3, 19.5), (0.5, 14.6, 25.1))]
    path = pe_ternary.plot(points, tmp_path / "sub" / "sweep.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parse_prune_registers_pe():
    name, params = parse_prune("pe:ratio=0.5,rows=2,block=4,cols=4,group=2")
    assert name == "pe" and params == {"ratio": 0.5, "rows": 2, "block": 4, "cols": 4, "group": 2}
    mask, report = prune(np.random.default_rng(0).normal(size=(8, 20)), name, params)
    assert report["method"] == "pe" and report["units_removed"] == 6


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gen", *args], capture_output=True, text=True, cwd=cwd)


def test_map_report_accepts_pe_pruning(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "w.npz", conv=rng.normal(size=(16, 8, 3, 3)), fc=rng.normal(size=(10, 16)))
    r = _cli("map-report", "--weights", str(tmp_path / "w.npz"), "--prune", "pe:ratio=0.5", "--quant", "ternary",
             "--mapping", "ou-sparse", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    conv = next(layer for layer in out["layers"] if layer["name"] == "conv")
    assert conv["prune"]["method"] == "pe" and conv["prune"]["tiles_removed"] == 10
    assert out["settings"]["prune"] == "pe:ratio=0.5"
    bad = _cli("map-report", "--weights", str(tmp_path / "w.npz"), "--prune", "pe:ratio=1.0", "--quant", "ternary",
               cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("sparsegen: error: PE pruning ratio = 1.0") and bad.stderr.count("\n") == 1
    w = rng.normal(size=(16, 8, 3, 3))
    w[3, 2, 1, 1] = np.nan
    np.savez(tmp_path / "nan.npz", conv=w)
    for spec, word in (("pe:ratio=0.5", "= nan is not finite"), ("pe:ratio=0.5,group=3", "group = 3 does not divide cols = 4"),
                       ("pe:ratio=x", "ratio = 'x' is not a float")):
        bad = _cli("map-report", "--weights", str(tmp_path / ("nan.npz" if "nan" in word else "w.npz")), "--prune",
                   spec, cwd=tmp_path)
        assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1, bad.stderr
        assert bad.stderr.startswith("sparsegen: error: ") and word in bad.stderr, bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.npz", "w.npz"]          # nothing written


def test_perf_skip_zero_tiles(tmp_path):
    rng = np.random.default_rng(0)
    W = golden_nm(rng, 72, 16, 4)
    W[16:48, :8] = 0
    W[:, 12:] = 0
    np.save(tmp_path / "W.npy", W)
    base = ["perf", "--config", "gemm_4x4_2of4", "--set", "keep=4", "--set", "weight_bits=2", "--set", "max_k=72",
            "--skip-zero-tiles", str(tmp_path / "W.npy")]
    r = _cli(*base, "--gemm", "100,72,16", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    cfg = load_config("gemm_4x4_2of4", {"keep": 4, "weight_bits": 2, "max_k": 72})
    plan = plan_pruned(cfg, np.zeros((100, 72), np.int64), W)
    assert [tuple(j) for j in got["jobs"]] == plan.shapes
    assert got["cycles"] == perf.predict(cfg, plan.shapes).cycles and got["dense_cycles"] == perf.predict(
        cfg, plan.dense).cycles
    assert (got["tiles"], got["tiles_kept"]) == (20, 11) and got["cycles_saved"] > 1.5
    for extra, word in ((["--gemm", "100,72,15"], "has shape (72, 16)"), (["--gemm", "1,72,16", "--gemm", "2,72,16"],
                                                                          "exactly one --gemm")):
        bad = _cli(*base, *extra)
        assert bad.returncode == 2 and bad.stdout == "" and word in bad.stderr and bad.stderr.count("\n") == 1
