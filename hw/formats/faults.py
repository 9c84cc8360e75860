"""The stuck-at fault map drawn from a seed: the one definition used by the tile config's manifest, the crossbar
model's parameters, the numpy mirror and the analog physics model."""

from collections.abc import Iterable

import numpy as np

from hw import checks
from hw.formats.mapping import max_level

__all__ = ["fault_map"]


def fault_map(seed: int, rate_sa0: float, rate_sa1: float, shape, *, cell_bits: int) -> list[tuple]:
    """A seeded stuck-at list: each cell of ``shape = (n_xbars, rows, cols)`` is independently stuck-at-0 with
    probability ``rate_sa0`` and stuck-at-1 (level ``2**cell_bits - 1``) with probability ``rate_sa1``.

    Drawn with ``numpy.random.default_rng(seed)``: one uniform ``u`` per cell in C order; ``u < rate_sa0`` is SA0,
    ``rate_sa0 <= u < rate_sa0 + rate_sa1`` SA1. Returns sorted ``(xbar, row, col, level)`` tuples, the format of
    ``CrossbarModel(stuck=...)``.
    """
    seed = checks.check_int("seed", seed, 0, 2**32 - 1)
    rate_sa0 = checks.check_float("rate_sa0", rate_sa0, 0, 1, allowed="0 … 1")
    rate_sa1 = checks.check_float("rate_sa1", rate_sa1, 0, 1, allowed="0 … 1")
    cell_bits = checks.check_choice("cell_bits", cell_bits, (1, 2, 4))
    if not (0 <= rate_sa0 <= 1 and 0 <= rate_sa1 <= 1 and rate_sa0 + rate_sa1 <= 1):
        raise ValueError(f"rate_sa0 = {rate_sa0!r}, rate_sa1 = {rate_sa1!r}: each in [0, 1] and their sum at most 1")
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Iterable):
        checks.fail("shape", shape, f"is a {type(shape).__name__}", "(n_xbars, rows, cols)", exc=TypeError)
    shape = tuple(checks.check_int(f"shape[{i}]", s) for i, s in enumerate(shape))
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape = {shape!r}: expected (n_xbars, rows, cols), each at least 1")
    u = np.random.default_rng(seed).random(shape)
    level = np.where(u < rate_sa0, 0, max_level(cell_bits))
    stuck = u < rate_sa0 + rate_sa1
    return [(int(x), int(r), int(c), int(level[x, r, c])) for x, r, c in np.argwhere(stuck)]
