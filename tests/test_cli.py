"""The command line (gen/cli.py): presets, show, verilog, and clean failures that write nothing."""

import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.cli import main
from gen.config import list_presets
from gen.gemm.config import GemmConfig
from gen.systolic.config import SystolicConfig

REPO = Path(__file__).resolve().parent.parent
FIELDS = [field.name for field in dataclasses.fields(SystolicConfig)]
# Valid ranges of the int fields for dense_4x4 (4x4, 1:1, 8-bit signed: acc_bits >= 18 for 4 products of 2**14).
INT_FIELDS = {"rows": (1, 128), "cols": (1, 128), "act_bits": (2, 16), "weight_bits": (2, 16),
              "acc_bits": (18, 64), "counter_bits": (16, 64), "keep": (1, 1), "block": (1, 16)}


def run(argv):
    """Exit status of ``main(argv)``, whether it returns it or argparse raises it."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def test_presets(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_presets()
    assert any(line.split()[1:5] == ["systolic", "4x8", "2:4", "unsigned"] for line in lines)
    assert any(line.split()[1:5] == ["systolic", "16x16", "2:4", "signed"] for line in lines)


def test_show(capsys):
    assert main(["show", "--config", "ssa_8x8_2of4", "--set", "rows=4", "--set", "act_signed=false"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["config"]["rows"] == 4 and shown["config"]["act_signed"] is False
    assert shown["config"]["max_k"] is None and shown["derived"]["max_reduction"] == 16
    assert shown["kind"] == "systolic"
    assert shown["derived"] == {"k": 16, "max_reduction": 16, "sparse": True, "index_bits": 2, "multipliers": 64,
                                "weight_entry_bits": 10, "top": "ssa_4x8_2of4_u8w8acc32"}


def test_show_prints_the_resolved_config_of_a_based_preset(capsys):
    assert main(["show", "--config", "gemm_8x8_2of4_os"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == "gemm"    # inherited from its base, gemm_8x8_2of4
    assert (shown["config"]["rows"], shown["config"]["max_m"], shown["config"]["dataflow"]) == (8, 1024, "os")
    assert list(shown["config"]) == [field.name for field in dataclasses.fields(GemmConfig)]


def test_show_toml_path(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    path.write_text("rows = 2\ncols = 2\nkeep = 1\nblock = 2\n")
    assert main(["show", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["derived"]["top"] == "ssa_2x2_1of2_s8w8acc32"


def test_bad_override_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["verilog", "--config", "dense_4x4", "--set", "rows=0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparsegen: error: ") and "rows" in err and "Traceback" not in err
    assert not out.exists()


def test_unknown_preset_lists_presets(tmp_path, capsys):
    assert main(["verilog", "--config", "nope", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and all(preset in err for preset in list_presets())
    assert not (tmp_path / "out").exists()


def test_set_with_all_is_an_error(tmp_path, capsys):
    assert main(["verilog", "--all", "--set", "rows=2", "--out", str(tmp_path / "out")]) == 2
    assert "--set" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["verilog", "--out", "x"], ["verilog", "--config", "dense_4x4"],
    ["verilog", "--config", "dense_4x4", "--all", "--out", "x"], ["show"],
])
def test_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert "usage: sparsegen" in capsys.readouterr().err


def bad_overrides():
    """Override strings that dense_4x4 certainly rejects: malformed, unknown field, unparsable or invalid value."""
    def outside(lo, hi):
        return st.integers(max_value=lo - 1) | st.integers(min_value=hi + 1)

    out_of_range = st.sampled_from(sorted(INT_FIELDS)).flatmap(
        lambda field: outside(*INT_FIELDS[field]).flatmap(
            lambda v: st.sampled_from([f"{field}={v}", f"{field}={hex(v)}", f" {field} = {v} "])))
    # A punctuation character makes the value unparsable as an int, a bool or "none".
    unparsable = st.builds("{}={}{}{}".format, st.sampled_from([*INT_FIELDS, "act_signed", "max_k"]),
                           st.text(max_size=5), st.sampled_from(".,;:!?@#%&*()[]{}'\""), st.text(max_size=5))
    return st.one_of(
        st.text(max_size=20).filter(lambda text: "=" not in text),
        st.builds("{}={}".format, st.text(max_size=10).filter(lambda f: "=" not in f and f.strip() not in FIELDS),
                  st.text(max_size=10)),
        unparsable,
        out_of_range,
        st.builds("max_k={}".format, st.integers(max_value=3) | st.integers(min_value=2**20 + 1)),
        st.builds("overflow={}".format,
                  st.text(max_size=10).filter(lambda t: t.strip() not in ("check", "wrap", "saturate"))),
        st.sampled_from(["name=", "name=1x", "name=module", "name=wire", "name=a b", "name=" + "x" * 65]),
    )


@settings(max_examples=300)
@given(override=bad_overrides())
def test_random_bad_overrides_write_nothing(override):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        assert run(["verilog", "--config", "dense_4x4", f"--set={override}", "--out", str(out)]) == 2
        assert not out.exists()


def test_python_m_gen():
    result = subprocess.run([sys.executable, "-m", "gen", "presets"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split()[0] == list_presets()[0]


def test_presets_and_show_do_not_import_amaranth():
    code = ("import sys; from gen.cli import main; main(['presets']); main(['show', '--config', 'dense_4x4']); "
            "assert not any(m == 'amaranth' or m.startswith('amaranth.') for m in sys.modules), 'amaranth imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_verilog(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["verilog", "--config", "dense_4x4", "--set", "rows=2", "--out", str(out)]) == 0
    printed = [Path(line) for line in capsys.readouterr().out.splitlines()]
    top = "ssa_2x4_1of1_s8w8acc32"
    assert printed == [out / f"{top}{ext}" for ext in (".v", ".json", ".core", ".f")]
    assert all(path.is_file() for path in printed)
    assert json.loads((out / f"{top}.json").read_text())["config"]["rows"] == 2
