"""SME (seed 004): bit-sparsity-orchestrating quantization, bit-slice mapping + squeeze-out, map-report, seed rows."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.cli import main as run
from gen.compiler.report import map_report
from gen.compiler.bit_squeeze import nonzero_slices
from gen.compiler.sme import parse_sme, sme_levels, sme_quantize, weight_error
from gen.compiler.sparse_map import plan_layer
from hw.formats.mvm import lossless_adc_bits, mvm
from sim.common.strategies import crossbar_geometries


@st.composite
def sme_layers(draw):
    geometry = draw(crossbar_geometries())
    cell_bits = geometry.cell_bits
    weight_bits = draw(st.sampled_from([b for b in (4, 8) if b % cell_bits == 0]))
    return dict(geometry=geometry, weight_bits=weight_bits, terms=draw(st.integers(1, weight_bits // cell_bits)),
                n=draw(st.integers(1, 12)), k=draw(st.integers(1, 60)), zeros=draw(st.floats(0, 0.9)),
                granularity=draw(st.sampled_from(["channel", "layer"])), seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=120, deadline=None)
@given(p=sme_layers())
def test_sme_quantization_and_bit_slice_mapping_are_exact(p):
    """Every weight has at most ``terms`` non-zero slices, pruned zeros stay zero, and the squeezed bit-slice mapping
    computes ``x @ Wq`` exactly (lossless ADC) with the per-OU routing as the only index."""
    rng = np.random.default_rng(p["seed"])
    print(f"seed {p['seed']}")
    g = p["geometry"]
    w = rng.laplace(size=(p["n"], p["k"])) * rng.lognormal(0, 0.5, size=(p["n"], 1))
    w[rng.random(w.shape) < p["zeros"]] = 0.0
    q, scale, report = sme_quantize(w, terms=p["terms"], cell_bits=g.cell_bits, weight_bits=p["weight_bits"],
                                    granularity=p["granularity"])
    assert (nonzero_slices(q, cell_bits=g.cell_bits, weight_bits=p["weight_bits"]) <= p["terms"]).all()
    assert np.isin(np.abs(q), sme_levels(weight_bits=p["weight_bits"], cell_bits=g.cell_bits, terms=p["terms"])).all()
    assert (q[w == 0] == 0).all()
    assert report["rel_rms_error"] == pytest.approx(weight_error(w, q, scale))
    if p["granularity"] == "layer":
        assert np.unique(scale).size == 1
    wq = q.T                                                            # K × N
    plan = plan_layer(wq, g, strategy="bit-slice", weight_bits=p["weight_bits"])
    mapping = plan.mapping()
    x = rng.integers(-128, 128, size=(3, p["k"]))
    np.testing.assert_array_equal(mvm(mapping, x), x @ wq)
    np.testing.assert_array_equal(mvm(mapping, x, adc_bits=lossless_adc_bits(g.ou_rows, g.cell_bits, 1)), x @ wq)
    assert mapping.n_xbars == plan.stats["crossbars"] <= plan.stats["bit_slice_crossbars"]
    assert sum(plan.info["significance_crossbars"].values()) == plan.stats["bit_slice_crossbars"]
    # a significance per crossbar before squeeze-out: the shifts routed are the slices that hold a non-zero cell
    shifts = set(mapping.ou_col_shift[mapping.ou_col_mask].tolist())
    assert shifts == set(plan.info["significance_crossbars"])
    # squeeze-out converts only columns holding a non-zero cell in their OU
    assert int(mapping.ou_col_mask.sum()) <= np.count_nonzero(mapping.levels)


def test_sme_levels_and_the_scale_search():
    assert sme_levels(weight_bits=8, cell_bits=1, terms=1).tolist() == [0, 1, 2, 4, 8, 16, 32, 64]
    assert sme_levels(weight_bits=8, cell_bits=2, terms=1).tolist() == [0, 1, 2, 3, 4, 8, 12, 16, 32, 48, 64]
    assert len(sme_levels(weight_bits=8, cell_bits=1, terms=8)) == 128
    w = np.random.default_rng(3).laplace(size=(16, 200))
    errors = [sme_quantize(w, terms=t, cell_bits=1)[2]["rel_rms_error"] for t in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]                           # a larger slice budget, a smaller error
    _, _, rep = sme_quantize(w, terms=2, cell_bits=1)
    assert rep["int8_rel_rms_error"] < rep["rel_rms_error"] < 0.07
    assert rep["slices_per_weight"] <= 2 < rep["int8_slices_per_weight"]
    # the chosen scale beats plain max-scaling of the same levels
    levels = sme_levels(weight_bits=8, cell_bits=1, terms=2)
    peak = np.abs(w).max(axis=1, keepdims=True) / levels[-1]
    naive = levels[np.abs(np.abs(w)[..., None] / peak[..., None] - levels).argmin(axis=-1)] * np.sign(w)
    assert rep["rel_rms_error"] <= weight_error(w, naive, peak[:, 0])


@pytest.mark.parametrize("call, message", [
    (lambda: sme_levels(weight_bits=8, cell_bits=2, terms=5), "sme terms = 5 is out of range: allowed 1 … 4"),
    (lambda: sme_levels(weight_bits=6, cell_bits=4, terms=1), "cell_bits = 4 does not divide weight_bits = 6"),
    (lambda: sme_levels(weight_bits=8, cell_bits=3, terms=1), "cell_bits = 3 is not allowed"),
    (lambda: sme_quantize(np.array([[1.0, np.nan]]), terms=1), "w"),
    (lambda: sme_quantize(np.ones((2, 2)), terms=1, granularity="row"), "sme granularity = 'row'"),
    (lambda: parse_sme("sme:terms=x"), "terms = 'x', not an integer"),
    (lambda: parse_sme("sme:terms=1,foo=2"), "bad or repeated field 'foo=2'"),
    (lambda: parse_sme("sme"), "gives no slice budget"),
])
def test_bad_input_is_one_line(call, message):
    with pytest.raises((TypeError, ValueError), match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_finetuning_with_the_sme_projection_never_revives_a_pruned_weight():
    from gen.compiler.prune import prune
    from gen.network.data import digits
    from gen.network.spec import load
    from gen.network.train import finetune
    from sim.seeds.sme import FoldedProjection

    fnet = load("digits-float")
    mask = {k: prune(w, "magnitude", {"ratio": 0.5})[0] for k, w in fnet.weights().items()}
    x, y = digits("train")
    tuned = finetune(fnet, mask, x[:200], y[:200], epochs=1, project=FoldedProjection(fnet))
    for name, w in tuned.weights().items():
        assert (w[~mask[name]] == 0).all(), name
        q, _, _ = sme_quantize(w, terms=2, cell_bits=1)
        assert (nonzero_slices(q, cell_bits=1) <= 2).all()


@pytest.mark.parametrize("argv, message", [
    (["--quant", "sme:terms=5", "--cell-bits", "2"], "sme terms = 5 is out of range: allowed 1 … 4"),
    (["--quant", "sme:terms=1", "--cell-bits", "4", "--mapping", "bit-slice"], None),
    (["--quant", "sme", "--mapping", "bit-slice"], "gives no slice budget"),
    (["--quant", "sme:terms=2", "--mapping", "bit-slice+ou-sparse"], "bit-slice does not compose"),
    (["--quant", "sme:terms=2", "--mapping", "bit-slice", "--round", "1"], "needs the bit-squeeze strategy"),
])
def test_cli_bad_sme_options_exit_2(argv, message, capsys):
    code = run(["map-report", "--net", "tiny", "--quiet", *argv])
    out = capsys.readouterr()
    if message is None:                 # 4-bit cells, one slice of 8-bit weights: allowed
        assert code == 0
        return
    assert code == 2 and out.out == ""
    assert out.err.startswith("sparsegen: error: ") and message in out.err and out.err.count("\n") == 1


def test_map_report_accepts_sme_on_a_user_npz(tmp_path, capsys, seed):
    rng = np.random.default_rng(seed)
    capsys.readouterr()
    path = tmp_path / "mine.npz"
    np.savez(path, conv=rng.laplace(size=(16, 8, 3, 3)), fc=rng.laplace(size=(10, 64)))
    argv = ["map-report", "--weights", str(path), "--quant", "sme:terms=2", "--mapping", "bit-slice", "--cell-bits",
            "1", "--ou", "9x1", "--xbar", "64x64", "--quiet"]
    assert run([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    t = report["totals"]
    assert t["crossbars"] < t["dense_crossbars"] and t["crossbars"] <= t["bit_slice_crossbars"]
    for row in report["layers"]:
        e = row["quant_error"]
        assert e["terms"] == 2 and e["cell_bits"] == 1 and e["slices_per_weight"] <= 2
        assert e["int8_rel_rms_error"] < e["rel_rms_error"] < 0.1
    assert t["quant_rel_rms_error"]["max"] == max(r["quant_error"]["rel_rms_error"] for r in report["layers"])
    same = map_report(weights=str(path), quant="sme:terms=2", strategy="bit-slice", cell_bits=1, ou=(9, 1),
                      xbar=(64, 64))
    assert same["totals"]["crossbars"] == t["crossbars"]
    assert run(argv) == 0
    text = capsys.readouterr().out
    assert "squeeze-out" in text and "SME weight error" in text
    bad = tmp_path / "nan.npz"
    np.savez(bad, fc=np.array([[1.0, np.nan]]))
    assert run(["map-report", "--weights", str(bad), "--quant", "sme:terms=1", "--quiet"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("sparsegen: error: ") and out.err.count("\n") == 1


def test_seed_rows_quick():
    import sim.seeds as seeds
    from sim.seeds.sme import rows

    out = rows(quick=True)
    assert [(r["network"], r["weights"], r["claim"]) for r in out] == [
        ("resnet50", "synthetic", 8.7), ("mobilenet_v2", "synthetic", 2.1), ("digits", "trained", None)]
    for r in out:
        seeds.check_row(r)
        s = r["settings"]
        assert (s["cell_bits"], s["xbar"], s["ou"], s["terms"]) == (1, "128x128", "9x1", 2)
        assert r["ours"] == pytest.approx(s["dense_crossbars"] / s["crossbars"], abs=1e-3)
        assert s["crossbars"] <= s["bit_slice_crossbars"]
        assert s["int8_rel_rms_error_mean"] < s["rel_rms_error_mean"] < 0.07
    assert out[0]["ours"] > 1 and out[1]["ours"] > 1     # quick: the smallest layers only (targets: make bench)
    digits = out[2]
    assert digits["ours"] > 1 and digits["settings"]["accuracy"] > 0.9     # quick: 2 epochs (target: make bench)
    assert digits["accuracy_drop"] == pytest.approx(100 * (digits["settings"]["baseline_accuracy"]
                                                           - digits["settings"]["accuracy"]), abs=0.01)


def test_per_layer_table_command(capsys):
    from sim.seeds.sme import main

    assert main(["--net", "tiny", "--terms", "1"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["layer", "weights", "SME"]
    assert "total: dense int8" in text and len(text.splitlines()) == 2 + 5      # tiny has five layers
    for argv, message in ((["--net", "nope"], "--net 'nope' is not known"),
                          (["--terms", "9"], "sme terms = 9 is out of range")):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2 and message in capsys.readouterr().err
