"""``python -m gen map-report`` (gen/compiler/cli.py, report.py, metrics.py, workloads.py, networks.py)."""

import json

import numpy as np
import pytest

from gen.cli import main
from gen.compiler.energy import EnergyTable
from gen.compiler.metrics import mapping_stats
from gen.compiler.networks import NETWORKS, network
from gen.compiler.prune import as_matrix
from gen.compiler.report import map_report, prepared_layers
from gen.compiler.rram_map import columns_per_output
from gen.compiler.sparse_map import plan_layer
from gen.compiler.workloads import layer_matrices, load_npz, synthetic_weights
from hw.formats.mapping import CrossbarGeometry
from hw.formats.mvm import lossless_adc_bits, mvm


def run(argv):
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def test_network_tables_match_published_weight_counts():
    """Conv + FC weights (no BN, no bias) of the torchvision models, from their published parameter totals."""
    expected = {"vgg16": 138_357_544 - 13_416, "resnet18": 11_689_512 - 1_000 - 9_600,
                "resnet50": 25_557_032 - 1_000 - 53_120, "mobilenetv2": 3_504_872 - 1_000 - 34_112}
    for name, count in expected.items():
        assert sum(layer.n_weights for layer in network(name)) == count, name
    mb = network("mobilenetv2")
    assert sum(layer.kind == "dw" for layer in mb) == 17 and len(network("resnet50")) == 54
    assert network("resnet18")[-2].positions == 7 * 7 and network("resnet18")[0].positions == 112 * 112
    with pytest.raises(ValueError, match="--net 'alexnet' is not known: allowed tiny, vgg16"):
        network("alexnet")


@pytest.mark.parametrize("mapping", ["dense", "ou-sparse", "kernel-reorder+bit-squeeze"])
def test_report_figures_equal_the_built_mappings(mapping):
    """Every per-layer figure of the report equals what the built TileMappings count, and they compute exactly."""
    result = map_report(net="tiny", prune="pattern:k=4,P=4", strategy=mapping, seed=3)
    g = CrossbarGeometry()
    planes, rng = 8, np.random.default_rng(0)
    assert len(result["layers"]) == len(network("tiny"))
    for row, (layer, q, _) in zip(result["layers"], prepared_layers(net="tiny", prune="pattern:k=4,P=4", seed=3)):
        counted = dict.fromkeys(("crossbars", "ous", "adc_per_plane", "cells_used"), 0)
        matrices = layer_matrices(layer, q, xbar_rows=128, xbar_cols=128, per_output=8)
        assert sum(m.size for m in matrices) >= q.size and sum(np.count_nonzero(m) for m in matrices) == np.count_nonzero(q)
        for m in matrices:
            mp = plan_layer(m, g, strategy=mapping).mapping()
            x = rng.integers(-128, 128, size=(2, m.shape[0]))
            np.testing.assert_array_equal(mvm(mp, x), x @ m)
            for key, value in mapping_stats(mp).items():
                if key in counted:
                    counted[key] += value
        assert row["crossbars"] == counted["crossbars"]
        assert row["ou_activations"] == counted["ous"] * planes * layer.positions
        assert row["adc_conversions"] == counted["adc_per_plane"] * planes * layer.positions
        assert row["cells_used"] == counted["cells_used"]
        assert row["adc_bits"] == lossless_adc_bits(9, 2) == 5
    t = result["totals"]
    assert t["crossbars"] == sum(r["crossbars"] for r in result["layers"])
    assert t["energy_pj"] == pytest.approx(sum(r["energy_pj"] for r in result["layers"]))
    if mapping == "dense":
        assert t["area_efficiency"] == t["energy_efficiency"] == t["speedup"] == 1.0


def test_ou_pruning_follows_the_geometry():
    result = map_report(net="tiny", prune="ou:ratio=0.5", strategy="ou-sparse", ou=(4, 16))
    for row in result["layers"]:
        assert row["prune"]["ou_rows"] == 4 and row["prune"]["outputs_per_group"] == 2   # 16 bitlines / 8 per output
        assert row["prune"]["sparsity"] >= 0.5
    assert result["totals"]["ous"] < map_report(net="tiny", strategy="ou-sparse", ou=(4, 16))["totals"]["ous"]


def test_energy_accounting():
    """Energy of one dense fc layer from the table, counted by hand."""
    table = EnergyTable(adc_8bit_pj=2.0, dac_pj=0.5, cell_read_pj=0.01, shift_add_pj=0.1, buffer_byte_pj=1.0)
    result = map_report(net="tiny", strategy="dense", table=table)
    fc = result["layers"][-1]                                        # 64 × 10, one 128×128 crossbar
    ous, cols = 8 * 10, 80                                           # ceil(64/9)=8 row groups × 10 column groups
    adc = 8 * cols * 8                                               # 8 row groups × 80 bitlines × 8 planes
    drives = 64 * 10 * 8                                             # every row under each of 10 column groups
    cells = 64 * 80 * 8
    expected = adc * (2.0 / 8 + 0.1) + drives * 0.5 + cells * 0.01 + (64 * 10 + 4 * 10) * 1.0
    assert fc["ou_activations"] == ous * 8 and fc["adc_conversions"] == adc
    assert fc["energy_pj"] == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"EnergyTable.dac_pj = -1 is out of range: allowed a finite number ≥ 0"):
        EnergyTable(dac_pj=-1)


def test_cli_table_json_and_progress(capsys):
    assert run(["map-report", "--net", "tiny", "--prune", "pattern:k=4,P=8", "--mapping", "kernel-reorder+bit-squeeze",
                "--xbar", "64x64", "--ou", "9x8", "--cell-bits", "2"]) == 0
    out, err = capsys.readouterr()
    names = [layer.name for layer in network("tiny")]
    lines = out.splitlines()
    assert [line.split()[0] for line in lines if line.split() and line.split()[0] in names] == names
    assert "total:" in out and "synthetic" in out
    assert "5/5" in err                                               # progress bar on stderr
    assert run(["map-report", "--net", "tiny", "--mapping", "bit-squeeze", "--round", "1", "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert err == ""
    assert [r["name"] for r in report["layers"]] == names
    assert report["settings"]["mapping"] == "bit-squeeze" and report["totals"]["crossbars"] > 0
    assert all(r["rounding"]["max_abs_error"] <= 1 for r in report["layers"])


def test_fill_and_shared_slots_in_the_report(capsys):
    """The report's fill (mapped weight column-rows / cells of the used crossbars) per layer, in the totals, the
    JSON and the text; shared slots never need more crossbars than one group per slot, and where they save some,
    fill rises and the row says so."""
    argv = ["map-report", "--net", "tiny", "--prune", "magnitude:ratio=0.9", "--mapping", "ou-sparse", "--xbar",
            "64x64", "--json", "--quiet"]
    reports = {}
    for slots in ("shared", "single"):
        assert run([*argv, "--slots", slots]) == 0
        reports[slots] = json.loads(capsys.readouterr().out)
        assert reports[slots]["settings"]["slots"] == slots
    saved = 0
    for shared, single in zip(reports["shared"]["layers"], reports["single"]["layers"]):
        assert shared["crossbars"] <= single["crossbars"] and single["slots"] == "single"
        for row in (shared, single):
            assert row["fill"] == row["mapped_cells"] / row["capacity_cells"] == pytest.approx(row["utilization"])
        if shared["crossbars"] < single["crossbars"]:
            saved += 1
            assert shared["slots"] == "shared" and shared["fill"] > single["fill"]
            assert shared["mapped_cells"] == single["mapped_cells"]
    assert saved, "shared slots saved no crossbar on a 90 %-pruned network: the test would not see them"
    t = reports["shared"]["totals"]
    assert t["fill"] == t["mapped_cells"] / t["capacity_cells"] > reports["single"]["totals"]["fill"]
    assert run(argv[:-2]) == 0
    out = capsys.readouterr().out
    assert "slots shared" in out and f"fill {t['fill']:.1%}" in out and " fill " in out.splitlines()[3]
    dense = map_report(net="tiny", strategy="dense", xbar=(64, 64))
    for row, layer in zip(dense["layers"], network("tiny")):
        if layer.kind != "dw":                                      # (depthwise: its block-diagonal chunks)
            assert row["mapped_cells"] == np.prod(layer.shape) * 8    # K · N · columns_per_output


@pytest.mark.parametrize("quant, bits", [("int4", 4), ("ternary", 2)])
def test_cli_narrow_weights(quant, bits, capsys):
    assert run(["map-report", "--net", "tiny", "--quant", quant, "--mapping", "bit-squeeze", "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["weight_bits"] == bits
    dense = map_report(net="tiny", quant=quant, strategy="dense")["totals"]
    assert report["totals"]["dense_crossbars"] == dense["crossbars"]
    assert report["totals"]["adc_conversions"] < dense["adc_conversions"]


@pytest.mark.parametrize("argv, message", [
    (["--net", "tiny", "--prune", "foo"], "--prune method 'foo' is not known"),
    (["--net", "tiny", "--mapping", "dense+ou-sparse"], "dense does not compose"),
    (["--net", "tiny", "--xbar", "128"], "--xbar '128' is not ROWSxCOLS"),
    (["--net", "tiny", "--ou", "200x8"], "CrossbarGeometry.ou_rows = 200 is out of range"),
    (["--net", "tiny", "--cell-bits", "3"], "CrossbarGeometry.cell_bits = 3 is not allowed"),
    (["--net", "tiny", "--quant", "int3"], "--quant 'int3' is not known"),
    (["--net", "tiny", "--round", "2"], "needs the bit-squeeze strategy"),
    (["--net", "nope"], "--net 'nope' is not known"),
    (["--weights", "/nonexistent.npz"], "no such file and no shipped weights of that name"),
    (["--net", "tiny", "--slots", "some"], "sparsegen: error: --slots = 'some' is not allowed: allowed 'shared', "
                                           "'single'\n"),
])
def test_cli_bad_options_exit_2(argv, message, capsys):
    assert run(["map-report", "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_user_npz(tmp_path, capsys, seed):
    rng = np.random.default_rng(seed)
    capsys.readouterr()                                                 # drop the seed fixture's line
    path = tmp_path / "mine.npz"
    np.savez(path, conv=rng.normal(size=(8, 4, 3, 3)), dw=rng.normal(size=(8, 1, 3, 3)), fc=rng.integers(-7, 8, size=(5, 8)),
             **{"conv.positions": np.array(100), "dw.positions": np.array(100), "dw.depthwise": np.array(1)})
    layers = load_npz(path)
    assert [(layer.name, layer.kind, layer.positions) for layer, _ in layers] == [
        ("conv", "conv", 100), ("dw", "dw", 100), ("fc", "fc", 1)]
    assert run(["map-report", "--weights", str(path), "--prune", "nm:2:4", "--mapping", "ou-sparse", "--json",
                "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["weight_source"] == "user .npz"
    assert [r["name"] for r in report["layers"]] == ["conv", "dw", "fc"]
    assert report["layers"][2]["nonzero_weights"] <= 5 * 4                 # 2:4 over K = 8
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((2, 3, 4)))
    assert run(["map-report", "--weights", str(bad), "--quiet"]) == 2
    assert "'x' has shape (2, 3, 4): allowed 2-D [out, in] or 4-D OIHW" in capsys.readouterr().err
    big = tmp_path / "big.npz"
    np.savez(big, fc=np.full((2, 2), 100))
    assert run(["map-report", "--weights", str(big), "--quant", "int4", "--quiet"]) == 2
    assert "integer weight [0, 0] = 100 does not fit --quant int4" in capsys.readouterr().err


def test_depthwise_chunks_are_block_diagonal():
    layer = next(layer for layer in network("mobilenetv2") if layer.kind == "dw")
    w = synthetic_weights(layer, seed=1)
    q = np.rint(w * 100).astype(np.int64)
    mats = layer_matrices(layer, q, xbar_rows=128, xbar_cols=128,
                          per_output=columns_per_output(weight_bits=8, cell_bits=2, encoding="differential"))
    chunk = min(128 // 9, 128 // 8)
    assert [m.shape for m in mats] == [(9 * min(chunk, layer.cout - c), min(chunk, layer.cout - c))
                                      for c in range(0, layer.cout, chunk)]
    x = np.random.default_rng(2).integers(-5, 5, size=(layer.cout, 9))     # per-channel 3×3 patches
    y = np.concatenate([x[c:c + chunk].reshape(-1) @ m for c, m in zip(range(0, layer.cout, chunk), mats)])
    np.testing.assert_array_equal(y, (x * q.reshape(layer.cout, 9)).sum(axis=1))


def test_synthetic_weights_are_seeded_laplacian():
    layer = network("resnet18")[5]
    a, b = synthetic_weights(layer, seed=4, index=5), synthetic_weights(layer, seed=4, index=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, synthetic_weights(layer, seed=5, index=5))
    flat = a.reshape(a.shape[0], -1) / a.reshape(a.shape[0], -1).std(axis=1, keepdims=True)
    kurtosis = (flat ** 4).mean()                                       # Laplace: 6, Gaussian: 3
    assert 5.0 < kurtosis < 7.0
    assert set(NETWORKS) == {"tiny", "vgg16", "resnet18", "resnet50", "mobilenetv2"}


def test_shipped_trained_cnn_maps_exactly(capsys):
    """The project's own trained int8 CNN: accurate on fresh images, and every layer maps exactly."""
    from gen.compiler.train_tiny import DATA, evaluate

    assert evaluate(DATA) >= 0.95
    layers = load_npz(DATA)
    assert [(layer.name, layer.kind, layer.positions) for layer, _ in layers] == [
        ("conv1", "conv", 144), ("conv2", "conv", 36), ("fc", "fc", 1)]
    rng = np.random.default_rng(0)
    for layer, w in layers:
        assert w.dtype == np.int8
        m = as_matrix(w).astype(np.int64)
        for strategy in ("dense", "kernel-reorder+bit-squeeze"):
            x = rng.integers(-128, 128, size=(3, m.shape[0]))
            np.testing.assert_array_equal(mvm(plan_layer(m, CrossbarGeometry(), strategy=strategy).mapping(), x), x @ m)
    assert run(["map-report", "--weights", str(DATA), "--prune", "magnitude:0.5", "--mapping", "bit-squeeze",
                "--quiet"]) == 0
    assert "user .npz" in capsys.readouterr().out


def test_tiny_cnn_gradients_match_finite_differences():
    from gen.compiler.train_tiny import loss_and_grads, bars

    rng = np.random.default_rng(1)
    params = {"conv1": rng.normal(0, 0.5, (8, 1, 3, 3)), "conv2": rng.normal(0, 0.2, (16, 8, 3, 3)),
              "fc": rng.normal(0, 0.3, (4, 16))}
    x, y = bars(5, 7)
    _, grads = loss_and_grads(params, x.astype(np.float64), y)
    for name in params:
        for index in [tuple(rng.integers(0, s) for s in params[name].shape) for _ in range(4)]:
            bumped = {k: v.copy() for k, v in params.items()}
            bumped[name][index] += 1e-6
            lo = {k: v.copy() for k, v in params.items()}
            lo[name][index] -= 1e-6
            numeric = (loss_and_grads(bumped, x.astype(np.float64), y)[0]
                       - loss_and_grads(lo, x.astype(np.float64), y)[0]) / 2e-6
            assert grads[name][index] == pytest.approx(numeric, rel=1e-4, abs=1e-7), (name, index)
