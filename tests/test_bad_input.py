"""Bad input to every public entry point: a clean one-line error naming the argument, the value and what is allowed
(``TypeError`` for a wrong type, ``ValueError`` for a bad value; CLI exit 2 with ``sparsegen: error: …``), never a
traceback and never a silently wrong answer. One regression test per problem found by trying the project as a new
user; the random versions are in ``test_bad_input_props.py``."""

import dataclasses
import json

import numpy as np
import pytest

import gen
from gen.cli import main
from gen.config import load_config
from gen.systolic.config import SystolicConfig
from gen.gemm.config import GemmConfig
from gen.rram.config import RramTileConfig

GEMM = GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=20, max_m=9, max_k=16, max_n=7)


def cli_error(capsys, argv):
    """Run the CLI in-process; assert exit 2 with one error line and no traceback; return that line."""
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsegen: error: "), err
    return lines[0]


def job(m=3, k=8, n=5):
    """A valid (A, W) job for GEMM: 2:4 weights (two non-zeros in every K-block of four)."""
    A = np.arange(m * k).reshape(m, k) % 7 - 3
    W = np.zeros((k, n), np.int64)
    W[0::4], W[2::4] = 5, -6
    return A, W


# ---- 1. the GEMM golden model checks what the engine and its driver check ------------------------------------

@pytest.mark.parametrize("fn", ["gemm_engine", "mac_counts", "plan_gemm"])
@pytest.mark.parametrize("make, exc, pattern", [
    (lambda A, W: (A[:, :6], W), ValueError, r"^W = array of shape \(8, 5\) has 8 rows: allowed 6 \(A is 3×6"),
    (lambda A, W: (np.where(np.arange(8) == 1, 1000, A), W), ValueError,
     r"^A\[0, 1\] = 1000 is out of range: allowed 8-bit signed integers -128 … 127"),
    (lambda A, W: (A, W * 100), ValueError, r"^W\[0, 0\] = 500 is out of range: allowed 8-bit signed"),
    (lambda A, W: (np.zeros((10, 8), int), W), ValueError, r"^M = 10 is out of range for \S+: allowed 1 … 9 \(max_m\)"),
    (lambda A, W: job(3, 20, 5), ValueError, r"^K = 20 is out of range for \S+: allowed 1 … 16 \(max_k\)"),
    (lambda A, W: job(3, 8, 8), ValueError, r"^N = 8 is out of range for \S+: allowed 1 … 7 \(max_n\)"),
    (lambda A, W: (A + 0.5, W), TypeError, r"^A = array of dtype float64 is not integer"),
    (lambda A, W: (A[0], W), ValueError, r"^A = array of shape \(8,\) has 1 dimension\(s\): allowed 2"),
])
def test_gemm_job_checks(fn, make, exc, pattern):
    from sim.gemm.driver import plan_gemm
    from sim.gemm import golden

    call = {"gemm_engine": golden.gemm_engine, "mac_counts": golden.mac_counts, "plan_gemm": plan_gemm}[fn]
    A, W = make(*job())
    with pytest.raises(exc, match=pattern):
        call(GEMM, A, W)


def test_golden_and_driver_share_one_message():
    from sim.gemm.driver import plan_gemm
    from sim.gemm import golden

    A, W = job()
    messages = set()
    for call in (golden.gemm_engine, golden.mac_counts, plan_gemm):
        with pytest.raises(ValueError) as error:
            call(GEMM, A[:, :6], W)
        messages.add(str(error.value))
    assert len(messages) == 1


# ---- 2. non-finite float weights -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_map_report_rejects_non_finite_weights(tmp_path, capsys, bad):
    path = tmp_path / "w.npz"
    w = np.ones((4, 6))
    w[1, 2] = bad
    np.savez(path, fc1=np.ones((4, 6)), fc2=w)
    line = cli_error(capsys, ["map-report", "--weights", str(path), "--quiet"])
    assert str(path) in line and f"fc2[1, 2] = {bad} is not finite: allowed finite numbers" in line


def test_quantizers_reject_non_finite_weights():
    from gen.compiler.quantize import quantize_symmetric, ternarize

    for quantize in (quantize_symmetric, ternarize):
        with pytest.raises(ValueError, match=r"^w\[0, 1\] = nan is not finite"):
            quantize(np.array([[0.5, np.nan]]))


# ---- 3. ADC bits, energies, empty layers -----------------------------------------------------------------------

@pytest.mark.parametrize("bits", ["0", "-3", "17", "40"])
def test_map_report_adc_bits_range(capsys, bits):
    line = cli_error(capsys, ["map-report", "--net", "tiny", "--adc-bits", bits, "--quiet"])
    assert f"adc_bits = {bits} is out of range: allowed 1 … 16 or None (lossless)" in line


@pytest.mark.parametrize("option, value, message", [
    ("--input-bits", "40", "input_bits = 40 is out of range: allowed 2 … 16"),
    ("--dac-bits", "3", "dac_bits = 3 is not allowed: allowed 1, 2"),
    ("--seed", "-1", "seed = -1 is out of range: allowed 0 or more"),
])
def test_map_report_tile_ranges(capsys, option, value, message):
    assert message in cli_error(capsys, ["map-report", "--net", "tiny", option, value, "--quiet"])


def test_layer_metrics_adc_bits_zero_is_not_lossless():
    from gen.compiler.metrics import layer_metrics
    from hw.formats.mapping import CrossbarGeometry

    stats = dict(crossbars=1, ous=1, ous_max_per_xbar=1, adc_per_plane=1, drives_per_plane=1, cells_used=1,
                 nonzero_cells=1)
    with pytest.raises(ValueError, match=r"^adc_bits = 0 is out of range: allowed 1 … 16"):
        layer_metrics(stats, stats, geometry=CrossbarGeometry(), positions=1, n_outputs=1, adc_bits=0)


@pytest.mark.parametrize("text, message", [
    ('{"adc_8bit_pj": NaN}', "EnergyTable.adc_8bit_pj = nan is not finite"),
    ('{"dac_pj": Infinity}', "EnergyTable.dac_pj = inf is not finite"),
    ('{"cell_read_pj": -0.5}', "EnergyTable.cell_read_pj = -0.5 is out of range: allowed a finite number ≥ 0"),
    ('{"shift_add_pj": true}', "EnergyTable.shift_add_pj = True is a bool, not a number"),
])
def test_energy_table_entries(tmp_path, capsys, text, message):
    path = tmp_path / "energy.json"
    path.write_text(text)
    assert message in cli_error(capsys, ["map-report", "--net", "tiny", "--energy", str(path), "--quiet"])


@pytest.mark.parametrize("shape", [(0, 32), (4, 0), (0, 3, 3, 3)])
def test_map_report_rejects_empty_layers(tmp_path, capsys, shape):
    path = tmp_path / "w.npz"
    np.savez(path, fc=np.zeros(shape))
    assert f"'fc' has shape {shape}: allowed a non-empty layer" in cli_error(
        capsys, ["map-report", "--weights", str(path), "--quiet"])


# ---- 4. files and paths --------------------------------------------------------------------------------------

def test_npz_problems(tmp_path, capsys):
    empty, npy, positions = tmp_path / "empty.npz", tmp_path / "w.npy", tmp_path / "pos.npz"
    empty.write_bytes(b"")
    np.save(npy, np.ones((4, 4)))
    np.savez(positions, fc=np.ones((4, 4)), **{"fc.positions": np.array([1, 2])})
    assert f"--weights {empty}: cannot read" in cli_error(capsys, ["map-report", "--weights", str(empty)])
    assert "holds a single array (a .npy file?)" in cli_error(capsys, ["map-report", "--weights", str(npy)])
    assert "fc.positions = [1, 2] is an array of shape (2,): allowed a scalar integer" in cli_error(
        capsys, ["map-report", "--weights", str(positions), "--quiet"])


def test_perf_layers_file(tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    assert f"--layers = '{missing}' does not exist: allowed an existing file" in cli_error(
        capsys, ["perf", "--config", "gemm_4x4_2of4", "--layers", str(missing)])
    bad = tmp_path / "bad.csv"
    bad.write_text("name,M,K,N\nfc,8,8,x\n")
    assert "line 2 ['fc', '8', '8', 'x']: M, K, N are not three integers" in cli_error(
        capsys, ["perf", "--config", "gemm_4x4_2of4", "--layers", str(bad)])


def test_verilog_out_unwritable_writes_nothing(tmp_path, capsys, monkeypatch):
    import gen.verilog

    monkeypatch.setattr(gen.verilog, "generate_verilog", lambda config: pytest.fail("generated before the check"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = cli_error(capsys, ["verilog", "--config", "dense_4x4", "--out", str(blocker / "sub")])
    assert f"--out = '{blocker / 'sub'}' cannot be created" in line
    assert f"--out = '{blocker}' is an existing file, not a directory" in cli_error(
        capsys, ["verilog", "--config", "dense_4x4", "--out", str(blocker)])


@pytest.mark.parametrize("option", ["--out", "--json"])
def test_rram_sweep_checks_outputs_before_sweeping(tmp_path, capsys, monkeypatch, option):
    import gen.rram.sweep

    monkeypatch.setattr(gen.rram.sweep, "run_sweep", lambda spec: pytest.fail("the sweep ran before the check"))
    existing = tmp_path / "file"
    existing.write_text("")
    target = existing if option == "--out" else tmp_path
    argv = ["rram-sweep", "--quick", "--out", str(tmp_path / "plots"), option, str(target)]
    expected = "is an existing file, not a directory" if option == "--out" else "is a directory"
    assert f"{option} = '{target}' {expected}" in cli_error(capsys, argv)


@pytest.mark.parametrize("argv, message", [
    (["--freq", "0"], "--freq = 0.0 is out of range: allowed 1 … 1000 (MHz)"),
    (["--freq", "nan"], "--freq = nan is not finite"),
    (["--jobs", "0"], "--jobs = 0 is out of range: allowed 1 or more"),
    (["--timeout", "-1"], "--timeout = -1.0 is out of range"),
])
def test_synth_options_checked_first(tmp_path, capsys, monkeypatch, argv, message):
    import gen.synth.flow

    monkeypatch.setattr(gen.synth.flow, "synthesize", lambda *a, **k: pytest.fail("synthesized before the check"))
    assert message in cli_error(capsys, ["synth", "--config", "dense_4x4", "--out", str(tmp_path / "s"), *argv])
    assert not (tmp_path / "s").exists()


# ---- 5. RRAM golden MVM, cycle models, generator entry points, dense baseline, numpy scalars --------------------

def small_mapping():
    from gen.compiler.rram_map import map_dense
    from hw.formats.mapping import CrossbarGeometry

    geometry = CrossbarGeometry(xbar_rows=16, xbar_cols=16, ou_rows=4, ou_cols=4, cell_bits=2)
    return map_dense(np.arange(18).reshape(6, 3) - 9, geometry)


@pytest.mark.parametrize("x, kwargs, exc, pattern", [
    (np.full(6, 0.5), {}, TypeError, r"^x = array of dtype float64 is not integer"),
    (np.zeros(6, int), dict(input_bits=0), ValueError, r"^input_bits = 0 is out of range: allowed 2 … 32"),
    (np.zeros(6, int), dict(input_bits=2.5), TypeError, r"^input_bits = 2.5 is a float, not an integer"),
    (np.zeros(6, int), dict(dac_bits=0), ValueError, r"^dac_bits = 0 is out of range: allowed 1 … 8"),
    (np.zeros(6, int), dict(adc_bits=4.5), TypeError, r"^adc_bits = 4.5 is a float"),
    (np.zeros(6, int), dict(input_signed=2), TypeError, r"^input_signed = 2 is a int, not a bool"),
    (np.full(6, 128), {}, ValueError, r"^x\[0\] = 128 is out of range: allowed 8-bit signed integers"),
])
def test_rram_mvm_arguments(x, kwargs, exc, pattern):
    from hw.formats.mvm import mvm

    with pytest.raises(exc, match=pattern):
        mvm(small_mapping(), x, **kwargs)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda p, c: p.gemm.job_cycles(c, 8.5, 8, 8), TypeError, r"^M = 8.5 is a float, not an integer"),
    (lambda p, c: p.gemm.tiles(c, 0, 8), ValueError, r"^K = 0 is out of range for"),
    (lambda p, c: p.gemm.ideal_cycles(c, 8, 8, True), TypeError, r"^N = True is a bool"),
    (lambda p, c: p.gemm.predict(c, [(1, 2)]), TypeError, r"^jobs\[0\] = \(1, 2\) is not an \(M, K, N\) triple"),
    (lambda p, c: p.gemm.predict(c, []), ValueError, r"^jobs = \[\] is empty"),
    (lambda p, c: p.systolic.stream_cycles(c, 2.5), TypeError, r"^m = 2.5 is a float"),
    (lambda p, c: p.os_systolic.scalesim_os_fold(-5, 4, 4), ValueError, r"^k = -5 is out of range"),
    (lambda p, c: p.os_systolic.stream_cycles(c, [2, 0]), ValueError, r"^k_blocks = 0 is out of range"),
    (lambda p, c: p.rram_tile.program_cycles(2.7), TypeError, r"^writes = 2.7 is a float"),
    (lambda p, c: p.rram_tile.ou_conversion_cycles([[1] * 8], [[0] * 8], 0), ValueError,
     r"^adcs = 0 is out of range"),
])
def test_perf_functions_check_counts(call, exc, pattern):
    from types import SimpleNamespace

    from gen.gemm import os_perf, perf as gemm_perf
    from gen.rram import perf as rram_perf
    from gen.systolic import perf as systolic_perf

    models = SimpleNamespace(gemm=gemm_perf, os_systolic=os_perf, rram_tile=rram_perf, systolic=systolic_perf)
    with pytest.raises(exc, match=pattern):
        call(models, GEMM)


def test_generate_verilog_takes_a_preset_name(tmp_path):
    art = gen.generate_verilog("dense_4x4")
    assert art.top == load_config("dense_4x4").top and "module" in art.verilog
    paths = gen.write_verilog("dense_4x4", tmp_path)
    assert [p.name for p in paths] == [f"{art.top}{ext}" for ext in (".v", ".json", ".core", ".f")]
    for bad in (None, 5, {"rows": 4}):
        with pytest.raises(TypeError, match=r"^config = .* is a \w+, not a ConfigBase: allowed a config"):
            gen.generate_verilog(bad)
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        gen.write_verilog("nope", tmp_path)
    with pytest.raises(TypeError, match=r"^out_dir = None is a NoneType, not a path"):
        gen.write_verilog("dense_4x4", None)


def test_perf_dense_baseline_must_be_dense_with_equal_multipliers(capsys):
    line = cli_error(capsys, ["perf", "--config", "gemm_8x8_2of4", "--gemm", "16,16,16", "--dense", "gemm_4x4_2of4"])
    assert "is sparse (2:4): allowed a dense gemm config (keep == block) with 128 multipliers" in line
    line = cli_error(capsys, ["perf", "--config", "gemm_8x8_2of4", "--set", "cols=4", "--gemm", "16,16,16",
                              "--dense", "gemm_8x8_dense"])
    assert "has 128 multipliers: allowed 64" in line


def test_configs_accept_numpy_scalars_and_store_plain_values():
    for config, field in ((SystolicConfig(rows=np.int64(4), act_signed=np.bool_(False)), "rows"),
                          (GemmConfig(max_m=np.int32(8)), "max_m"),
                          (RramTileConfig(stuck_sa0=np.float32(0.25), cell_bits=np.int16(2)), "stuck_sa0")):
        assert all(type(v) in (int, float, bool, str, type(None)) for v in config.to_dict().values()), config
        assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config, field
    assert load_config("dense_4x4", {"rows": np.int64(2)}).rows == 2
    with pytest.raises(TypeError, match=r"^SystolicConfig.rows = '4' is a str, not an integer: allowed 1 … 128"):
        SystolicConfig(rows="4")
    with pytest.raises(TypeError, match=r"^RramTileConfig.stuck_sa0 = 'x' is a str, not a number"):
        RramTileConfig(stuck_sa0="x")


# ---- 6. short reprs ------------------------------------------------------------------------------------------

def test_result_objects_have_short_reprs():
    from gen.compiler.sparse_map import plan_layer
    from sim.gemm.driver import plan_gemm
    from gen.gemm.perf import predict

    cfg = load_config("gemm_8x8_2of4")
    prediction = predict(cfg, [(256, 256, 256)] * 4)
    text = repr(prediction)
    assert len(text) < 300 and f"cycles={prediction.cycles}" in text and f"tiles={len(prediction.row_starts)}" in text
    assert len(repr(plan_gemm(GEMM, *job()))) < 300
    mapping = small_mapping()
    assert repr(mapping).startswith("TileMapping(K=6, N=3, ") and len(repr(mapping)) < 200
    plan = plan_layer(np.arange(18).reshape(6, 3) - 9, mapping.geometry, strategy="bit-squeeze")
    assert repr(plan).startswith("MapPlan(strategy='bit-squeeze', weights=6×3") and len(repr(plan)) < 200


# ---- 7. more of what a new user tries ------------------------------------------------------------------------

@pytest.mark.parametrize("args, exc, pattern", [
    ((123,), TypeError, r"^preset_or_path = 123 is a int, not a str"),
    (("dense_4x4", "rows=4"), TypeError, r"^overrides = 'rows=4' is a str: allowed a mapping"),
    (("dense_4x4", [4]), TypeError, r"^override = 4 is a int, not a str"),
    (("dense_4x4", ["rows=1.5"]), ValueError, r"cannot parse '1.5' for SystolicConfig.rows"),
])
def test_load_config_arguments(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        load_config(*args)


@pytest.mark.parametrize("content, message", [
    (b"\x00\xff garbage", "is not valid TOML: not UTF-8 text"),
    (b'kind = ["a"]\n', "kind = ['a'] is a list, not a str"),
    (b"rows = 2.0\n", "SystolicConfig.rows = 2.0 is a float, not an integer"),
])
def test_bad_toml_files_on_the_command_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    assert message in cli_error(capsys, ["show", "--config", str(path)])


def test_golden_model_arguments():
    from sim.gemm.conv import conv2d_direct
    from sim.rram.golden import TileGolden
    from hw.formats.faults import fault_map
    from sim.systolic.golden import random_acts
    from hw.formats.nm import compress_nm

    values, indices = compress_nm(np.zeros((4, 2), int), keep=np.int64(2), block=np.int64(4))
    assert values.shape == indices.shape == (1, 2, 2)
    with pytest.raises(ValueError, match="stride must be an int or a pair of ints, got True"):
        conv2d_direct(np.zeros((1, 4, 4), int), np.zeros((1, 1, 3, 3), int), stride=True)
    with pytest.raises(ValueError, match=r"^cell_bits = 3 is not allowed: allowed 1, 2, 4"):
        fault_map(1, 0.5, 0.1, (1, 4, 4), cell_bits=3)
    with pytest.raises(ValueError, match=r"^act_bits = 0 is out of range"):
        random_acts(np.random.default_rng(0), m=2, k=2, act_bits=0, act_signed=True)
    tile = TileGolden(load_config("rram_32x32_c2_small"))
    with pytest.raises(TypeError, match=r"^x = array of dtype float64 is not integer"):
        tile.mvm([0.5, 0.5])
    with pytest.raises(TypeError, match=r"^cfg = 'rram' is a str \(no n_xbars"):
        TileGolden("rram")


def test_empty_mapping_prints_n_a_not_nan(tmp_path, capsys):
    path = tmp_path / "zeros.npz"
    np.savez(path, fc=np.zeros((4, 8)))
    assert main(["map-report", "--weights", str(path), "--mapping", "ou-sparse", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "area efficiency n/a" in out and "nan" not in out


def test_config_type_error_in_replace_is_a_type_error():
    with pytest.raises(TypeError, match=r"^GemmConfig.relu = 1 is a int, not a bool: allowed True or False"):
        dataclasses.replace(GEMM, relu=1)
