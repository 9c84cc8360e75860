"""Every cache, build and output location is under the one build directory (gen/paths.py), never the package."""

from pathlib import Path

import pytest

from gen.paths import build_dir


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARSEGEN_BUILD", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_is_build_under_the_working_directory(elsewhere):
    assert build_dir() == elsewhere / "build"


def test_environment_wins(elsewhere, monkeypatch):
    monkeypatch.setenv("SPARSEGEN_BUILD", "out/b")                     # relative: to the working directory
    assert build_dir() == elsewhere / "out" / "b"
    monkeypatch.setenv("SPARSEGEN_BUILD", str(elsewhere / "abs"))
    assert build_dir() == elsewhere / "abs"


def test_every_location_follows_it(elsewhere, monkeypatch):
    from gen.synth.flow import default_cache_dir
    from sim.common.designs import cache_dir
    from sim.common.runner import build_dir_for
    from sim.ref.scalesim import default_venv_dir

    verilog = elsewhere / "t.v"
    verilog.write_text("module t; endmodule\n")
    monkeypatch.setenv("SPARSEGEN_BUILD", str(elsewhere / "b"))
    locations = [default_cache_dir(), cache_dir(), default_venv_dir(), build_dir_for(verilog, "t", "icarus", False)]
    assert all(elsewhere / "b" in path.parents for path in locations), locations
    package = Path(__import__("gen").__file__).parent.parent
    assert not any(package in path.parents for path in locations)
