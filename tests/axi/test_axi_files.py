"""``verilog --wrap axi``: the register map derived from the hw/ definitions, the wrapped Verilog's files, the
C header compiled with the system compiler against the manifest, FuseSoC on the .core, and bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gen.axi.verilog import register_map_of, wrapped_top
from gen.cli import main
from gen.config import load_config
from gen.fusesoc import core_name
from gen.verilog import write_verilog
from hw.gemm.beats import ERROR_FIELDS, desc_layout
from hw.gemm.front import COUNTERS
from hw.rram import beats as rram_beats
from sim.common.runner import require_simulator

GEMM = "gemm_4x4_2of4"


def run(argv):
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory):
    """``sparsegen verilog --config gemm_4x4_2of4 --wrap axi --out D`` (the issue's "done when" line): D and top."""
    out = tmp_path_factory.mktemp("wrapped")
    assert main(["verilog", "--config", GEMM, "--wrap", "axi", "--out", str(out)]) == 0
    return out, wrapped_top(load_config(GEMM))


def test_gemm_map_follows_hw_definitions():
    cfg = load_config(GEMM, ["counter_bits=48"])
    regmap = register_map_of(cfg)[0]
    names = [r.name for r in regmap.registers]
    fields = [f for f, _ in desc_layout(cfg)]
    assert names[:1 + len(fields)] == ["DESC_CTRL", *[f"DESC_{f.upper()}" for f in fields]]
    for f, shape in desc_layout(cfg):
        assert regmap[f"DESC_{f.upper()}"].fields[0].width == shape.width
    assert [n for n in names if n.endswith("_LO")] == [f"{c.upper()}_LO" for c in COUNTERS]
    assert regmap["CYCLES_HI"].fields[0].width == 16 and regmap["CYCLES_HI"].offset == regmap["CYCLES_LO"].offset + 4
    assert [(f.name, f.lsb, f.width) for f in regmap["ERROR"].fields] == [(n, i, 1) for i, n in enumerate(ERROR_FIELDS)]
    assert [r.offset for r in regmap.registers] == list(range(0, 4 * len(names), 4))
    assert [r.name for r in regmap.registers if r.writable] == names[:1 + len(fields)]


def test_rram_map_follows_hw_definitions():
    regmap = register_map_of(load_config("rram_32x32_c2_small", ["counter_bits=64"]))[0]
    expected = [f"{name}_{half}" for _, (name, _) in sorted(rram_beats.REGISTERS.items()) for half in ("LO", "HI")]
    assert [r.name for r in regmap.registers] == expected
    status = register_map_of(load_config("rram_32x32_c2_small"))[0]["STATUS"]
    assert {f.name: f.lsb for f in status.fields} == rram_beats.STATUS_BITS
    assert status.fields[-1].width == max(rram_beats.ERRORS).bit_length()
    assert not any(r.writable for r in regmap.registers)


def test_systolic_map_and_streams():
    regmap, axis, widths = register_map_of(load_config("dense_4x4"))
    assert [r.name for r in regmap.registers] == ["CYCLES", "BUSY_CYCLES", "STALL_CYCLES", "ZERO_SKIPS"]
    assert axis == {"acts": "s_axis_acts", "weights": "s_axis_weights", "results": "m_axis_results"}
    assert all(bits % 8 == 0 for bits in widths.values())


def test_wrap_writes_every_file(wrapped):
    out, top = wrapped
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{top}{ext}" for ext in (".v", ".json", ".core", ".f", ".rdl", ".h", "_regs.md"))
    manifest = json.loads((out / f"{top}.json").read_text())
    assert manifest["wrap"] == "axi" and manifest["top"] == top
    assert f"module {top}(" in (out / f"{top}.v").read_text()
    assert (out / f"{top}.f").read_text() == f"{top}.v\n"
    assert f"name: {core_name('gemm', top)}\n" in (out / f"{top}.core").read_text()
    rdl = (out / f"{top}.rdl").read_text()
    assert all(f"}} {r['name']} @ {r['offset']:#x};" in rdl for r in manifest["axil"]["registers"])
    axis = manifest["axis"]
    assert {name: a["prefix"] for name, a in axis.items()} == {"weights": "s_axis_weights", "acts": "s_axis_acts",
                                                               "results": "m_axis_results"}
    assert all(a["tdata_bits"] % 8 == 0 and a["payload_bits"] <= a["tdata_bits"] < a["payload_bits"] + 8
               for a in axis.values())


@pytest.mark.parametrize("preset", [GEMM, "rram_32x32_c2_small"])
def test_c_header_against_manifest(preset, tmp_path):
    """A C program includes the PeakRDL header and prints every register's offset and every field's mask and
    position; each must equal the manifest's."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not on PATH: apt-get install gcc")
    out = tmp_path / "out"
    assert main(["verilog", "--config", preset, "--wrap", "axi", "--out", str(out)]) == 0
    top = wrapped_top(load_config(preset))
    regs = json.loads((out / f"{top}.json").read_text())["axil"]["registers"]
    P = top.upper()
    lines = ["#include <stddef.h>", "#include <stdio.h>", f'#include "{top}.h"', "int main(void) {"]
    for r in regs:
        lines.append(f'    printf("{r["name"]} %zu\\n", offsetof({top}_t, {r["name"]}));')
        for f in r["fields"]:
            m = f"{P}__{r['name']}__{f['name'].upper()}"
            lines.append(f'    printf("{r["name"]}.{f["name"]} %llu %d %d\\n", (unsigned long long){m}_bm, '
                         f'{m}_bp, {m}_bw);')
    lines += ["    return 0;", "}"]
    (tmp_path / "main.c").write_text("\n".join(lines) + "\n")
    subprocess.run(["gcc", "-std=c11", "-Wall", "-Werror", "-I", str(out), "-o", str(tmp_path / "main"),
                    str(tmp_path / "main.c")], check=True, capture_output=True, text=True)
    got = subprocess.run([str(tmp_path / "main")], check=True, capture_output=True, text=True).stdout.splitlines()
    want = []
    for r in regs:
        want.append(f"{r['name']} {r['offset']}")
        want += [f"{r['name']}.{f['name']} {((1 << f['width']) - 1) << f['lsb']} {f['lsb']} {f['width']}"
                 for f in r["fields"]]
    assert got == want


def test_fusesoc_core_info_and_lint(wrapped, tmp_path):
    """``fusesoc core-info`` names the core, its toplevel and targets; ``fusesoc run --target lint`` runs Verilator
    on the wrapped Verilog and passes."""
    require_simulator("verilator")
    out, top = wrapped
    fusesoc = Path(sys.executable).parent / "fusesoc"
    fusesoc = str(fusesoc) if fusesoc.exists() else shutil.which("fusesoc")
    if fusesoc is None:
        pytest.skip("fusesoc is missing: pip install -e '.[soc]' (make test installs it)")
    vlnv = core_name("gemm", top)
    base = [fusesoc, "--cores-root", str(out)]
    info = subprocess.run([*base, "core-info", vlnv], capture_output=True, text=True, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert vlnv in info.stdout and "lint" in info.stdout and "sim" in info.stdout
    lint = subprocess.run([*base, "run", "--build-root", str(tmp_path / "fsbuild"), "--target", "lint", vlnv],
                          capture_output=True, text=True, cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    plain = tmp_path / "plain"                             # a make verilog directory: its core parses too
    write_verilog(load_config("dense_4x4"), plain)
    plain_vlnv = core_name("systolic", load_config("dense_4x4").top)
    info = subprocess.run([fusesoc, "--cores-root", str(plain), "core-info", plain_vlnv], capture_output=True,
                          text=True, cwd=tmp_path)
    assert info.returncode == 0 and plain_vlnv in info.stdout, info.stderr
    vc = list((tmp_path / "fsbuild").rglob("*.vc"))        # the Verilator command file edalize ran
    assert len(vc) == 1 and vc[0].parent.name == "lint-verilator", vc
    args = vc[0].read_text().split()
    assert f"{top}.v" in " ".join(args) and args[args.index("--top-module") + 1] == top


def test_bad_config_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["verilog", "--config", GEMM, "--set", "rows=0", "--wrap", "axi", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sparsegen: error: GemmConfig.rows = 0"), err
    assert not out.exists()
    assert run(["verilog", "--config", GEMM, "--html", "--out", str(out)]) == 2
    assert "--html applies to --wrap axi" in capsys.readouterr().err
    assert not out.exists()
    assert run(["verilog", "--config", GEMM, "--wrap", "apb", "--out", str(out)]) == 2
    assert not out.exists()


def _table_row(reg):
    fields = ", ".join(f"{f.name} [{f.lsb + f.width - 1}:{f.lsb}]" if f.width > 1 else f"{f.name} [{f.lsb}]"
                       for f in reg.fields)
    return f"| `{reg.offset:#05x}` | `{reg.name}` | {reg.access} | {fields} |"


@pytest.mark.parametrize("preset", [GEMM, "rram_32x32_c2_small"])
def test_docs_register_tables(preset):
    """docs/integration.md's register tables are the generated maps."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "integration.md").read_text()
    marker = f"<!-- regmap-table: {preset} -->\n"
    assert marker in text, f"docs/integration.md has no table for {preset}"
    rows = text.split(marker, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert rows == [_table_row(reg) for reg in register_map_of(load_config(preset))[0].registers]
