"""The digits CNN end to end: int8 golden (:mod:`sim.network.golden`), one inference pipeline over float, int8,
GEMM RTL, RRAM RTL and the analog model (:mod:`sim.network.pipeline`), the accuracy study
(:mod:`sim.network.accuracy`), ``make demo`` and ``python -m gen accuracy`` (docs/network.md)."""
