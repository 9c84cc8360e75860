"""The RRAM tile's performance workloads (issue #12; ``make bench`` section ``rram_perf``, ``tests/rram``).

1. ``dense_128x32``: a dense random 128 × 32 int8 layer on ``rram_128x128_c2_ou9x8_adc5`` (2 crossbars);
2. ``conv2_kernel_reorder``: the trained toy CNN's conv2 (``bars.npz``, K = 72, N = 16), pattern-pruned (k = 4, P = 4)
   and mapped with ``kernel-reorder`` onto the same preset;
3. ``x4_dense_64x16``: a dense random 64 × 16 layer on ``rram_64x64_c1`` with 4 crossbars (one column tile each);

each with ``adcs_per_xbar = ou_cols`` and ``= 1``.
"""

import dataclasses

import numpy as np

from gen.compiler.prune import as_matrix
from gen.compiler.rram_map import map_dense
from gen.compiler.sparse_map import plan_layer
from gen.config import load_config
from sim.compiler.compiled_layer import RRAM_PRUNE, compiled_layer

__all__ = ["WORKLOADS", "workload"]

WORKLOADS = ("dense_128x32", "conv2_kernel_reorder", "x4_dense_64x16")


def workload(name: str, adcs: str = "ou_cols"):
    """``(cfg, mapping)`` of workload ``name`` with ``adcs`` = ``"ou_cols"`` or ``"1"`` ADCs per crossbar."""
    if name not in WORKLOADS:
        raise ValueError(f"workload {name!r} is not known: allowed {', '.join(WORKLOADS)}")
    rng = np.random.default_rng(12)
    if name == "x4_dense_64x16":
        cfg = load_config("rram_64x64_c1", {"n_xbars": 4})
        mapping = map_dense(rng.integers(-128, 128, size=(64, 16)), cfg.geometry)
    else:
        cfg = load_config("rram_128x128_c2_ou9x8_adc5")
        if name == "dense_128x32":
            mapping = map_dense(rng.integers(-128, 128, size=(128, 32)), cfg.geometry)
        else:
            _, q = compiled_layer(RRAM_PRUNE)
            mapping = plan_layer(as_matrix(q), cfg.geometry, strategy="kernel-reorder", weight_bits=8).mapping()
    cfg = dataclasses.replace(cfg, adcs_per_xbar=None if adcs == "ou_cols" else int(adcs), max_ous=None,
                              name=f"rram_perf_{name}_a{'all' if adcs == 'ou_cols' else adcs}")
    assert mapping.n_xbars <= cfg.n_xbars, (name, mapping.n_xbars)
    return cfg, mapping
