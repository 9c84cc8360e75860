"""Closed-form cycle model of the output-stationary core ``SparseOSArray`` (README "Output-stationary core").

Every function takes a parameter object (duck-typed: ``.rows``, ``.cols``, optionally ``.pe_pipeline`` (default 0)
and, for :func:`macs`, ``.keep``).
Cycle numbers count clock cycles and assume no input gaps (both input streams valid whenever the core can take a
step) and no backpressure (``results__ready`` always high); with stalls, the same formulas hold in cycles where
the core advances. A tile has ``T`` K-blocks (``K = T · block``) and enters as ``T`` steps.

How it relates to SCALE-Sim's output-stationary fold, ``K + R + C − 2`` cycles for a dense ``R × C`` array over a
reduction of length K (:func:`scalesim_os_fold`): one step here covers a whole K-block (``block`` positions of K
with ``keep`` multipliers per PE), so the reduction takes ``T = K / block`` steps, and a tile takes
``T + rows + cols`` cycles from its first step to its last result beat, both included (:func:`tile_cycles`): the
``T + rows + cols − 2`` of the skewed wavefront, plus one input register stage and one for the result leaving the
accumulator. Unlike a fold in SCALE-Sim, the drain of one tile overlaps the next tile's steps.
"""

from collections.abc import Iterable

from hw import checks

__all__ = ["latency", "tile_cycles", "tile_interval", "last_step_cycles", "result_cycles", "stream_cycles",
           "macs", "scalesim_os_fold"]


def _check_t(k_blocks):
    return checks.check_int("k_blocks", k_blocks, 1, allowed="1 or more (a tile needs k_blocks >= 1 K-blocks)")


def _check_tiles(tiles):
    if isinstance(tiles, (str, bytes)) or not isinstance(tiles, Iterable):
        checks.fail("tiles", tiles, f"is a {type(tiles).__name__}, not a list", "a list of K-block counts",
                    exc=TypeError)
    return [_check_t(t) for t in tiles]


def _check_cfg(p, *fields):
    checks.check_attrs("p", p, ("rows", "cols", *fields), "the core's parameters (an object with rows, cols)")


def _pipeline(p):
    """The PEs' pipeline registers (``p.pe_pipeline``; 0 when the parameter object has none)."""
    return getattr(p, "pe_pipeline", 0)


def latency(p):
    """Cycles from a tile's last step transfer to its first result beat (row 0): ``cols + 1 + pe_pipeline``.

    Result row i follows ``i`` cycles later, so the last row leaves ``rows + cols + pe_pipeline`` cycles after the
    last step.
    """
    _check_cfg(p)
    return p.cols + 1 + _pipeline(p)


def tile_cycles(p, k_blocks):
    """Cycles from the first step transfer to the last result transfer, inclusive, for one tile of ``T``
    back-to-back steps: ``T + rows + cols + pe_pipeline``. Also the ``busy_cycles`` increase for such a tile
    alone."""
    k_blocks = _check_t(k_blocks)
    _check_cfg(p)
    return k_blocks + p.rows + p.cols + _pipeline(p)


def tile_interval(p, k_blocks):
    """Cycles a tile of ``T`` K-blocks occupies in a back-to-back stream: ``max(T, rows)``.

    Tiles of ``T ≥ rows`` follow each other with no bubble; a shorter tile's last step waits until ``rows``
    cycles after the previous tile's last step (one result beat per row is the output's bandwidth).
    """
    k_blocks = _check_t(k_blocks)
    _check_cfg(p)
    return max(k_blocks, p.rows)


def last_step_cycles(p, tiles):
    """Transfer cycle of each tile's last step, counting the first step's transfer as cycle 0.

    ``L_0 = T_0 − 1``, ``L_k = L_{k−1} + max(T_k, rows)``.
    """
    out, last = [], -1
    for k, t in enumerate(_check_tiles(tiles)):
        last = t - 1 if k == 0 else last + tile_interval(p, t)
        out.append(last)
    return out


def result_cycles(p, tiles):
    """Transfer cycle of every result beat of back-to-back tiles (first step = cycle 0), in output order:
    row i of tile k at ``L_k + cols + 1 + pe_pipeline + i``."""
    return [last + latency(p) + i for last in last_step_cycles(p, tiles) for i in range(p.rows)]


def stream_cycles(p, tiles):
    """Cycles from the first step transfer to the last result transfer, inclusive, for back-to-back tiles of
    ``tiles = [T_0, T_1, …]`` K-blocks: ``T_0 + Σ_{k≥1} max(T_k, rows) + rows + cols + pe_pipeline``. Also the ``busy_cycles``
    increase for such a stream (every cycle of it is busy)."""
    tiles = _check_tiles(tiles)
    if not tiles:
        return 0
    return result_cycles(p, tiles)[-1] + 1


def macs(p, k_blocks):
    """Multiplier operations of one tile: ``rows · cols · keep · T`` (zero-gated ones included)."""
    k_blocks = _check_t(k_blocks)
    _check_cfg(p, "keep")
    return p.rows * p.cols * p.keep * k_blocks


def scalesim_os_fold(k, rows, cols):
    """SCALE-Sim's output-stationary compute cycles for one fold of a dense ``rows × cols`` array over a
    reduction of length ``k``: ``k + rows + cols − 2`` (for reference; see the module docstring)."""
    k, rows, cols = (checks.check_int(name, v, 1) for name, v in (("k", k), ("rows", rows), ("cols", cols)))
    return k + rows + cols - 2
