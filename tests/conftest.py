"""Shared pytest options."""

import os


def pytest_addoption(parser):
    parser.addoption("--waves", action="store_true",
                     help="dump waveforms of every cocotb run (same as WAVES=1); the paths are printed")


def pytest_configure(config):
    # Runs in every xdist worker too, so sim.tb.runner sees WAVES=1 wherever the run happens.
    if config.getoption("--waves"):
        os.environ["WAVES"] = "1"
