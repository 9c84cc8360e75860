"""How a cocotb run is parametrized: the design's config, the stimulus seed and the knobs, in one place.

:func:`sim.common.runner.run_design` (pytest side) sets, for the simulator process:

- ``SPARSEGEN_CONFIG``: the design's config as JSON (its ``to_dict()``);
- ``SPARSEGEN_SEED``: the stimulus seed, also passed as ``COCOTB_RANDOM_SEED`` so that cocotb's own randomness
  replays with it;
- ``SPARSEGEN_<KNOB>``: one variable per knob (``rows=24`` becomes ``SPARSEGEN_ROWS=24``).

A cocotb test module reads them back with :func:`settings` (``settings(SystolicConfig)`` gives the config, the seed,
a seeded numpy generator and :meth:`Settings.knob`). Every replay hint reads ``rerun with SPARSEGEN_SEED=<n>``
(:func:`replay_hint`), on the pytest side and in the simulator.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass

import numpy as np

__all__ = ["SEED_ENV", "CONFIG_ENV", "replay_hint", "stimulus_seed", "run_seed", "knob_env", "knob", "Settings",
           "settings"]

SEED_ENV = "SPARSEGEN_SEED"
CONFIG_ENV = "SPARSEGEN_CONFIG"


def replay_hint(seed: int | None = None) -> str:
    """``"rerun with SPARSEGEN_SEED=<seed>"``; without ``seed``, the seed of the running cocotb simulation."""
    return f"rerun with {SEED_ENV}={run_seed() if seed is None else seed}"


def stimulus_seed() -> int:
    """pytest side: ``SPARSEGEN_SEED`` when set (a replay), otherwise a fresh seed in [0, 2³²)."""
    return int(os.environ.get(SEED_ENV) or random.randrange(1 << 32))


def run_seed() -> int:
    """Simulator side: ``SPARSEGEN_SEED``, or cocotb's own seed when the run was started without one (then the
    seed in cocotb's log and results is the same number)."""
    value = os.environ.get(SEED_ENV)
    if value:
        return int(value)
    import cocotb

    return int(cocotb.RANDOM_SEED)


def knob_env(name: str) -> str:
    """Environment variable of knob ``name``: ``SPARSEGEN_<NAME>``."""
    return f"SPARSEGEN_{name.upper()}"


def knob(name: str, default):
    """Value of knob ``name`` (``SPARSEGEN_<NAME>``) converted to the type of ``default``; ``default`` when unset.

    A ``bool`` knob is true for any value but ``""``, ``"0"``, ``"false"`` and ``"no"``.
    """
    raw = os.environ.get(knob_env(name))
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() not in ("", "0", "false", "no")
    if isinstance(default, (int, float)):
        return type(default)(raw)
    return raw


@dataclass(frozen=True)
class Settings:
    """What a cocotb test runs with.

    Attributes
    ----------
    config : object or None
        The design's config (``None`` when the module asked for none).
    seed : int
        The stimulus seed.
    rng : numpy.random.Generator
        Seeded with ``seed``; draw the stimulus from it (or derive other generators from ``seed``).
    """
    config: object
    seed: int
    rng: np.random.Generator

    @staticmethod
    def knob(name: str, default):
        """:func:`knob`."""
        return knob(name, default)


def settings(config_class=None) -> Settings:
    """Read the run's settings; logs the design and the seed with its replay hint.

    Parameters
    ----------
    config_class : class or callable, optional
        Turns the JSON of ``SPARSEGEN_CONFIG`` into the config: its ``from_dict`` when it has one, else it is called
        with the decoded JSON. ``None``: the run has no config.
    """
    import cocotb

    config = None
    if config_class is not None:
        raw = json.loads(os.environ[CONFIG_ENV])
        config = config_class.from_dict(raw) if hasattr(config_class, "from_dict") else config_class(raw)
    seed = run_seed()
    what = getattr(config, "top", None) or (type(config).__name__ if config is not None else "design")
    cocotb.log.info("%s: random stimulus seed %d (%s)", what, seed, replay_hint(seed))
    return Settings(config=config, seed=seed, rng=np.random.default_rng(seed))
