"""Shared pytest options."""

import os
import random

import pytest
from hypothesis import settings

# No timing assertions in tests: a per-example deadline fails at random when Verilator builds load the CPU.
settings.register_profile("sparsegen", deadline=None)
settings.load_profile("sparsegen")


def pytest_addoption(parser):
    parser.addoption("--waves", action="store_true",
                     help="dump waveforms of every cocotb run (same as WAVES=1); the paths are printed")


def pytest_configure(config):
    # Runs in every xdist worker too, so sim.common.runner sees WAVES=1 wherever the run happens.
    if config.getoption("--waves"):
        os.environ["WAVES"] = "1"


@pytest.fixture
def seed():
    """Seed of a test's random stimulus: ``SPARSEGEN_SEED`` to replay one, otherwise fresh; always printed."""
    value = int(os.environ.get("SPARSEGEN_SEED") or random.randrange(1 << 32))
    print(f"random stimulus seed: {value} (rerun with SPARSEGEN_SEED={value})")
    return value
