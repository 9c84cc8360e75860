"""The wheel (setup.py): built offline, installed into a fresh venv, run outside the checkout.

The installed distribution is one top-level package, ``sparsegen``, whose CLI gives the same Verilog as the
checkout and writes nothing into ``site-packages``; an editable install keeps ``hw``/``gen``/``sim`` top-level.
"""

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from gen import generate_verilog, load_config
from sim.common.runner import require_simulator

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("hw", "gen", "sim", "sparsegen", "setup.py", "pyproject.toml", "README.md", "LICENSE")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _setup_module():
    spec = importlib.util.spec_from_file_location("sparsegen_setup", REPO / "setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)        # __name__ is not "__main__": defines, does not call setup()
    return module


def _run(cmd, cwd, env=None):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _source_copy(tmp_path):
    """The files a wheel is built from, copied: the build writes build/ and *.egg-info next to them."""
    src = tmp_path / "src"
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    return src


def _venv(path):
    """A venv without pip whose imports fall back to this environment's packages (amaranth, numpy): offline."""
    _run([sys.executable, "-m", "venv", "--without-pip", path], cwd=path.parent)
    python = path / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=path).strip())
    # a directory named in a .pth is appended to sys.path without reading its own .pth files, so this
    # environment's editable sparsegen (a .pth finder) stays out
    (site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python, site


def _pip(python, *args, cwd):
    return _run([sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check", *args], cwd=cwd)


def _clean_env(venv_bin):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARSEGEN_BUILD", "PYTHONDONTWRITEBYTECODE")}
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    return env


def _snapshot(root):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _changed(before, after):
    """Paths added, removed or rewritten between two snapshots."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


@pytest.fixture(scope="module")
def needs_setuptools():
    """The build runs without isolation (offline): this environment's setuptools must meet [build-system]."""
    [oldest] = [int(r.split(">=")[1]) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools>=")]
    version = metadata.version("setuptools")
    if int(version.split(".")[0]) < oldest:
        pytest.fail(f"setuptools {version} cannot build the wheel (needs >= {oldest}): run `make`, which "
                    "installs the test extra's setuptools", pytrace=False)


def test_rewrite_imports():
    rewrite = _setup_module().rewrite_imports
    modules = {"gen.systolic.config", "sim.gemm.cocotb_engine", "sim.gemm"}
    source = ('"""Doc naming gen.systolic.config."""\n'
              "import os\n"
              "import hw\n"
              "import gen.compiler as compiler\n"
              "from hw.checks import check_int\n"
              "from gen import (\n    load_config,\n)\n"
              'KINDS = {"systolic": ("gen.systolic.config", "SystolicConfig")}\n'
              "TB = 'sim.gemm.cocotb_engine'\n"
              'LOG = "sim.log"\n'
              'PROG = f"sim.gemm {os.sep}"\n'
              "from hwx import y\n")
    assert rewrite(source, modules) == (
        '"""Doc naming gen.systolic.config."""\n'
        "import os\n"
        "from sparsegen import hw\n"
        "import sparsegen.gen.compiler as compiler\n"
        "from sparsegen.hw.checks import check_int\n"
        "from sparsegen.gen import (\n    load_config,\n)\n"
        'KINDS = {"systolic": ("sparsegen.gen.systolic.config", "SystolicConfig")}\n'
        "TB = 'sparsegen.sim.gemm.cocotb_engine'\n"
        'LOG = "sim.log"\n'
        'PROG = f"sim.gemm {os.sep}"\n'
        "from hwx import y\n")
    with pytest.raises(ValueError, match=r"x.py:1: `import gen.compiler` binds `gen`: write `from gen import compiler`"):
        rewrite("import gen.compiler\n", modules, filename="x.py")
    with pytest.raises(ValueError, match="x.py:1: import one of our modules per statement"):
        rewrite("import os, hw\n", modules, filename="x.py")


@pytest.fixture(scope="module")
def installed(tmp_path_factory, needs_setuptools):
    """``(python, site-packages)`` of a fresh venv with the wheel built from a copy of the sources installed."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp_path)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-w", tmp_path / "dist", src], cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("sparsegen-*.whl")
    python, site = _venv(tmp_path / "venv")
    _pip(python, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    return python, site


def test_wheel_holds_one_top_level_package(installed):
    _, site = installed
    package = site / "sparsegen"
    dist_info = next(site.glob("sparsegen-*.dist-info"))
    assert (dist_info / "top_level.txt").read_text().split() == ["sparsegen"]
    assert (dist_info / "licenses" / "LICENSE").read_bytes() == (REPO / "LICENSE").read_bytes()
    assert {p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"} == {"hw", "gen", "sim"}
    for data in ("gen/compiler/data/bars.npz", "gen/configs/ssa_4x8_2of4.toml", "sim/synth/models/MULT18X18D.v",
                 "sim/gemm/cocotb_engine.py", "gen/network/data/digits_cnn_int8.npz", "sim/network/cocotb_network.py"):
        assert (package / data).is_file(), data
    ours = ("hw", "gen", "sim")
    leftovers = [f"{path.relative_to(site)}:{node.lineno}" for path in package.rglob("*.py")
                 for node in ast.walk(ast.parse(path.read_text()))
                 if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ours)
                 or (isinstance(node, ast.Import) and any(a.name.split(".")[0] in ours for a in node.names))]
    assert not leftovers, f"imports the wheel did not rewrite: {leftovers}"


def test_cli_runs_outside_the_checkout(installed, tmp_path):
    python, site = installed
    env = _clean_env(python.parent)
    sparsegen = python.parent / "sparsegen"
    version = PYPROJECT["project"]["version"]
    before = _snapshot(site)
    assert _run([sparsegen, "--version"], cwd=tmp_path, env=env) == f"sparsegen {version}\n"
    assert _run([python, "-m", "sparsegen", "--version"], cwd=tmp_path, env=env) == f"sparsegen {version}\n"
    _run([sparsegen, "verilog", "--config", "ssa_4x8_2of4", "--out", "D"], cwd=tmp_path, env=env)
    tiny = _run([sparsegen, "map-report", "--net", "tiny", "--quiet"], cwd=tmp_path, env=env)
    bars = _run([sparsegen, "map-report", "--weights", "bars", "--quiet"], cwd=tmp_path, env=env)
    found = _run([python, "-c", "import importlib.util as u, sparsegen; "
                  "print(sparsegen.__file__, *(u.find_spec(n) is None for n in ('hw', 'gen', 'sim')))"],
                 cwd=tmp_path, env=env)
    assert not _changed(before, _snapshot(site)), "running the CLI wrote into site-packages"

    art = generate_verilog(load_config("ssa_4x8_2of4"))
    assert (tmp_path / "D" / f"{art.top}.v").read_bytes() == art.verilog.encode()
    assert "total: " in tiny and "total: 3 crossbars" in bars
    assert found.split() == [str(site / "sparsegen" / "__init__.py"), "True", "True", "True"]


def test_cocotb_runs_from_the_installed_package(installed, tmp_path):
    """What ``sim.bench`` does: the cached Verilog, an Icarus build and a cocotb module, all under ./build."""
    require_simulator("icarus")
    python, site = installed
    script = ("import json\n"
              "from sparsegen.gen import load_config\n"
              "from sparsegen.sim.common.designs import verilog_for\n"
              "from sparsegen.sim.common.runner import run_cocotb\n"
              "cfg = load_config('ssa_4x8_2of4')\n"
              "print(run_cocotb(verilog=verilog_for(cfg), top=cfg.top, sim='icarus',\n"
              "                 test_module='sparsegen.sim.systolic.cocotb_array', testcase='extremes_and_zeros',\n"
              "                 extra_env={'SPARSEGEN_CONFIG': json.dumps(cfg.to_dict()), 'SPARSEGEN_SEED': '1'}))\n")
    before = _snapshot(site)
    results = _run([python, "-c", script], cwd=tmp_path, env=_clean_env(python.parent)).strip()
    assert not _changed(before, _snapshot(site)), "the cocotb run wrote into site-packages"
    assert Path(results).is_file() and (tmp_path / "build") in Path(results).parents


def test_editable_install_keeps_the_checkout_layout(tmp_path, needs_setuptools):
    src = _source_copy(tmp_path)
    python, site = _venv(tmp_path / "venv")
    _pip(python, "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", src, cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = _clean_env(python.parent)
    found = _run([python, "-c", "import hw, gen, sim, sparsegen, gen.systolic.config as c; "
                  "print(hw.__file__, gen.__file__, sim.__file__, sparsegen.__file__, c.__file__)"], cwd=work, env=env)
    assert found.split() == [str(src / p / "__init__.py") for p in ("hw", "gen", "sim", "sparsegen")] + [
        str(src / "gen" / "systolic" / "config.py")]
    assert _run([python.parent / "sparsegen", "--version"], cwd=work, env=env).startswith("sparsegen ")
    assert not (site / "sparsegen").exists()
