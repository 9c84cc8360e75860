"""Random bad arguments to every public entry point (hypothesis, derandomized so that a failure replays).

Each property: a bad argument raises ``TypeError``/``ValueError`` with a one-line message that names the argument
(the CLI: exit 2, one error line, no traceback), a valid one gives the right answer, and no other exception
escapes. Nothing slow runs: the CLI commands that would generate, synthesize or sweep get a bad argument that is
checked first (and the slow functions are replaced by ones that fail the test if called).
"""

import atexit
import contextlib
import dataclasses
import io
import json
import math
import re
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import gen
from gen.cli import main
from gen.config import list_presets, load_config
from gen.gemm.config import GemmConfig

def props(examples=60):
    """Derandomized (a failure replays), no deadline, a modest number of examples."""
    return settings(derandomize=True, database=None, deadline=None, max_examples=examples, suppress_health_check=[HealthCheck.too_slow])


PLAIN = (int, float, bool, str, type(None))
TMP = Path(tempfile.mkdtemp(prefix="sparsegen-bad-input-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)


def _files():
    """Bad input files, made once: an existing plain file, an empty file, a .npy, garbage, bad .npz contents."""
    (TMP / "file").write_text("x")
    (TMP / "empty.npz").write_bytes(b"")
    (TMP / "garbage.bin").write_bytes(b"\x00\xff\xfe not a zip")
    np.save(TMP / "one.npy", np.ones((4, 4)))
    np.savez(TMP / "nan.npz", fc=np.array([[np.nan, 1.0]]))
    np.savez(TMP / "inf.npz", fc=np.array([[1.0], [-np.inf]]))
    np.savez(TMP / "empty_layer.npz", fc=np.zeros((0, 8)))
    np.savez(TMP / "three_d.npz", fc=np.ones((2, 2, 2)))
    np.savez(TMP / "bools.npz", fc=np.ones((2, 2), bool))
    np.savez(TMP / "positions.npz", fc=np.ones((2, 2)), **{"fc.positions": np.array(-3)})
    (TMP / "bad.toml").write_bytes(b"rows = [\n")
    (TMP / "kind.toml").write_text('kind = 7\n')
    np.save(TMP / "int.npy", np.ones((4, 4), np.int64))     # valid for simulate (but K = 4 rows of W: dense)
    return sorted(str(p) for p in TMP.iterdir())


FILES = _files()


def check_error(error, names):
    """A clean error: TypeError/ValueError, one line, naming one of ``names``."""
    assert isinstance(error, (TypeError, ValueError)), repr(error)
    message = str(error)
    assert message and "\n" not in message, message
    assert any(name in message for name in names), (names, message)


def run_cli(argv):
    """``(exit status, stderr)`` of ``main(argv)`` in-process; any exception but SystemExit fails the test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
    return code, err.getvalue()


def assert_cli_error(argv, names):
    code, err = run_cli(argv)
    assert code == 2, (argv, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    if lines[0].startswith("usage:"):            # argparse: usage lines, then one error line
        assert re.match(r"sparsegen[\w -]*: error: ", lines[-1]), err
    else:
        assert len(lines) == 1 and lines[0].startswith("sparsegen: error: "), err
        assert any(name in lines[0] for name in names), (names, lines[0])


def outside(lo, hi):
    return st.integers(-10**6, lo - 1) | st.integers(hi + 1, 10**6)


# command-line text: no control characters or line separators (a shell argument with a newline is another story)
junk = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=12)
not_int = st.sampled_from(["x", "1.5", "", "nan", "0x", "--"])


@st.composite
def map_report_argv(draw):
    option, value, names = draw(st.sampled_from([
        ("--adc-bits", outside(1, 16), ["adc_bits"]),
        ("--input-bits", outside(2, 16), ["input_bits"]),
        ("--dac-bits", outside(1, 2), ["dac_bits"]),
        ("--seed", st.integers(-10**6, -1), ["seed"]),
        ("--round", st.integers(-10**6, -1), ["--round"]),
        ("--cell-bits", outside(1, 4) | st.sampled_from([3]), ["cell_bits"]),
        ("--xbar", junk.filter(lambda t: not re.fullmatch(r"\d+[xX]\d+", t)) | st.sampled_from(["0x8", "5000x8"]),
         ["xbar"]),
        ("--ou", st.sampled_from(["200x8", "8x0", "9", "x"]), ["ou"]),
        ("--prune", junk.filter(lambda t: t.partition(":")[0] not in ("none", "sense", "magnitude", "nm", "pattern",
                                                                     "ou")) |
         st.sampled_from(["magnitude:ratio=2", "magnitude:ratio=nan", "nm:5:4", "nm:2:x", "pattern:k=0", "ou:ratio=-1",
                          "pattern:P=0", "ou:ratio=0.5,ou_rows=0"]), ["prune", "ratio", "N:M", "pattern", "OU"]),
        ("--quant", junk.filter(lambda t: t not in ("int8", "int4", "ternary")), ["--quant"]),
        ("--mapping", junk.filter(lambda t: t not in ("dense", "ou-sparse", "kernel-reorder", "bit-squeeze")),
         ["mapping strategy"]),
        ("--weights", st.sampled_from([f for f in FILES if not f.endswith(".toml")]), ["--weights"]),
        ("--energy", st.sampled_from([f for f in FILES if "npz" in f or "npy" in f]), ["energy table"]),
    ]))
    argv = ["map-report", "--quiet", option, str(draw(value))]
    if option != "--weights":
        argv += ["--net", "tiny"]
    return argv, names


@st.composite
def energy_argv(draw):
    entry = draw(st.sampled_from(["adc_8bit_pj", "dac_pj", "cell_read_pj", "shift_add_pj", "buffer_byte_pj", "nope"]))
    value = draw(st.floats(max_value=-1e-9) | st.sampled_from([float("nan"), float("inf"), "1", True, None, [1]]))
    path = TMP / f"energy-{draw(st.integers(0, 3))}.json"
    path.write_text(json.dumps({entry: value}))
    return ["map-report", "--quiet", "--net", "tiny", "--energy", str(path)], ["EnergyTable", "energy table"]


@st.composite
def perf_argv(draw):
    base = ["perf", "--config", "gemm_4x4_2of4"]
    kind = draw(st.sampled_from(["text", "range", "dense", "layers", "set"]))
    if kind == "text":
        text = draw(junk.filter(lambda t: len(re.split(r"[,x]", t)) != 3))
        return base + [f"--gemm={text}"], ["--gemm"]
    if kind == "range":
        dims = draw(st.lists(st.integers(-5, 80), min_size=3, max_size=3).filter(
            lambda d: not all(1 <= v <= 64 for v in d)))
        return base + ["--gemm", ",".join(map(str, dims))], [" is out of range"]
    if kind == "dense":
        dense = draw(st.sampled_from(["gemm_4x4_2of4", "gemm_8x8_dense", "ssa_8x8_2of4", "nope", FILES[0]]))
        return base + ["--gemm", "8,8,8", "--dense", dense], ["dense", "preset", "--dense", "config file"]
    if kind == "layers":
        return base + ["--layers", draw(st.sampled_from([str(TMP / "missing.csv"), str(TMP), str(TMP / "one.npy")]))], \
            ["--layers"]
    field = draw(st.sampled_from(["rows", "max_m", "dataflow", "relu", "out_bits", "keep"]))
    return base + ["--gemm", "8,8,8", "--set", f"{field}={draw(not_int)}"], [field]


@st.composite
def other_argv(draw):
    """verilog, show, rram-sweep, synth, presets: each with one argument that is checked before any work."""
    command = draw(st.sampled_from(["verilog", "show", "rram-sweep", "synth", "presets"]))
    preset = draw(st.sampled_from(["dense_4x4", "gemm_4x4_2of4", "rram_32x32_c2_small"]))
    if command == "presets":
        return ["presets", draw(junk)], []
    if command == "rram-sweep":
        option, value = draw(st.sampled_from([("--seed", st.integers(-100, -1)), ("--vectors", st.integers(-100, 0)),
                                              ("--chips", st.integers(-100, 0)), ("--out", st.just(FILES[0])),
                                              ("--json", st.just(str(TMP)))]))
        return ["rram-sweep", "--quick", "--out", str(TMP / "sweep"), option, str(draw(value))], [option]
    if command == "synth":
        option, value = draw(st.sampled_from([("--freq", st.floats().filter(lambda f: not 1 <= f <= 1000)),
                                              ("--jobs", st.integers(-100, 0)),
                                              ("--timeout", st.floats(max_value=0) | st.just(float("nan"))),
                                              ("--out", st.just(str(TMP / "file")))]))
        return ["synth", "--config", preset, option, str(draw(value))], [option]
    source = draw(st.sampled_from(["set", "config"]))
    out = [] if command == "show" else ["--out", str(TMP / "verilog")]
    if source == "config":
        config = draw(st.sampled_from(FILES) | junk.filter(lambda t: t not in list_presets() and t.strip()))
        return [command, "--config", config, *out], ["config", "preset", "kind", "Config", "--out"]
    field = draw(st.sampled_from(["rows", "cols", "name", "overflow", "acc_bits", "cell_bits", "nope"]))
    value = draw(st.sampled_from(["", "1.5", "0x", "--", "-1", "0", "module"]) if field == "name" else
                 not_int | st.sampled_from(["-1", "0", "100000", "module", "none"]))
    return [command, "--config", preset, "--set", f"{field}={value}", *out], [field, "override"]


@st.composite
def simulate_argv(draw):
    """simulate: a bad file, simulator, seed, config or output directory, checked before any simulation."""
    out = ["--out", str(TMP / "simulate")]
    good = str(TMP / "int.npy")
    kind = draw(st.sampled_from(["a", "w", "sim", "seed", "config", "out", "onnx"]))
    if kind in ("a", "w"):
        bad = draw(st.sampled_from([f for f in FILES if not f.endswith("int.npy")] + [str(TMP / "missing.npy"), str(TMP)]))
        files = {"a": bad, "w": good} if kind == "a" else {"a": good, "w": bad}
        return ["simulate", "--config", "gemm_4x4_2of4", "--a", files["a"], "--w", files["w"], *out], \
            [f"--{kind}", "A has shape", "W has shape"]
    gemm = ["--a", good, "--w", good]
    if kind == "sim":
        return ["simulate", "--config", "gemm_4x4_2of4", *gemm, "--sim", draw(junk), *out], ["--sim"]
    if kind == "seed":
        return ["simulate", "--config", "gemm_4x4_2of4", *gemm, "--seed", str(draw(st.integers(-100, -1))), *out], \
            ["--seed"]
    if kind == "config":
        config = draw(st.sampled_from(FILES + ["dense_4x4", "rram_32x32_c2_small"]) |
                      junk.filter(lambda t: t not in list_presets() and t.strip()))
        return ["simulate", "--config", config, *gemm, *out], ["config", "preset", "kind", "Config"]
    if kind == "out":
        return ["simulate", "--config", "gemm_4x4_2of4", *gemm, "--out", str(TMP / "file")], ["--out"]
    return ["simulate", "--config", "gemm_4x4_2of4", "--onnx", draw(st.sampled_from(FILES)), "--input", good, *out], \
        ["--onnx", "--input"]


@props(300)
@given(st.one_of(map_report_argv(), energy_argv(), perf_argv(), other_argv(), simulate_argv()))
def test_cli_bad_arguments_exit_2(case):
    argv, names = case
    fail = mock.Mock(side_effect=AssertionError("work started before the arguments were checked"))
    with mock.patch("gen.rram.sweep.run_sweep", fail), mock.patch("gen.synth.flow.synthesize", fail), \
            mock.patch("gen.verilog.generate_verilog", fail), mock.patch("sim.common.runner.run_design", fail):
        assert_cli_error(argv, names)
    assert not (TMP / "simulate").exists()


# ---- load_config: random overrides of random fields ----------------------------------------------------------

PRESETS = {"systolic": "dense_4x4", "gemm": "gemm_4x4_2of4", "rram": "rram_32x32_c2_small"}
values = st.one_of(st.integers(-2**40, 2**40), st.integers(-3, 70), st.integers(-3, 70).map(np.int64),
                   st.floats(allow_nan=True), st.floats(0, 1).map(np.float32), st.booleans(), st.none(), junk,
                   st.lists(st.integers(), max_size=2), st.sampled_from(["check", "os", "model", "x1", "module"]))


@props(300)
@given(kind=st.sampled_from(sorted(PRESETS)), data=st.data())
def test_load_config_random_overrides(kind, data):
    cls = type(load_config(PRESETS[kind]))
    fields = [f.name for f in dataclasses.fields(cls)]
    field = data.draw(st.sampled_from(fields + ["nope"]))
    typed = data.draw(st.booleans())
    value = data.draw(values)
    override = {field: value} if typed else [f"{field}={value}"]
    try:
        config = load_config(PRESETS[kind], override)
    except (TypeError, ValueError) as error:
        event("rejected")
        check_error(error, [field, "override"])
        return
    event("accepted")
    assert isinstance(config, cls) and all(isinstance(v, PLAIN) for v in config.to_dict().values())
    if typed:       # never a silently different value (numpy scalars are stored as their plain equal)
        assert getattr(config, field) == value and type(getattr(config, field)) in PLAIN


@props(100)
@given(st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.integers(), max_size=2), st.dictionaries(junk, junk),
                 junk.filter(lambda t: t not in list_presets()), st.sampled_from(FILES)))
def test_generate_verilog_bad_config(config):
    try:
        gen.generate_verilog(config)
    except (TypeError, ValueError) as error:
        check_error(error, ["config", "preset", "kind", "Config"])
    else:
        raise AssertionError(f"generate_verilog({config!r}) did not fail")


# ---- golden models: a bad argument raises, a good one gives the right answer ----------------------------------

CFG = GemmConfig(rows=2, cols=3, keep=4, block=4, acc_bits=32, max_m=6, max_k=20, max_n=7)   # dense: no sparsity rule


@st.composite
def arrays(draw, rows, cols, lo=-128, hi=127):
    """Mostly a good integer array (elements in lo … hi); else a float, bool or badly shaped one, or an outlier."""
    kind = draw(st.sampled_from(["good", "good", "good", "int8", "float", "bool", "shape", "outlier"]))
    shape = draw(st.sampled_from([(cols,), (1, rows, cols)])) if kind == "shape" else (rows, cols)
    size = int(np.prod(shape))
    a = np.array(draw(st.lists(st.integers(lo, hi), min_size=size, max_size=size)), dtype=np.int64).reshape(shape)
    if kind == "outlier" and size:
        a.flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from([lo - 1, hi + 1, 2**40]))
    if kind == "float":
        return a + draw(st.sampled_from([0.0, 0.5, np.nan]))
    return a.astype({"int8": np.int8, "bool": np.bool_}.get(kind, np.int64)) if kind != "int8" else \
        np.clip(a, -128, 127).astype(np.int8)


def valid_operand(a, bits):
    return (a.ndim == 2 and np.issubdtype(a.dtype, np.integer) and a.dtype != np.bool_
            and (a.size == 0 or (a.min() >= -(1 << (bits - 1)) and a.max() < 1 << (bits - 1))))


@props(200)
@given(dims=st.tuples(st.integers(0, 8), st.integers(0, 22), st.integers(0, 9)), data=st.data())
def test_gemm_golden_and_driver(dims, data):
    from sim.gemm.driver import plan_gemm
    from sim.gemm.golden import gemm_engine, mac_counts

    m, k, n = dims
    A, W = data.draw(arrays(m, k)), data.draw(arrays(data.draw(st.sampled_from([k, k, k + 1])), n))
    valid = (valid_operand(A, 8) and valid_operand(W, 8) and A.shape[1] == W.shape[0]
             and 1 <= m <= CFG.max_m and 1 <= k <= CFG.max_k and 1 <= n <= CFG.max_n)
    event("valid job" if valid else "bad job")
    for fn in (gemm_engine, mac_counts, plan_gemm):
        try:
            out = fn(CFG, A, W)
        except (TypeError, ValueError) as error:
            assert not valid, error
            check_error(error, ["A", "W", "M", "K", "N"])
            continue
        assert valid, (fn.__name__, A, W)
        if fn is gemm_engine:
            np.testing.assert_array_equal(out, A.astype(np.int64) @ W.astype(np.int64))
        elif fn is mac_counts:
            skips = int(np.count_nonzero(A == 0)) * n
            assert out == (m * k * n - skips, skips)
        else:
            assert (out.m, out.k, out.n) == (m, k, n)


ints_or_junk = st.one_of(st.integers(-3, 40), st.floats(0, 40), st.booleans(), st.none(), st.just("8"))


@props(200)
@given(data=st.data())
def test_rram_mvm(data):
    from gen.compiler.rram_map import map_dense
    from hw.formats.mapping import CrossbarGeometry
    from hw.formats.mvm import mvm

    W = np.arange(18).reshape(6, 3) - 9
    mapping = map_dense(W, CrossbarGeometry(xbar_rows=16, xbar_cols=16, ou_rows=4, ou_cols=4, cell_bits=2))
    signed = data.draw(st.sampled_from([True, False, True, False, 1]))
    bits = data.draw(st.integers(2, 16) | ints_or_junk)
    dac = data.draw(st.integers(1, 8) | ints_or_junk)
    adc = data.draw(st.sampled_from([None, None, 32, 0, -3, 2.5]))
    # unsigned inputs may be 1 bit wide; signed ones need a sign and a magnitude bit
    good_bits = isinstance(bits, int) and not isinstance(bits, bool) and (2 if signed is not False else 1) <= bits <= 32
    lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)) if good_bits else (0, 1)
    x = data.draw(arrays(data.draw(st.integers(1, 3)), data.draw(st.sampled_from([6, 6, 5])), lo, hi))
    x = x[0] if data.draw(st.booleans()) and x.ndim == 2 else x
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)      # noqa: E731
    valid = (isinstance(signed, bool) and good_bits and is_int(dac) and 1 <= dac <= 8
             and (adc is None or adc == 32) and x.ndim in (1, 2) and x.shape[-1] == 6
             and np.issubdtype(x.dtype, np.integer) and x.dtype != np.bool_ and lo <= x.min() and x.max() <= hi)
    event("valid mvm" if valid else "bad mvm")
    try:
        y = mvm(mapping, x, input_bits=bits, input_signed=signed, dac_bits=dac, adc_bits=adc)
    except (TypeError, ValueError) as error:
        assert not valid, error
        check_error(error, ["x", "input_bits", "input_signed", "dac_bits", "adc_bits"])
        return
    assert valid
    np.testing.assert_array_equal(y, x.astype(np.int64) @ W)


@props(200)
@given(m=st.integers(1, CFG.max_m) | ints_or_junk, k=st.integers(1, CFG.max_k) | ints_or_junk,
       n=st.integers(1, CFG.max_n).map(np.int32) | ints_or_junk)
def test_gemm_cycle_model(m, k, n):
    from gen.gemm import perf

    is_int = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool)      # noqa: E731
    valid = all(is_int(v) and 1 <= v <= limit for v, limit in ((m, CFG.max_m), (k, CFG.max_k), (n, CFG.max_n)))
    event("valid dims" if valid else "bad dims")
    try:
        cycles = perf.job_cycles(CFG, m, k, n)
    except (TypeError, ValueError) as error:
        assert not valid, error
        check_error(error, ["M", "K", "N"])
        return
    assert valid and cycles == perf.predict(CFG, [(m, k, n)]).cycles


# ---- the compiler's map_report -------------------------------------------------------------------------------

BAD_MAP_ARGS = {
    "adc_bits": (outside(1, 16) | st.sampled_from([4.0, True, "5"]), ["adc_bits"]),
    "input_bits": (outside(2, 16) | st.sampled_from([8.0, None]), ["input_bits"]),
    "dac_bits": (outside(1, 2) | st.sampled_from([1.0, "1"]), ["dac_bits"]),
    "seed": (st.integers(-10**9, -1) | st.sampled_from([1.5, None, "0"]), ["seed"]),
    "round_error": (st.integers(-10, -1) | st.sampled_from([0.5, "1"]), ["round_error"]),
    "xbar": (st.sampled_from([(128,), "128x128", (0, 8), (8, 5000), (8.0, 8), None]), ["xbar"]),
    "ou": (st.sampled_from([(9,), (200, 8), (9, -1), "9x8"]), ["ou"]),
    "cell_bits": (outside(1, 4) | st.sampled_from([3, 2.0]), ["cell_bits"]),
    "prune": (st.sampled_from([5, None, "nm:9:4", "magnitude:ratio=nan", "foo"]), ["prune", "N:M", "ratio"]),
    "quant": (st.sampled_from(["int3", 8, None]), ["quant"]),
    "strategy": (st.sampled_from(["", "foo", 5, "dense+bit-squeeze"]), ["mapping strategy"]),
    "table": (st.sampled_from([{}, 1.0, "table"]), ["table"]),
    "progress": (st.sampled_from([1, "yes", None]), ["progress"]),
    "net": (st.sampled_from(["alexnet", 5, ["tiny"]]), ["net"]),
}


@props(100)
@given(data=st.data(), name=st.sampled_from(sorted(BAD_MAP_ARGS)))
def test_map_report_bad_arguments(data, name):
    from gen.compiler.report import map_report

    strategy, names = BAD_MAP_ARGS[name]
    kwargs = {"net": "tiny", name: data.draw(strategy)}
    try:
        map_report(**kwargs)
    except (TypeError, ValueError) as error:
        check_error(error, names)
    else:
        raise AssertionError(f"map_report({kwargs}) did not fail")


def test_numpy_arguments_give_a_finite_report():
    """The good case next to the bad ones: numpy integers are arguments too, and every total is a finite number."""
    from gen.compiler.report import map_report

    totals = map_report(net="tiny", adc_bits=np.int64(5), input_bits=np.int64(8))["totals"]
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in totals.values())
