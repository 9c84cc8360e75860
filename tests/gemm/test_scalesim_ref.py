"""SCALE-Sim v3 reference harness (sim.ref.scalesim): its closed form against real SCALE-Sim runs.

The runs need the SCALE-Sim venv (build/scalesim-venv, created on first use); they are skipped only when pip
cannot reach the package index to create it, and fail on any other installation error.
"""

import random

import pytest

from sim.ref.scalesim import (ScaleSimUnavailable, conv_to_gemm, ensure_venv, formula_cycles, kept_k,
                              parse_sparsity, run_scalesim, run_scalesim_conv, scalesim_conv_output_pixels)


@pytest.fixture(scope="module")
def scalesim_venv():
    try:
        return ensure_venv()
    except ScaleSimUnavailable as e:
        if e.network:
            pytest.skip(f"SCALE-Sim venv unavailable (pip cannot reach the package index): {e}")
        raise


def random_gemms(seed, count):
    rng = random.Random(seed)
    return [(rng.randint(1, 40), rng.randint(1, 40), rng.randint(1, 40)) for _ in range(count)]


# Edge shapes: one fold, exact multiples of the array, one past a multiple, K shorter than a sparsity block,
# and shapes asymmetric in K and N (OS folds depend on N only, its per-fold time on K only).
EDGE_GEMMS = [(1, 1, 1), (8, 8, 8), (9, 17, 7), (37, 13, 21), (5, 70, 3), (64, 64, 64), (3, 2, 30)]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("rows, cols", [(8, 8), (4, 6)])
@pytest.mark.parametrize("sparsity", [None, "2:4", "1:4", "3:8"])
def test_formula_matches_scalesim(scalesim_venv, seed, dataflow, rows, cols, sparsity):
    gemms = EDGE_GEMMS + random_gemms(seed, 5)
    results = run_scalesim(dataflow, rows, cols, gemms, sparsity=sparsity, memory=False)
    assert len(results) == len(gemms)
    for (m, k, n), r in zip(gemms, results):
        assert (r["M"], r["K"], r["N"], r["dataflow"], r["sparsity"]) == (m, k, n, dataflow, sparsity)
        want = formula_cycles(dataflow, rows, cols, m, k, n, sparsity=sparsity)
        assert r["compute_cycles"] == want == r["formula"], (m, k, n)
        # SCALE-Sim's utilization: dense MACs over cycles x PEs (its definition, also under sparsity)
        assert r["utilization"] == pytest.approx(m * k * n / (want * rows * cols))


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("sparsity", [None, "2:4"])
def test_full_run_matches_compute_only(scalesim_venv, dataflow, sparsity):
    """The full simulator (memory model included) reports the same compute cycles, without stalls."""
    gemms = [(64, 64, 64), (9, 17, 7), (37, 13, 21)]
    full = run_scalesim(dataflow, 4, 6, gemms, sparsity=sparsity)
    fast = run_scalesim(dataflow, 4, 6, gemms, sparsity=sparsity, memory=False)
    assert len(full) == len(fast) == len(gemms)
    for f, c, (m, k, n) in zip(full, fast, gemms):
        assert f["compute_cycles"] == c["compute_cycles"] == formula_cycles(dataflow, 4, 6, m, k, n,
                                                                            sparsity=sparsity)
        assert f["stall_cycles"] == 0
        assert f["total_cycles"] > f["compute_cycles"]          # DRAM prefetch and write-back come on top
        for key in ("utilization", "mapping_efficiency", "compute_utilization"):
            assert f[key] == pytest.approx(c[key]), key
        if sparsity:
            assert any(key.startswith("sparse: ") for key in f["scalesim"])
        assert c["total_cycles"] is None and c["stall_cycles"] is None
        # DRAM words (sim/bench/traffic.py): its SRAMs hold everything, so dense A and W are read at least once
        # each (its N:M mode reads a compressed K)
        dram = f["dram"]
        assert min(dram.values()) > 0 and dram["ofmap_writes"] >= m * n and c["dram"] is None
        if not sparsity:
            assert dram["ifmap_reads"] >= m * k and dram["filter_reads"] >= k * n


# (H, W, C_in, C_out, kh, kw, stride, padding): stride dividing the padded extent or not
CONVS = [(9, 7, 3, 5, 3, 3, 1, 1), (11, 11, 4, 6, 5, 5, 2, 2), (11, 10, 4, 6, 5, 5, 2, 2), (8, 8, 16, 9, 1, 1, 2, 0),
         (7, 9, 2, 3, 3, 1, 1, 0), (9, 9, 3, 4, 3, 3, 2, 1)]


@pytest.mark.parametrize("dataflow", ["ws", "os"])
@pytest.mark.parametrize("sparsity", [None, "2:4"])
def test_conv_lowering_against_scalesim_conv_mode(scalesim_venv, dataflow, sparsity):
    """SCALE-Sim's own im2col gives our (M, K, N) whenever the stride divides the padded extent; otherwise
    it counts one more output row/column (scalesim_conv_output_pixels), and its cycles follow that count."""
    conv = run_scalesim_conv(dataflow, 4, 6, CONVS, sparsity=sparsity, memory=False)
    gemm = run_scalesim(dataflow, 4, 6, [conv_to_gemm(*c) for c in CONVS], sparsity=sparsity, memory=False)
    assert len(conv) == len(gemm) == len(CONVS)
    for (h, w, ci, co, kh, kw, s, p), c, g in zip(CONVS, conv, gemm):
        m, k, n = conv_to_gemm(h, w, ci, co, kh, kw, s, p)
        exact = (h + 2 * p - kh) % s == 0 and (w + 2 * p - kw) % s == 0
        assert (c["M"], c["K"], c["N"]) == (m, k, n)
        assert (c["scalesim_M"] == m) == exact
        assert c["compute_cycles"] == c["formula"] == formula_cycles(dataflow, 4, 6, c["scalesim_M"], k, n,
                                                                       sparsity=sparsity)
        if exact:
            assert c["compute_cycles"] == g["compute_cycles"]


def test_scalesim_conv_output_size_rounds_up():
    assert scalesim_conv_output_pixels(224, 224, 7, 7, 2, 3) == 113 * 113      # a framework gives 112 x 112
    assert scalesim_conv_output_pixels(56, 56, 1, 1, 2, 0) == 29 * 29         # 28 x 28
    assert scalesim_conv_output_pixels(56, 56, 3, 3, 1, 1) == 56 * 56


def test_formula_known_values():
    # 64x64x64 on 8x8: 64 folds of 2*8 + 8 + 64 - 2 = 86 (WS) or 64 + 8 + 8 - 2 = 78 (OS) cycles
    assert formula_cycles("ws", 8, 8, 64, 64, 64) == 64 * 86 - 1
    assert formula_cycles("os", 8, 8, 64, 64, 64) == 64 * 78 - 1
    assert formula_cycles("ws", 8, 8, 64, 64, 64, sparsity="2:4") == 32 * 86 - 1
    assert formula_cycles("os", 8, 8, 64, 64, 64, sparsity=(1, 4)) == 64 * 30 - 1
    # OS per-fold time follows K, WS fold count follows K and N: swapping K and N changes OS only
    assert formula_cycles("ws", 8, 8, 10, 30, 9) == formula_cycles("ws", 8, 8, 10, 9, 30)
    assert formula_cycles("os", 8, 8, 10, 30, 9) != formula_cycles("os", 8, 8, 10, 9, 30)


@pytest.mark.parametrize("k", range(1, 20))
@pytest.mark.parametrize("n, m", [(1, 4), (2, 4), (3, 8), (4, 4)])
def test_kept_k_counts_the_fixed_pattern(k, n, m):
    assert kept_k(k, n, m) == sum(1 for row in range(k) if row % m < n)


def test_conv_to_gemm():
    assert conv_to_gemm(224, 224, 3, 64, 7, 7, 2, 3) == (112 * 112, 147, 64)
    assert conv_to_gemm(14, 14, 256, 256, 3, 3, 1, 1) == (196, 2304, 256)


@pytest.mark.parametrize("args, kwargs, match", [
    (("is", 8, 8, 4, 4, 4), {}, "dataflow"),
    (("ws", 0, 8, 4, 4, 4), {}, "rows"),
    (("os", 8, 8, 4, 0, 4), {}, "K"),
    (("ws", 8, 8, 4, 4, 4), {"sparsity": "4:2"}, "1 <= n <= m"),
    (("ws", 8, 8, 4, 4, 4), {"sparsity": "2of4"}, "sparsity must be"),
])
def test_formula_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        formula_cycles(*args, **kwargs)


@pytest.mark.parametrize("args, match", [
    (("ws", 8, 8, []), "at least one"),
    (("ws", 8, 8, [(4, 4)]), r"\(M, K, N\)"),
    (("xs", 8, 8, [(4, 4, 4)]), "dataflow"),
    (("ws", 8, 8, [(4, 4, 4.5)]), "N must be"),
])
def test_run_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        run_scalesim(*args)


@pytest.mark.slow
def test_unreachable_index_is_a_network_failure(tmp_path, monkeypatch):
    """The condition under which the SCALE-Sim tests skip rather than fail."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")     # nothing listens on port 9
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    with pytest.raises(ScaleSimUnavailable, match="SCALE-Sim venv unavailable.*index is unreachable") as info:
        ensure_venv(tmp_path / "venv")
    assert info.value.network
    assert not (tmp_path / "venv" / ".sparsegen-scalesim-ok").exists()


def test_parse_sparsity():
    assert parse_sparsity(None) is None
    assert parse_sparsity("2:4") == (2, 4)
    assert parse_sparsity((1, 8)) == (1, 8)
    with pytest.raises(ValueError, match="1 <= n <= m"):
        parse_sparsity("0:4")


# --- bench section: the "ours" hook and its table --------------------------------------------------------

def test_ours_config_has_scalesims_multipliers_and_density():
    from sim.bench.scalesim import ours_config, ours_cycles
    from gen.gemm import perf

    for sp, block in ((None, 1), ("2:4", 2), ("1:4", 4), ("1:8", 8)):
        for df in ("ws", "os"):
            cfg = ours_config(df, 8, 8, sp, 64, 96, 40)
            assert (cfg.multipliers, cfg.keep, cfg.block, cfg.dataflow) == (64, 1, block, df)
            assert ours_cycles(df, 8, 8, sp, 64, 96, 40) == perf.job_cycles(cfg, 64, 96, 40)
    with pytest.raises(ValueError, match="m/n must be an integer"):
        ours_config("ws", 8, 8, "3:8", 4, 4, 4)


def _bench_rows(ours, rtl=None):
    """ours: {(dataflow, tag): cycles}; missing entries use the formula (ratio 1)."""
    runs = {}
    for df in ("ws", "os"):
        for sp in (None, "2:4", "1:4"):
            f = formula_cycles(df, 8, 8, 64, 64, 64, sparsity=sp)
            runs[f"{df} {sp or 'dense'}"] = {"compute_cycles": f, "total_cycles": None, "utilization": 1.0,
                                             "formula": f}
            runs[f"ours {df} {sp or 'dense'}"] = ours.get((df, sp or "dense"), f)
    row = {"shape": "gemm 64x64x64", "M": 64, "K": 64, "N": 64, "array": "8x8", "runs": runs}
    if rtl is not None:
        row["rtl"] = {"dense": rtl}
    return [row]


def test_bench_report(capsys):
    from sim.bench.scalesim import TARGET, report
    dense_ws = formula_cycles("ws", 8, 8, 64, 64, 64)
    fast = int(dense_ws * TARGET)
    assert report(_bench_rows({("ws", "dense"): fast})) is True
    assert f"= {fast / dense_ws:.3f} <= {TARGET}: met" in capsys.readouterr().out
    assert report(_bench_rows({("ws", "dense"): fast + 1})) is False
    assert "MISSED" in capsys.readouterr().out
    # RTL cycles must equal the model's
    assert report(_bench_rows({("ws", "dense"): fast, ("os", "dense"): 7}, rtl={"ws": fast, "os": 7})) is True
    assert "RTL=model" in capsys.readouterr().out
    assert report(_bench_rows({("ws", "dense"): fast, ("os", "dense"): 7}, rtl={"ws": fast, "os": 8})) is False
    assert "RTL!=MODEL" in capsys.readouterr().out
    rows = _bench_rows({("ws", "dense"): fast})
    rows[0]["runs"]["os 2:4"]["compute_cycles"] += 1
    assert report(rows) is False
    assert "MISMATCH" in capsys.readouterr().out
