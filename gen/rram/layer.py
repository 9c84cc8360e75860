"""One layer on one RRAM tile config: the mapping the tile runs and the check that the tile holds it.

Used by ``rram-perf`` (:mod:`gen.rram.cli`) and the sweep's ``perf`` stage (:mod:`gen.sweep.stages`), so both
measure the same mapping of a ``K × N`` layer with the same limits.
"""

import numpy as np

from hw import checks

__all__ = ["dense_layer_weights", "map_layer", "check_fits"]


def dense_layer_weights(cfg, k: int, n: int, *, seed: int = 0) -> np.ndarray:
    """``K × N`` random weights in the tile's ``weight_bits`` range (seeded): a dense mapping's schedule, and so its
    cycles, do not depend on the values."""
    k = checks.check_int("K", k, 1, 65536)
    n = checks.check_int("N", n, 1, 65536)
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    return np.random.default_rng(seed).integers(lo, hi + 1, size=(k, n))


def map_layer(cfg, w, *, strategy: str = "dense", what: str = "a layer"):
    """``w`` (``K × N`` ints) mapped onto ``cfg``'s geometry with ``strategy`` (a compiler strategy), checked to fit
    the tile (:func:`check_fits`); returns the :class:`~hw.formats.mapping.TileMapping`."""
    from gen.compiler.sparse_map import plan_layer

    if strategy != "dense" and cfg.encoding != "differential":
        raise ValueError(f"--mapping {strategy} needs encoding = 'differential' (the sparse strategies do)")
    mapping = plan_layer(w, cfg.geometry, strategy=strategy, weight_bits=cfg.weight_bits,
                         **({"encoding": cfg.encoding} if strategy == "dense" else {})).mapping()
    check_fits(cfg, mapping, f"the layer ({what}, mapping {strategy})")
    return mapping


def check_fits(cfg, mapping, what: str) -> None:
    """``ValueError`` naming the first tile limit ``mapping`` exceeds: crossbars, OU table, inputs, outputs, the
    per-crossbar OU queue."""
    for label, value, cap in (("crossbars", mapping.n_xbars, cfg.n_xbars), ("OUs", mapping.n_ous, cfg.ou_table_depth),
                              ("K", mapping.n_inputs, cfg.input_capacity),
                              ("N", mapping.n_outputs, cfg.output_capacity)):
        if value > cap:
            raise ValueError(f"{what} needs {value} {label}: the tile holds {cap} (use --set, e.g. n_xbars=, "
                             f"max_ous=, max_inputs=, max_outputs=)")
    per_xbar = np.bincount(mapping.ou_xbar, minlength=1).max() if mapping.n_ous else 0
    if per_xbar > cfg.lane_depth:
        raise ValueError(f"{what} puts {per_xbar} OUs on one crossbar: its queue holds {cfg.lane_depth}")
