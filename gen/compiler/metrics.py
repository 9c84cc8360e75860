"""Per-layer and per-network figures of a mapping: crossbars, cells, OU activations, ADC conversions, cycles, energy.

Definitions (per inference, i.e. per input image; a convolution's mapping runs once per output position):

- ``planes``: DAC steps per input vector, ``len(input_planes(input_bits, input_signed, dac_bits))``.
- ``ou_activations = ous · planes · positions``; ``adc_conversions = Σ ou_col_mask · planes · positions``.
- ``cycles``: the RRAM tile's exact cycle model (:func:`gen.rram.perf.stream_total`) for ``positions`` input
  vectors back to back on a tile holding the layer's mapping (one lane per crossbar, all at once, ``ou_cols`` ADCs
  each): from the first input beat to the last output beat, ``≈ positions · ous_max_per_xbar · planes`` plus the
  pipeline's fill and the first vector's input and last vector's output. The busiest crossbar's conversion cycles
  are ``planes · ous_max_per_xbar``, which is exact when no OU sends two outputs to one accumulator bank
  (:func:`hw.formats.mapping.conversion_cycles`; true of every strategy's mapping when ``N <= ou_cols`` banks or
  outputs of a group are consecutive; ``mapping_stats`` measures it on a built mapping). A layer of several
  matrices (chunked depthwise) counts its largest. Layers run one after another.
- ``energy_pj``: ADC (``adc_conversions`` at ``adc_bits``, lossless by default) + DAC (driven OU wordlines ×
  planes × positions) + cell reads (``cells_used`` × planes × positions: the cells under a driven wordline and a
  converted bitline) + shift-and-add (one per conversion) + buffer (one byte per driven OU wordline per input
  vector — the indexed input fetch — and four per output written), with :class:`EnergyTable` energies.
- ``utilization = cells_used / (crossbars · xbar_rows · xbar_cols)``; ``nonzero_fraction = nonzero_cells /
  cells_used``; ``area_efficiency = dense crossbars / crossbars`` (same layer, :func:`map_dense`).
- ``fill = mapped_cells / (crossbars · xbar_rows · xbar_cols)``: the fraction of the used crossbars' cells that
  hold a mapped weight column-row, i.e. a stored row (a wordline some OU drives) of a bitline that holds a weight
  slice (converted or not: bit-squeeze's skipped zero slices count, padding bitlines of a column group and the
  rows and slots no group uses do not). Dense: ``K · N · columns_per_output``. It measures the packing: shared
  slots raise it; ``utilization`` counts only converted cells.
"""

import numpy as np

from hw import checks
from hw.formats.mapping import TileMapping, conversion_cycles, input_planes
from hw.formats.mvm import lossless_adc_bits

from gen.compiler.energy import EnergyTable
from gen.rram import perf

__all__ = ["mapping_stats", "layer_metrics", "network_totals", "SUMMED"]

SUMMED = ("crossbars", "dense_crossbars", "ous", "cells_used", "nonzero_cells", "mapped_cells", "capacity_cells",
          "ou_activations",
          "adc_conversions", "dense_adc_conversions", "cycles", "dense_cycles", "energy_pj", "dense_energy_pj",
          "weights", "nonzero_weights")


def mapping_stats(mapping: TileMapping) -> dict:
    """The statistics of :class:`gen.compiler.sparse_map.MapPlan` measured on a built mapping (an independent
    check of the planner's closed forms)."""
    conv = np.array([conversion_cycles(mask, out, mapping.geometry.ou_cols)
                     for mask, out in zip(mapping.ou_col_mask, mapping.ou_col_output)], dtype=np.int64)
    return {"crossbars": mapping.n_xbars, "ous": mapping.n_ous,
            "ous_max_per_xbar": int(np.bincount(mapping.ou_xbar).max()) if mapping.n_ous else 0,
            "conv_max_per_xbar": int(np.bincount(mapping.ou_xbar, weights=conv).max()) if mapping.n_ous else 0,
            "k": mapping.n_inputs, "n": mapping.n_outputs,
            "adc_per_plane": int(mapping.ou_col_mask.sum()),
            "drives_per_plane": int((mapping.ou_inputs >= 0).sum()),
            "cells_used": mapping.cells_used(),
            "nonzero_cells": int(np.count_nonzero(mapping.levels))}


def _energy(stats, *, planes, positions, n_outputs, adc_bits, table):
    per_vector = planes * (stats["adc_per_plane"] * (table.adc_pj(adc_bits) + table.shift_add_pj)
                           + stats["drives_per_plane"] * table.dac_pj + stats["cells_used"] * table.cell_read_pj)
    buffer = (stats["drives_per_plane"] + 4 * n_outputs) * table.buffer_byte_pj if stats["ous"] else 0.0
    return positions * (per_vector + buffer)


def _cycles(stats, planes, positions):
    """The tile's cycles for ``positions`` vectors back to back (0 for an empty layer)."""
    if not stats["ous"] or not positions:
        return 0
    busiest = planes * int(stats.get("conv_max_per_xbar", stats["ous_max_per_xbar"]))
    return perf.stream_total(int(stats.get("k", 0)), int(stats.get("n", 0)), busiest, positions)


def layer_metrics(stats: dict, dense: dict, *, geometry, positions: int, n_outputs: int, input_bits: int = 8,
                  input_signed: bool = True, dac_bits: int = 1, adc_bits: int | None = None,
                  table: EnergyTable | None = None) -> dict:
    """Per-inference figures of one layer from its plan statistics and its dense statistics."""
    table = table or EnergyTable()
    planes = len(input_planes(input_bits, input_signed, dac_bits))
    if adc_bits is None:
        adc_bits = lossless_adc_bits(geometry.ou_rows, geometry.cell_bits, dac_bits)
    else:   # 0 is not "lossless" (that is None), and a negative width would lower the energy
        adc_bits = checks.check_int("adc_bits", adc_bits, 1, 16, allowed="1 … 16 or None (lossless)")
    capacity = stats["crossbars"] * geometry.xbar_rows * geometry.xbar_cols
    kw = dict(planes=planes, positions=positions, n_outputs=n_outputs, adc_bits=adc_bits, table=table)
    return {"crossbars": stats["crossbars"], "dense_crossbars": dense["crossbars"], "ous": stats["ous"],
            "cells_used": stats["cells_used"], "nonzero_cells": stats["nonzero_cells"], "capacity_cells": capacity,
            "utilization": stats["cells_used"] / capacity if capacity else 0.0,
            "mapped_cells": stats["mapped_cells"], "fill": stats["mapped_cells"] / capacity if capacity else 0.0,
            "ou_activations": stats["ous"] * planes * positions,
            "adc_conversions": stats["adc_per_plane"] * planes * positions,
            "dense_adc_conversions": dense["adc_per_plane"] * planes * positions,
            "cycles": _cycles(stats, planes, positions), "dense_cycles": _cycles(dense, planes, positions),
            "energy_pj": _energy(stats, **kw), "dense_energy_pj": _energy(dense, **kw),
            "adc_bits": adc_bits, "planes": planes}


def network_totals(rows: list[dict], geometry) -> dict:
    """Sums of :data:`SUMMED` over layers, plus the ratios of the totals."""
    total = {key: sum(row[key] for row in rows) for key in SUMMED}
    ratio = lambda a, b: a / b if b else float("nan")     # noqa: E731
    total.update(utilization=ratio(total["cells_used"], total["capacity_cells"]),
                 fill=ratio(total["mapped_cells"], total["capacity_cells"]),
                 area_efficiency=ratio(total["dense_crossbars"], total["crossbars"]),
                 adc_reduction=ratio(total["dense_adc_conversions"], total["adc_conversions"]),
                 energy_efficiency=ratio(total["dense_energy_pj"], total["energy_pj"]),
                 speedup=ratio(total["dense_cycles"], total["cycles"]))
    return total
