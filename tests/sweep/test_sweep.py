"""`sparsegen sweep`: a 12-point sweep (perf + map on every point, one tiny synth without P&R) on a 2-worker
LocalCluster: its table, cache counters and Pareto front, and the report re-rendered; failures (a crashing stage,
timeouts, a killed worker, Ctrl-C and resuming), the rtl stage, and the spec's validation."""

import csv
import itertools
import json
import random

import pytest

from gen.cli import main
from gen.config import load_config
from gen.gemm import perf
from gen.synth.flow import tools_available
from gen.sweep.results import dominates, pareto_front, parse_objectives
from gen.sweep.spec import expand, load_spec
from sim.sweep import run as engine

pytest.importorskip("distributed", reason="install the sweep extra: pip install 'sparsegen[sweep]' (make does)")

SPEC = {
    "name": "t12",
    "base": "gemm_4x4_2of4",
    # small maxima keep the one synthesized engine small
    "set": {"cols": 2, "max_k": 16, "max_n": 8},
    "axes": {"rows": [2, 4], "keep": [1, 2, 5], "max_m": [16, 64]},
    # M = 32 is beyond max_m = 16: perf fails on those points, the other stages must not
    "workloads": [{"gemm": [32, 16, 8]}, {"net": "tiny"}],
    "stages": ["perf", "map", "synth"],
    "synth": {"pnr": False, "where": {"rows": 2, "keep": 1, "max_m": 16}},
    "pareto": ["cycles", "multipliers"],
}


def _brute_front(rows, objectives):
    ok = [r for r in rows if r["status"] != "invalid" and all(isinstance(r.get(n), (int, float)) for n, _ in objectives)]
    return sorted(r["point"] for r in ok if not any(dominates(o, r, objectives) for o in ok if o is not r))


def test_sweep_on_two_workers(tmp_path, capsys):
    """One test, so that pytest-xdist runs the sweep once: cold, then again from the cache, then the report."""
    if not tools_available()[0]:
        pytest.skip(tools_available()[1])
    kw = dict(workers=2, out_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    first = engine.run_sweep(SPEC, **kw)
    second = engine.run_sweep(SPEC, **kw)
    _check_table(first)
    _check_cache(first, second)
    _check_pareto(first)
    _check_report(first, tmp_path / "report", capsys)


def _check_table(first):
    points = expand(load_spec(SPEC))
    assert first["points"] == len(points) == 12 and first["workers"] == 2
    with open(first["table"], newline="") as file:
        table = list(csv.DictReader(file))
    assert [r["point"] for r in table] == [p.id for p in points]
    assert [(int(r["rows"]), int(r["keep"]), int(r["max_m"])) for r in table] == \
        list(itertools.product([2, 4], [1, 2, 5], [16, 64]))
    data = json.loads(open(first["json"]).read())
    assert [r["point"] for r in data["rows"]] == [p.id for p in points]
    by = {(r["rows"], r["keep"], r["max_m"]): r for r in data["rows"]}
    for (rows, keep, max_m), r in by.items():
        if keep == 5:
            assert r["status"] == "invalid" and "GemmConfig.keep = 5 is out of range" in r["error"], r
            continue
        # map finished everywhere, perf only where the GEMM fits max_m
        assert r["map_crossbars"] > 0 and r["map_energy_pj"] > 0
        cfg = load_config("gemm_4x4_2of4", SPEC["set"] | {"rows": rows, "keep": keep, "max_m": max_m})
        if max_m == 16:
            assert r["status"] == "error" and r["error"].startswith("perf: ") and "max_m" in r["error"], r
            assert "cycles" not in r
        else:
            assert r["status"] == "ok", r
            assert r["cycles"] == perf.job_cycles(cfg, 32, 16, 8)          # the cycle model's own figure
            assert r["utilization"] == pytest.approx(perf.utilization(cfg, 32, 16, 8))
            assert r["multipliers"] == cfg.multipliers
    synthesized = [r for r in data["rows"] if "area" in r]
    assert [(r["rows"], r["keep"], r["max_m"]) for r in synthesized] == [(2, 1, 16)]
    assert synthesized[0]["area"] == synthesized[0]["lut4"] + 2 * synthesized[0]["carry"] > 0
    assert "fmax_mhz" not in synthesized[0]              # pnr = false
    assert all(p.endswith((".png", ".pdf")) and open(p, "rb").read(4) in (b"\x89PNG", b"%PDF")
               for p in first["plots"]) and len(first["plots"]) == 2 * (1 + 3)


def _check_cache(first, second):
    # one map for all points (the network maps the same onto every array), one synth, perf per valid point
    assert first["cache"]["computed"] == {"validate": 8, "perf": 8, "map": 1, "synth": 1}
    assert first["cache"]["hits"] == {}
    assert second["cache"]["computed"] == {} and second["cache"]["misses"] == {} and second["submitted"] == 0
    assert second["cache"]["hits"] == {"validate": 8, "perf": 8, "map": 8, "synth": 1}
    assert second["rows"] == first["rows"] or [
        {k: v for k, v in r.items() if not k.endswith("_s")} for r in second["rows"]] == [
        {k: v for k, v in r.items() if not k.endswith("_s")} for r in first["rows"]]


def _check_pareto(first):
    objectives = parse_objectives(SPEC["pareto"])
    assert sorted(p["point"] for p in first["pareto"]["points"]) == _brute_front(first["rows"], objectives)
    assert first["pareto"]["points"]


def _check_report(first, tmp_path, capsys):
    capsys.readouterr()
    assert main(["sweep", "--report", first["json"], "--pareto", "cycles,max:utilization", "--out",
                 str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    objectives = parse_objectives("cycles,max:utilization")
    assert sorted(p["point"] for p in out["pareto"]["points"]) == _brute_front(first["rows"], objectives)
    assert (tmp_path / "t12.csv").is_file() and (tmp_path / "pareto.png").is_file()


def _die_once(config, workloads, options, *, work_dir):
    """A stage whose first attempt kills its worker process (as an out-of-memory kill would)."""
    import os
    from pathlib import Path

    marker = Path(work_dir) / "died"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("once")
        os._exit(1)
    return {"survived": 1}


def test_dead_worker_is_replaced_and_its_point_retried(tmp_path):
    """On a running cluster (--scheduler): each point's first attempt kills its worker; the cluster restarts the
    worker, Dask reruns the point, and every point finishes."""
    import logging
    import sys

    import cloudpickle
    from distributed import LocalCluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])    # the workers cannot import this test module
    spec = {"name": "die", "base": "gemm_4x4_2of4", "axes": {"rows": [2, 4]}, "stages": ["perf"],
            "workloads": [{"gemm": [8, 8, 8]}]}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster:
        got = engine.run_sweep(spec, scheduler=cluster.scheduler_address, out_dir=tmp_path / "o",
                               cache_dir=tmp_path / "c", plots=False, runners={"perf": _die_once})
    assert got["engine"].startswith("scheduler tcp://") and got["ok"] == 2, got["rows"]
    assert [r["survived"] for r in got["rows"]] == [1, 1]
    assert all((tmp_path / "o" / "points" / r["point"] / "perf" / "died").is_file() for r in got["rows"])


def test_serial_run_and_failures_are_recorded(tmp_path, monkeypatch):
    """workers=0 (no Dask): a stage that crashes is recorded, not cached, and the other stages finish; a stage
    past its timeout is recorded."""
    spec = SPEC | {"stages": ["perf", "map"]}
    spec.pop("synth")

    def crash(config, workloads, options, *, work_dir=None):
        raise RuntimeError("tool crashed")

    monkeypatch.setitem(engine.STAGE_RUNNERS, "map", crash)
    got = engine.run_sweep(spec, workers=0, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", plots=False)
    assert got["engine"] == "serial" and got["cache"]["stored"].get("map") is None
    assert [r["point"] for r in got["rows"]] == [p.id for p in expand(load_spec(SPEC))]
    for a in got["rows"]:
        if a.get("max_m") == 64 and a["status"] != "invalid":
            cfg = load_config("gemm_4x4_2of4", SPEC["set"] | {k: a[k] for k in ("rows", "keep", "max_m")})
            assert a["cycles"] == perf.job_cycles(cfg, 32, 16, 8)
        if a["status"] != "invalid":
            assert "map: RuntimeError: tool crashed" in a["error"] and a["status"] == "error"
    monkeypatch.undo()

    def slow(config, workloads, options, *, work_dir=None):
        import time
        time.sleep(30)          # abandoned in its daemon thread
        return {}

    monkeypatch.setitem(engine.STAGE_RUNNERS, "map", slow)
    got = engine.run_sweep(spec | {"axes": {"rows": [2]}, "map": {"timeout": 0.5}}, workers=0,
                           out_dir=tmp_path / "o2", cache_dir=tmp_path / "c", plots=False)
    [row] = got["rows"]
    assert "map: StageTimeout: timed out after 0.5 s" in row["error"] and row["cycles"] > 0
    assert got["cache"]["stored"].get("map") is None


def test_interrupted_sweep_resumes(tmp_path, monkeypatch):
    """Ctrl-C in the middle: the cache holds complete entries only, and a re-run computes just the rest."""
    spec = SPEC | {"stages": ["perf"], "workloads": [{"gemm": [8, 16, 8]}]}
    spec.pop("synth")
    calls = []
    real = engine.STAGE_RUNNERS["perf"]

    def interrupted(config, workloads, options, *, work_dir=None):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(config, workloads, options, work_dir=work_dir)

    monkeypatch.setitem(engine.STAGE_RUNNERS, "perf", interrupted)
    kw = dict(workers=0, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", plots=False)
    with pytest.raises(KeyboardInterrupt):
        engine.run_sweep(spec, **kw)
    entries = list((tmp_path / "c" / "perf").glob("*"))
    assert len(entries) == 3 and all(json.loads(p.read_text())["ok"] for p in entries)
    partial = json.loads((tmp_path / "o" / "t12.json").read_text())
    assert sum(r["status"] == "ok" for r in partial["rows"]) == 3
    monkeypatch.undo()
    again = engine.run_sweep(spec, **kw)
    assert again["cache"]["hits"]["perf"] == 3 and again["cache"]["computed"]["perf"] == 5
    assert again["ok"] == 8 and again["invalid"] == 4


@pytest.mark.parametrize("change, message", [
    ({"axes": {"rows": [2, 200]}}, "axes.rows: GemmConfig.rows = 200 is out of range: allowed 1 … 128"),
    ({"axes": {"rows": [2, "two"]}}, "cannot parse 'two' for GemmConfig.rows"),
    ({"axes": {"dataflow": ["ws", "xs"]}}, "GemmConfig.dataflow = 'xs' is not allowed: allowed 'ws', 'os'"),
    ({"axes": {"ou_rows": [9]}}, "axes.ou_rows is not a field of GemmConfig"),
    ({"stages": ["perf", "place"]}, "stages = 'place' is not allowed"),
    ({"pareto": ["cycles", "beauty"]}, "pareto = 'beauty' is not a known metric"),
    ({"pareto": ["map_crossbars", "cycles"], "stages": ["perf", "synth"]},
     "pareto: 'map_crossbars' comes from stage 'map', which is not in stages"),
    ({"workloads": [{"gemm": [1, 2]}]}, "workloads[0].gemm = [1, 2] is not M,K,N"),
    ({"workloads": [{"net": "alexnet"}, {"gemm": [8, 8, 8]}]}, "workloads[0].net = 'alexnet' is not allowed"),
    ({"synth": {"pnr": False, "where": {"cols": 2}}}, "synth.where names 'cols', which is not an axis"),
    ({"synth": {"pnr": "no"}}, "synth.pnr = 'no' is a str, not a bool"),
    ({"base": "gemm_9x9"}, "unknown preset 'gemm_9x9'"),
    ({"colour": "red"}, "unknown key(s) 'colour'"),
    ({"name": "../up"}, "name = '../up' is not a file name"),
])
def test_bad_spec_is_one_line_error(tmp_path, capsys, change, message):
    spec = SPEC | change
    path = tmp_path / "bad.toml"
    path.write_text(_toml(spec))
    assert main(["sweep", "--spec", str(path), "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparsegen: error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


def _toml(spec):
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return str(v)

    lines, tables = [], []
    for key, v in spec.items():
        if key == "workloads":
            tables += ["[[workloads]]\n" + "\n".join(f"{k} = {value(x)}" for k, x in w.items()) for w in v]
        elif isinstance(v, dict):
            tables.append(f"[{key}]\n" + "\n".join(f"{k} = {value(x)}" for k, x in v.items()))
        else:
            lines.append(f"{key} = {value(v)}")
    return "\n".join(lines) + "\n\n" + "\n\n".join(tables) + "\n"


def test_pareto_front_random(seed):
    rng = random.Random(seed)
    for _ in range(50):
        # an invalid point never competes; one without a metric (its stage failed) only on the metrics it has
        rows = [{"point": str(i), "status": rng.choice(["ok", "ok", "ok", "error", "invalid"]),
                 "a": rng.randint(0, 6), "b": rng.choice([None, *range(7)]), "c": rng.random()}
                for i in range(rng.randint(0, 30))]
        for objectives in (parse_objectives("min:a,min:b"), parse_objectives("min:a,max:b,min:c")):
            assert sorted(r["point"] for r in pareto_front(rows, objectives)) == _brute_front(rows, objectives)


def test_rtl_stage_runs_cocotb(tmp_path):
    """The rtl stage: the design's short cocotb test on Icarus (fast to build) passes; a test that does not
    exist is a recorded error, not an exception."""
    from sim.common.runner import simulator_available

    if not simulator_available("icarus")[0]:
        pytest.skip(simulator_available("icarus")[1])
    spec = {"name": "rtl", "base": "dense_4x4", "set": {"cols": 2}, "axes": {"rows": [2]}, "stages": ["rtl"],
            "rtl": {"sim": "icarus"}}
    [row] = engine.run_sweep(spec, workers=0, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", plots=False)["rows"]
    assert row["status"] == "ok" and row["rtl_tests"] == 1 and row["rtl_failed"] == 0, row
    spec["rtl"] = {"sim": "icarus", "testcase": "no_such_test"}
    got = engine.run_sweep(spec, workers=0, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", plots=False)
    [row] = got["rows"]
    assert row["status"] == "error" and row["error"].startswith("rtl: ") and "rtl_tests" not in row, row


def test_spec_file_names_the_sweep(tmp_path):
    path = tmp_path / "my_sweep.toml"
    spec = {k: v for k, v in SPEC.items() if k != "name"}
    path.write_text(_toml(spec))
    loaded = load_spec(path)
    assert loaded.name == "my_sweep" and loaded.fixed == SPEC["set"] and list(loaded.axes) == ["rows", "keep", "max_m"]
    assert loaded.pareto == (("cycles", "min"), ("multipliers", "min"))
    assert load_spec(path, pareto="area,max:utilization").pareto == (("area", "min"), ("utilization", "max"))


def test_synth_timeout_is_recorded_and_not_cached(tmp_path, monkeypatch):
    """A tool that passes the stage's timeout is killed by the flow; the point records it, the cache keeps
    nothing for it."""
    if not tools_available()[0]:
        pytest.skip(tools_available()[1])
    monkeypatch.setenv("SPARSEGEN_BUILD", str(tmp_path / "build"))     # no synthesis result cached from before
    spec = {"name": "slow", "base": "dense_4x4", "set": {"rows": 2, "cols": 2}, "stages": ["synth"],
            "synth": {"pnr": False, "timeout": 0.001}}
    got = engine.run_sweep(spec, workers=0, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", plots=False)
    [row] = got["rows"]
    assert row["status"] == "error" and "SynthError: yosys timed out after 0.001 s" in row["error"], row
    assert got["cache"]["computed"] == {"validate": 1, "synth": 1} and "synth" not in got["cache"]["stored"]


def test_map_of_shipped_weights_equals_map_report(tmp_path):
    """An npz workload goes through the compiler's report unchanged (the figures `map-report --weights` prints)."""
    from gen.compiler.report import map_report

    spec = {"name": "bars", "base": "rram_32x32_c2_small", "axes": {"ou_rows": [4, 8]}, "stages": ["map"],
            "workloads": [{"npz": "bars"}], "map": {"prune": "nm:2:4"}}
    got = engine.run_sweep(spec, workers=0, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", plots=False)
    for row in got["rows"]:
        cfg = load_config("rram_32x32_c2_small", {"ou_rows": row["ou_rows"]})
        totals = map_report(weights="bars", prune="nm:2:4", xbar=(32, 32), ou=(row["ou_rows"], cfg.ou_cols),
                            cell_bits=cfg.cell_bits, input_bits=cfg.input_bits, dac_bits=cfg.dac_bits,
                            adc_bits=cfg.adc_bits)["totals"]
        assert row["status"] == "ok" and row["map_crossbars"] == totals["crossbars"] > 0
        assert row["map_cycles"] == totals["cycles"] and row["map_energy_pj"] == pytest.approx(totals["energy_pj"])
    assert got["cache"]["computed"]["map"] == 2      # the OU shape changes the mapping: no sharing


def test_onnx_and_network_workloads(tmp_path):
    """An ONNX model and a built-in network as workloads: `perf` on a GEMM engine gives `perf --onnx`/`--net`'s
    totals per point, `map` gives `map-report --onnx`'s; a malformed model fails the spec before any work."""
    from gen.compiler.onnx_examples import save, tiny_cnn
    from gen.compiler.report import map_report
    from gen.gemm.cli import dense_twin, network_layers, network_table

    model = save(tiny_cnn(seed=3), tmp_path / "cnn.onnx")
    spec = {"name": "nets", "base": "gemm_4x4_2of4", "axes": {"max_m": [16, 64]}, "stages": ["perf", "map"],
            "workloads": [{"onnx": str(model), "name": "cnn"}, {"net": "tiny"}], "perf": {"networks": True}}
    got = engine.run_sweep(spec, workers=0, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", plots=False)
    assert len(got["rows"]) == 2
    onnx_map = map_report(onnx=str(model))["totals"]
    tiny_map = map_report(net="tiny")["totals"]
    for row in got["rows"]:
        cfg = load_config("gemm_4x4_2of4", {"max_m": row["max_m"]})
        want = {name: network_table(cfg, dense_twin(cfg), network_layers(**source)[1])["totals"]
                for name, source in (("cnn", {"onnx": str(model)}), ("tiny", {"net": "tiny"}))}
        assert row["status"] == "ok", row
        assert row["cycles.cnn"] == want["cnn"]["cycles"] and row["cycles.tiny"] == want["tiny"]["cycles"]
        assert row["cycles"] == want["cnn"]["cycles"] + want["tiny"]["cycles"]
        assert row["a_bytes"] == pytest.approx(want["cnn"]["a_bytes"] + want["tiny"]["a_bytes"])
        assert row["map_crossbars"] == onnx_map["crossbars"] + tiny_map["crossbars"]
    # max_m changes the job split: perf differs per point, map is shared (same networks, same mapping)
    assert got["cache"]["computed"]["perf"] == 2 and got["cache"]["computed"]["map"] == 1
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    path = tmp_path / "bad.toml"
    path.write_text(_toml({**spec, "workloads": [{"onnx": str(bad)}]}))
    assert main(["sweep", "--spec", str(path), "--workers", "0", "--out", str(tmp_path / "o2"), "--no-plots"]) == 2
    assert not (tmp_path / "o2").exists()
    # without perf.networks the networks are map's only, and perf wants a GEMM shape
    path.write_text(_toml({k: v for k, v in spec.items() if k != "perf"}))
    assert main(["sweep", "--spec", str(path), "--workers", "0", "--out", str(tmp_path / "o3"), "--no-plots"]) == 2
    assert not (tmp_path / "o3").exists()


def test_rram_perf_is_the_tile_cycle_model(tmp_path):
    """`perf` on RRAM tile points: each GEMM workload M×K×N is M vectors streamed through a dense K×N layer on the
    tile, its cycles the tile's stream schedule (gen.rram.perf, asserted = RTL in tests/rram); fewer ADCs per
    crossbar cost cycles; a layer larger than the tile fails its point with the limit it exceeds."""
    from gen.rram import perf as rram_perf
    from gen.rram.layer import dense_layer_weights, map_layer

    spec = {"name": "tile", "base": "rram_32x32_c2_small", "axes": {"adcs_per_xbar": [1, 2]}, "stages": ["perf"],
            "workloads": [{"gemm": [5, 32, 4], "name": "fc"}, {"gemm": [1, 20, 2], "name": "small"}]}
    got = engine.run_sweep(spec, workers=0, out_dir=tmp_path / "o", cache_dir=tmp_path / "c", plots=False)
    rows = {row["adcs_per_xbar"]: row for row in got["rows"]}
    for adcs, row in rows.items():
        cfg = load_config("rram_32x32_c2_small", {"adcs_per_xbar": adcs})
        want = {}
        for name, (m, k, n) in (("fc", (5, 32, 4)), ("small", (1, 20, 2))):
            mapping = map_layer(cfg, dense_layer_weights(cfg, k, n))
            sched = rram_perf.stream_schedule(cfg, mapping, m)
            want[name] = sched[-1][1] - sched[0][0] + 1
            assert want[name] >= rram_perf.limit_cycles(cfg, mapping)
        assert row["status"] == "ok", row
        assert row["cycles.fc"] == want["fc"] and row["cycles.small"] == want["small"]
        assert row["cycles"] == want["fc"] + want["small"] and 0 < row["utilization"] <= 1
    assert rows[1]["cycles"] > rows[2]["cycles"]
    big = {**spec, "name": "big", "axes": {"adcs_per_xbar": [2]}, "workloads": [{"gemm": [2, 300, 4]}]}
    got = engine.run_sweep(big, workers=0, out_dir=tmp_path / "o2", cache_dir=tmp_path / "c2", plots=False)
    (row,) = got["rows"]
    assert row["status"] != "ok" and "needs" in row["error"] and "the tile holds" in row["error"], row
