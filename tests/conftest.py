"""Shared pytest options: ``--waves``, the ``seed`` fixture, and the seeds and waveforms in the report."""

import os

import pytest
from hypothesis import settings

from sim.common.runner import waveforms
from sim.common.tbenv import replay_hint, stimulus_seed

# No timing assertions in tests: a per-example deadline fails at random when Verilator builds load the CPU.
settings.register_profile("sparsegen", deadline=None)
settings.load_profile("sparsegen")

_WAVEFORMS = []      # (test id, path) of every waveform written, collected where the terminal summary is printed


def pytest_addoption(parser):
    parser.addoption("--waves", action="store_true",
                     help="dump waveforms of every cocotb run (same as WAVES=1); the paths are listed at the end")


def pytest_configure(config):
    # Runs in every xdist worker too, so sim.common.runner sees WAVES=1 wherever the run happens.
    if config.getoption("--waves"):
        os.environ["WAVES"] = "1"


@pytest.fixture
def seed():
    """Seed of a test's random stimulus: ``SPARSEGEN_SEED`` to replay one, otherwise fresh; always printed."""
    value = stimulus_seed()
    print(f"random stimulus seed: {value} ({replay_hint(value)})")
    return value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Before the report is made: the waveforms this test wrote become report properties, which reach the
    # controller under xdist too.
    if call.when == "call":
        item.user_properties.extend(("waveform", path) for path in waveforms())
    outcome = yield
    report = outcome.get_result()
    if report.failed and "seed" in getattr(item, "funcargs", {}):
        report.sections.append(("random stimulus seed", replay_hint(item.funcargs["seed"])))


def pytest_runtest_logreport(report):
    if report.when == "call":
        _WAVEFORMS.extend((report.nodeid, value) for name, value in report.user_properties if name == "waveform")


def pytest_terminal_summary(terminalreporter):
    if _WAVEFORMS:
        terminalreporter.section("waveforms")
        for nodeid, path in _WAVEFORMS:
            terminalreporter.write_line(f"{nodeid}: {path}")
