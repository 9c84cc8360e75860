"""AUTO-PRUNE's per-layer ratio search (gen/compiler/autoprune.py), its ``--prune ratios:`` spec in map-report and
the ``auto-prune`` command."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.cli import main
from gen.compiler.autoprune import (METHODS, crossbar_table, energy_proxy, layer_crossbars, layer_prune, load_ratios,
                                    parse_ratios, ratio_grid, search, uniform)
from gen.compiler.networks import Layer, network
from gen.compiler.prune import as_matrix, parse_prune, prune
from gen.compiler.report import map_report
from gen.compiler.sparse_map import map_layer
from gen.compiler.workloads import prepare_layer, synthetic_weights
from hw.formats.mapping import CrossbarGeometry
from hw.formats.mvm import mvm
from sim.seeds.auto_prune import digits_layers

G = CrossbarGeometry(xbar_rows=32, xbar_cols=32, ou_rows=4, ou_cols=8, cell_bits=2)


def run(argv):
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def tiny_layers(seed):
    return [(layer, synthetic_weights(layer, seed=seed, index=i)) for i, layer in enumerate(network("tiny"))
            if layer.kind != "dw"]


def test_search_meets_its_constraint_beats_uniform_and_maps(tmp_path):
    """The trained digits CNN's float weights under the energy proxy: the searched ratios meet the constraint when
    evaluated afresh, need fewer crossbars than the best uniform ratio, and map-report maps them to the same count."""
    layers = digits_layers()
    found, uni = search(layers, G, energy_proxy(layers), max_drop=3.1, step=0.01)
    assert energy_proxy(layers)(found.ratios) == pytest.approx(found.drop) and found.drop <= 3.1
    assert energy_proxy(layers)(uni.ratios) <= 3.1 and len(set(uni.ratios.values())) == 1
    assert (found.total, uni.total, found.dense_total) == (6, 8, 17)           # 2.83× vs 2.12×
    for layer, w in layers:
        assert layer_crossbars(layer, w, G, ratio=found.ratios[layer.name]) == found.crossbars[layer.name]
    path = found.save(tmp_path / "sub" / "ratios.json")
    with pytest.raises(ValueError, match="is a directory"):
        found.save(tmp_path)
    npz = tmp_path / "digits.npz"
    np.savez(npz, **{layer.name: w for layer, w in layers})
    for spec in (f"ratios:{path}", "ratios:" + ",".join(f"{k}={v}" for k, v in found.ratios.items())):
        report = map_report(weights=str(npz), prune=spec, strategy="ou-sparse", xbar=(32, 32), ou=(4, 8))
        assert report["totals"]["crossbars"] == found.total
        assert report["totals"]["dense_crossbars"] == found.dense_total
        assert [r["prune"]["ratio"] for r in report["layers"]] == list(found.ratios.values())


def test_greedy_is_deterministic_no_worse_than_uniform_and_locally_maximal(seed):
    layers = tiny_layers(seed % 1000)
    table = crossbar_table(layers, G, step=0.1)
    budget = 2.0 + (seed % 5)
    evaluate = energy_proxy(layers)
    found, uni = search(layers, G, evaluate, max_drop=budget, step=0.1, table=table)
    again, _ = search(layers, G, energy_proxy(layers), max_drop=budget, step=0.1)
    assert found.to_dict() == again.to_dict()
    assert found.total <= uni.total and evaluate(found.ratios) <= budget
    # no layer can move to its next crossbar breakpoint without breaking the constraint
    grid = table["grid"]
    for layer, _ in layers:
        counts = table["crossbars"][layer.name]
        i = grid.index(found.ratios[layer.name])
        nxt = next((j for j in range(i + 1, len(grid)) if counts[j] < counts[i]), None)
        if nxt is not None:
            assert evaluate(dict(found.ratios, **{layer.name: grid[nxt]})) > budget
    # the exhaustive optimum over the breakpoints is at most as good as the greedy's (sanity of the table)
    names = [layer.name for layer, _ in layers]
    options = [[j for j, c in enumerate(table["crossbars"][n]) if j == 0 or c < min(table["crossbars"][n][:j])]
               for n in names]
    best = min(sum(table["crossbars"][n][j] for n, j in zip(names, combo)) for combo in itertools.product(*options)
               if evaluate({n: grid[j] for n, j in zip(names, combo)}) <= budget)
    assert best <= found.total


def test_uniform_alone_and_ou_method_masks_are_whole_ous():
    layers = tiny_layers(1)
    uni = uniform(layers, G, energy_proxy(layers, method="ou", geometry=G), max_drop=5.0, method="ou", step=0.1)
    assert uni.kind == "uniform" and len(set(uni.ratios.values())) == 1
    ratio = next(iter(uni.ratios.values()))
    assert ratio > 0
    for layer, w in layers:
        name, params = layer_prune("ou", ratio, G)
        assert params == {"ratio": ratio, "ou_rows": 4, "outputs_per_group": 1}
        keep = as_matrix(prune(w, name, params)[0])
        k = keep.shape[0] - keep.shape[0] % 4
        blocks = keep[:k].reshape(k // 4, 4, -1)
        assert (blocks.all(axis=1) | ~blocks.any(axis=1)).all()                 # whole 4-row OUs, per output
        mag = prune(w, "magnitude", {"ratio": ratio})[0]
        assert np.count_nonzero(~mag) == round(ratio * w.size)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 40), n=st.integers(1, 12), ratio=st.floats(0, 0.95), method=st.sampled_from(METHODS),
       ou_rows=st.sampled_from([1, 3, 4, 9]), ou_cols=st.sampled_from([2, 3, 8]), seed=st.integers(0, 2 ** 16))
def test_searched_layers_compute_exactly(k, n, ratio, method, ou_rows, ou_cols, seed):
    """A layer pruned the way the search prunes it, quantized and mapped ou-sparse: ``mvm == x @ Wq`` (lossless),
    with OU column groups of a slice pair (2), across slices (3) and a whole int8 output (8)."""
    rng = np.random.default_rng(seed)
    g = CrossbarGeometry(xbar_rows=16, xbar_cols=16, ou_rows=ou_rows, ou_cols=ou_cols, cell_bits=2)
    layer = Layer("fc", "fc", k, n)
    w = rng.laplace(size=(n, k))
    name, params = layer_prune(method, ratio, g)
    q, _ = prepare_layer(layer, w, prune_name=name, prune_params=params)
    keep = prune(w, name, params)[0]
    assert not q[~keep].any()                                                    # the mask holds after quantizing
    m = as_matrix(q)
    mapping = map_layer(m, g, strategy="ou-sparse")
    x = rng.integers(-128, 128, size=(3, k))
    np.testing.assert_array_equal(mvm(mapping, x), x @ m)
    assert mapping.n_xbars == layer_crossbars(layer, w, g, method=method, ratio=ratio)


def test_ratio_specs():
    assert parse_prune("ratios:conv1=0.1,fc=0.5") == ("ratios", {"spec": "conv1=0.1,fc=0.5"})
    assert load_ratios("conv1=0.1,fc=0.5") == ("magnitude", {"conv1": 0.1, "fc": 0.5})
    assert parse_ratios("a=0,b=0.25") == {"a": 0.0, "b": 0.25}
    assert ratio_grid(0.25, 0.9).tolist() == [0.0, 0.25, 0.5, 0.75]


def _bad(tmp_path):
    nan = np.ones((4, 3))
    nan[1, 1] = np.nan
    fc = Layer("fc", "fc", 3, 4)
    js = tmp_path / "bad.json"
    js.write_text("{not json")
    return {
        "nan": (lambda: search([(fc, nan)], G, lambda r: 0.0, max_drop=1.0), "fc.*NaN|nan"),
        "ints": (lambda: search([(fc, np.ones((4, 3), int))], G, lambda r: 0.0, max_drop=1.0), "are not float"),
        "shape": (lambda: search([(fc, np.ones((3, 4)))], G, lambda r: 0.0, max_drop=1.0), "do not match"),
        "callable": (lambda: search([(fc, np.ones((4, 3)))], G, 3, max_drop=1.0), "evaluate = 'int' is not callable"),
        "nan drop": (lambda: search([(fc, np.ones((4, 3)))], G, lambda r: float("nan"), max_drop=1.0),
                     "evaluate\\(ratios\\) = nan is not a finite number"),
        "max_drop": (lambda: search([(fc, np.ones((4, 3)))], G, lambda r: 0.0, max_drop=-1), "max_drop = -1"),
        "unmet at 0": (lambda: search([(fc, np.ones((4, 3)))], G, lambda r: 2.0, max_drop=1.0),
                       "max_drop = 1.0 is not met even without pruning"),
        # one tiny layer: 1 crossbar dense, 1 at best: 3.3× is out of reach of any pruning
        "unreachable": (lambda: search([(fc, np.ones((4, 3)))], G, lambda r: 0.0, max_drop=0.0, target=3.3),
                        "target = 3.3× crossbar reduction is out of reach of any pruning"),
        # reachable on the grid (17 → 5) but not at 0 points: the error names the target and what was reached
        "unmet target": (lambda: search(digits_layers(), G, energy_proxy(digits_layers()), max_drop=0.0, step=0.05,
                                        target=3.3), "target = 3.3× crossbar reduction is not met: .* give 1.42×"),
        "table": (lambda: search([(fc, np.ones((4, 3)))], G, lambda r: 0.0, max_drop=1.0,
                                 table=crossbar_table(tiny_layers(0), G, step=0.5)), "table = .* does not match"),
        "method": (lambda: layer_prune("pattern", 0.5), "method = 'pattern' is not allowed"),
        "sme": (lambda: crossbar_table(tiny_layers(0), G, quant="sme"), "quant = 'sme' is not allowed: allowed "
                "'int8', 'int4', 'ternary'"),
        "one layer": (lambda: prune(np.ones((4, 3)), "ratios", {"spec": "fc=0.5"}), "applies to a network"),
        "empty spec": (lambda: parse_prune("ratios"), "needs per-layer ratios"),
        "inline": (lambda: load_ratios("fc=x"), "fc = 'x' is not a number"),
        "inline range": (lambda: load_ratios("fc=1.5"), "fc = 1.5 is out of range"),
        "json": (lambda: load_ratios(str(js)), "not JSON"),
        "missing file": (lambda: load_ratios(str(tmp_path / "none.json")), "does not exist"),
        "layers": (lambda: map_report(net="tiny", prune="ratios:conv1=0.5", strategy="ou-sparse"),
                   r"layers without a ratio \['conv2', 'dw3', 'pw3', 'fc'\], ratios of unknown layers \[\]"),
        "unknown": (lambda: map_report(net="tiny", prune="ratios:conv1=0.5,conv2=0,dw3=0,pw3=0,fc=0,fc9=0"),
                    r"ratios of unknown layers \['fc9'\]"),
    }


@pytest.mark.parametrize("case", ["nan", "ints", "shape", "callable", "nan drop", "max_drop", "unmet at 0",
                                  "unreachable", "unmet target", "table", "method", "sme", "one layer", "empty spec",
                                  "inline", "inline range", "json", "missing file", "layers", "unknown"])
def test_bad_input_is_one_clear_error(case, tmp_path):
    call, message = _bad(tmp_path)[case]
    with pytest.raises((TypeError, ValueError), match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_cli_search_writes_ratios_map_report_reads_them(tmp_path, capsys):
    npz = tmp_path / "digits.npz"
    np.savez(npz, **{layer.name: w for layer, w in digits_layers()})
    out = tmp_path / "r.json"
    assert run(["auto-prune", "--weights", str(npz), "--xbar", "32x32", "--ou", "4x8", "--budget", "3.1", "--step",
                "0.01", "--out", str(out), "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["searched"]["total"], result["uniform"]["total"]) == (6, 8)
    assert json.loads(out.read_text())["ratios"] == result["searched"]["ratios"]
    assert run(["map-report", "--weights", str(npz), "--prune", f"ratios:{out}", "--mapping", "ou-sparse", "--xbar",
                "32x32", "--ou", "4x8", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["crossbars"] == 6


@pytest.mark.parametrize("argv, message", [
    (["--net", "tiny", "--target", "50", "--budget", "0"], "target = 50× crossbar reduction is out of reach"),
    (["--net", "tiny", "--budget", "-1"], "--budget = -1"),
    (["--net", "tiny", "--method", "nm"], "--method = 'nm' is not allowed"),
    (["--net", "tiny", "--step", "0"], "step = 0"),
])
def test_cli_bad_options_exit_2_nothing_written(argv, message, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert run(["auto-prune", "--quiet", "--xbar", "32x32", "--ou", "4x8", "--out", str(out), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("sparsegen: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and captured.out == "" and not out.exists()
    ints = tmp_path / "ints.npz"
    np.savez(ints, fc=np.ones((4, 3), dtype=np.int64))
    assert run(["auto-prune", "--quiet", "--weights", str(ints), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "layers ['fc'] hold integers" in captured.err and captured.out == "" and not out.exists()
    assert run(["map-report", "--net", "tiny", "--prune", "ratios:conv1=0.5", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "layers without a ratio" in captured.err and captured.out == ""
