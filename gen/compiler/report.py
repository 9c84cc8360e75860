"""Map a whole network and report it: per-layer rows, network totals, and the text table of ``map-report``."""

import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from hw import checks
from hw.formats.mapping import CrossbarGeometry

from gen.compiler.autoprune import layer_prune, load_ratios
from gen.compiler.energy import EnergyTable
from gen.compiler.metrics import layer_metrics, network_totals
from gen.compiler.networks import network
from gen.compiler.prune import parse_prune
from gen.compiler.rram_map import columns_per_output
from gen.compiler.sme import sme_levels
from gen.compiler.sparse_map import SLOTS, dense_stats, parse_strategy, plan_layer
from gen.compiler.workloads import (QUANTIZERS, check_quant, layer_matrices, load_npz, prepare_layer,
                                    synthetic_weights)

__all__ = ["Progress", "prepared_layers", "map_prepared", "map_strategies", "map_report", "format_report"]

_STAT_KEYS = ("crossbars", "ous", "ous_max_per_xbar", "adc_per_plane", "drives_per_plane", "cells_used",
              "nonzero_cells", "mapped_cells", "k", "n")
_MAX_KEYS = ("ous_max_per_xbar", "k", "n")     # matrices of a layer run on their own crossbars, in parallel


class Progress:
    """A one-line progress bar on a stream (stderr by default); silent when ``enabled`` is false."""

    def __init__(self, total, label, *, enabled=True, stream=None, width=30):
        self.total, self.label, self.enabled, self.width = total, label, enabled, width
        self.stream = stream or sys.stderr
        self.done, self.t0 = 0, time.perf_counter()

    def step(self, what=""):
        self.done += 1
        if not self.enabled:
            return
        filled = self.width * self.done // max(self.total, 1)
        print(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
              f"{time.perf_counter() - self.t0:5.1f} s {what[:28]:<28}", end="", file=self.stream, flush=True)
        if self.done == self.total:
            print(file=self.stream, flush=True)


def prepared_layers(*, net=None, weights=None, prune="none", quant="int8", seed=0, geometry=None, onnx=None):
    """Yield ``(layer, q, report)`` for every layer of ``net`` (synthetic weights), of a ``.npz`` file
    (``weights``) or of an ONNX model (``onnx``: :func:`gen.compiler.onnx_import.import_onnx`, its Conv/Gemm/MatMul
    weights with the positions from shape inference and depthwise convs detected).

    OU-granular pruning (``ou:ratio=…``) defaults its block to the OU of ``geometry``: ``ou_rows`` rows ×
    ``max(1, ou_cols // columns_per_output)`` outputs (int8 weights), so the pruned blocks are whole OUs.
    ``ratios:FILE.json`` / ``ratios:LAYER=RATIO,…`` prunes each layer at its own ratio
    (:func:`gen.compiler.autoprune.load_ratios`); it must name every layer and no other.
    """
    if sum(x is not None for x in (net, weights, onnx)) != 1:
        raise ValueError("give exactly one of --net, --weights and --onnx")
    name, params = parse_prune(prune)
    if name == "ou" and geometry is not None:
        per_output = columns_per_output(weight_bits=QUANTIZERS.get(quant, 8), cell_bits=geometry.cell_bits,
                                        encoding="differential")
        params = {"ou_rows": geometry.ou_rows, "outputs_per_group": max(1, geometry.ou_cols // per_output), **params}
    check_quant(quant)
    if onnx is not None:
        from gen.compiler.onnx_import import import_onnx

        source = [(layer.layer(), layer.weights) for layer in import_onnx(onnx).layers]
    else:
        source = (load_npz(weights) if weights is not None else
                  ((layer, None) for layer in network(net)))
    per_layer = None
    if name == "ratios":                  # per-layer ratios (an AUTO-PRUNE search result): every layer, no other
        method, per_layer = load_ratios(params["spec"])
        source = list(source)
        names = [layer.name for layer, _ in source]
        missing, unknown = [n for n in names if n not in per_layer], [n for n in per_layer if n not in names]
        if missing or unknown:
            raise ValueError(f"--prune ratios:{params['spec']}: layers without a ratio {missing}, ratios of unknown "
                             f"layers {unknown}: allowed one ratio for each of {', '.join(names)}")
    for index, (layer, w) in enumerate(source):
        if w is None:
            w = synthetic_weights(layer, seed=seed, index=index)
        if per_layer is not None:
            name, params = layer_prune(method, per_layer[layer.name], geometry, quant=quant)
        q, report = prepare_layer(layer, w, prune_name=name, prune_params=params, quant=quant,
                                  cell_bits=2 if geometry is None else geometry.cell_bits)
        yield layer, q, report


def map_prepared(layer, q, geometry, *, strategy, **kw):
    """One report row: plan every matrix of the layer (several for a chunked depthwise conv) and sum."""
    return map_strategies(layer, q, geometry, strategies=[strategy], **kw)[strategy]


def map_strategies(layer, q, geometry, *, strategies, weight_bits, round_error=0, input_bits=8, input_signed=True,
                   dac_bits=1, adc_bits=None, table=None, slots="shared"):
    """Report rows of one prepared layer for several strategies (the matrices' layouts are shared between them);
    ``slots`` as :func:`gen.compiler.sparse_map.plan_layer` takes it."""
    per_output = columns_per_output(weight_bits=weight_bits, cell_bits=geometry.cell_bits, encoding="differential")
    matrices = layer_matrices(layer, q, xbar_rows=geometry.xbar_rows, xbar_cols=geometry.xbar_cols,
                              per_output=per_output)
    caches = [{} for _ in matrices]
    dense = dict.fromkeys(_STAT_KEYS, 0)
    for m in matrices:
        _combine(dense, dense_stats(*m.shape, geometry, per_output=per_output) | {"k": m.shape[0], "n": m.shape[1]})
    rows = {}
    for strategy in strategies:
        stats = dict.fromkeys(_STAT_KEYS, 0)
        rounding, order, packing, plans = [], set(), set(), []
        for m, cache in zip(matrices, caches):
            plan = plan_layer(m, geometry, strategy=strategy, weight_bits=weight_bits, round_error=round_error,
                              slots=slots, cache=cache)
            plans.append(plan)
            _combine(stats, plan.stats | {"k": m.shape[0], "n": m.shape[1]})
            order.add(plan.stats.get("order", "-"))
            packing.add(plan.stats.get("slots", "-"))
            if "rounding" in plan.info:
                rounding.append(plan.info["rounding"])
        row = {"name": layer.name, "kind": layer.kind, "shape": list(layer.shape), "positions": layer.positions,
               "weights": int(q.size), "nonzero_weights": int(np.count_nonzero(q)), "order": "/".join(sorted(order)),
               "slots": "/".join(sorted(packing)),
               **layer_metrics(stats, dense, geometry=geometry, positions=layer.positions, n_outputs=layer.cout,
                               input_bits=input_bits, input_signed=input_signed, dac_bits=dac_bits,
                               adc_bits=adc_bits, table=table)}
        if "bit_slice_crossbars" in plan.stats:
            row["bit_slice_crossbars"] = sum(p.stats["bit_slice_crossbars"] for p in plans)
        if rounding:
            row["rounding"] = {"changed": sum(r["changed"] for r in rounding),
                               "max_abs_error": max(r["max_abs_error"] for r in rounding)}
        rows[strategy] = row
    return rows


def _combine(total, stats):
    for key in _STAT_KEYS:
        # the matrices of a layer sit on their own crossbars and run in parallel: cycles follow the busiest
        total[key] = max(total[key], int(stats[key])) if key in _MAX_KEYS else total[key] + int(stats[key])


def map_report(*, net=None, weights=None, onnx=None, prune="none", quant="int8", strategy="dense", xbar=(128, 128),
               ou=(9, 8), cell_bits=2, round_error=0, input_bits=8, dac_bits=1, adc_bits=None, seed=0,
               table=None, progress=False, slots="shared") -> dict:
    """Prune, quantize and map a network; returns ``{"settings", "layers", "totals"}`` (JSON-ready).

    Every argument is checked before any work (``TypeError``/``ValueError`` naming it): ``input_bits`` 2 … 16,
    ``dac_bits`` 1 or 2 and ``adc_bits`` 1 … 16 or None (lossless) as :class:`gen.rram.config.RramTileConfig`
    allows, ``round_error`` and ``seed`` 0 or more, ``slots`` ``"shared"`` or ``"single"``
    (:func:`gen.compiler.sparse_map.plan_layer`).
    """
    for name, pair in (("xbar", xbar), ("ou", ou)):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            checks.fail(name, pair, "is not a (rows, cols) pair", "two integers, e.g. (128, 128)", exc=TypeError)
    if net is not None:
        checks.check_str("net", net, "a network name")
    checks.check_str("prune", prune, "a prune spec such as 'nm:2:4'")
    check_quant(quant)
    round_error = checks.check_int("round_error", round_error, 0)
    input_bits = checks.check_int("input_bits", input_bits, 2, 16, allowed="2 … 16 (signed inputs)")
    dac_bits = checks.check_choice("dac_bits", dac_bits, (1, 2))
    if adc_bits is not None:   # 0 is not "lossless": that is None
        adc_bits = checks.check_int("adc_bits", adc_bits, 1, 16, allowed="1 … 16 or None (lossless)")
    seed = checks.check_int("seed", seed, 0)
    if table is not None:
        checks.check_instance("table", table, EnergyTable)
    checks.check_bool("progress", progress)
    geometry = CrossbarGeometry(xbar_rows=xbar[0], xbar_cols=xbar[1], ou_rows=ou[0], ou_cols=ou[1],
                                cell_bits=cell_bits)
    parse_strategy(strategy)
    quant_name, quant_params = check_quant(quant)
    if quant_name == "sme":            # a slice budget the cells cannot hold fails before any work
        sme_levels(weight_bits=QUANTIZERS["sme"], cell_bits=cell_bits, terms=quant_params["terms"])
    slots = checks.check_choice("slots", slots, SLOTS)
    table = table or EnergyTable()
    weight_bits = QUANTIZERS.get(quant, 8)
    layers = list(network(net)) if net is not None else None
    bar = Progress(len(layers) if layers else 0, f"map {net or weights or onnx}", enabled=progress and bool(layers))
    rows = []
    skipped = []
    if onnx is not None:
        from gen.compiler.onnx_import import import_onnx

        skipped = [{"node": name, "op": op, "note": note} for name, op, note in import_onnx(onnx).skipped]
    for layer, q, prep in prepared_layers(net=net, weights=weights, prune=prune, quant=quant, seed=seed,
                                          geometry=geometry, onnx=onnx):
        row = map_prepared(layer, q, geometry, strategy=strategy, weight_bits=weight_bits, round_error=round_error,
                           input_bits=input_bits, dac_bits=dac_bits, adc_bits=adc_bits, table=table, slots=slots)
        row["prune"] = {k: v for k, v in prep["prune"].items() if k not in ("patterns",)}
        if "sme" in prep:
            row["quant_error"] = prep["sme"]
        rows.append(row)
        bar.step(layer.name)
    settings = {"net": net, "weights": None if weights is None else str(weights),
                "onnx": None if onnx is None else str(onnx), "skipped": skipped,
                "weight_source": "user .npz" if weights is not None else
                "ONNX initializers (positions from shape inference)" if onnx is not None else
                f"synthetic: seeded Laplacian per output channel (seed {seed}), not trained",
                "prune": prune, "quant": quant, "mapping": strategy, "slots": slots, "xbar": list(xbar), "ou": list(ou),
                "cell_bits": cell_bits, "weight_bits": weight_bits, "round_error": round_error,
                "input_bits": input_bits, "dac_bits": dac_bits, "energy_table": table.to_dict()}
    totals = network_totals(rows, geometry)
    if any("bit_slice_crossbars" in r for r in rows):
        totals["bit_slice_crossbars"] = sum(r.get("bit_slice_crossbars", 0) for r in rows)
    errors = [r["quant_error"]["rel_rms_error"] for r in rows if "quant_error" in r]
    if errors:
        totals["quant_rel_rms_error"] = {"mean": float(np.mean(errors)), "max": float(np.max(errors))}
    return {"settings": settings, "layers": rows, "totals": totals}


def _times(x):
    """A ratio as ``1.23x``; ``n/a`` when undefined (nothing mapped: a sparse mapping of all-zero weights)."""
    return f"{x:.2f}x" if math.isfinite(x) else "n/a"


def _fmt(x):
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.3e}"
    return str(x)


def format_report(result: dict) -> str:
    """The per-layer table and the totals as text."""
    s = result["settings"]
    lines = [f"map-report: {s['net'] or s['weights'] or s.get('onnx')}  prune {s['prune']}  quant {s['quant']}  mapping {s['mapping']}  "
             f"slots {s.get('slots', 'shared')}  xbar {s['xbar'][0]}x{s['xbar'][1]}  OU {s['ou'][0]}x{s['ou'][1]}  cell bits {s['cell_bits']}",
             f"weights: {s['weight_source']}",
             *[f"skipped: {k['node']} ({k['op']}): {k['note']}" for k in s.get("skipped", [])],
             ""]
    header = (f"{'layer':<22} {'kind':<4} {'K×N':>11} {'zeros':>6} {'xbars':>6} {'dense':>6} {'fill':>6} {'util':>6} "
              f"{'OU act':>10} {'ADC conv':>10} {'cycles':>10} {'energy µJ':>10}")
    lines.append(header)
    for r in result["layers"]:
        shape = r["shape"]
        k = int(np.prod(shape[1:]))
        kn = f"{k}×{shape[0]}"
        lines.append(f"{r['name'][:22]:<22} {r['kind']:<4} {kn:>11} {1 - r['nonzero_weights'] / max(r['weights'], 1):>6.1%} "
                     f"{r['crossbars']:>6} {r['dense_crossbars']:>6} {r['fill']:>6.1%} {r['utilization']:>6.1%} "
                     f"{r['ou_activations']:>10.3g} {r['adc_conversions']:>10.3g} {r['cycles']:>10.3g} "
                     f"{r['energy_pj'] / 1e6:>10.3f}")
    t = result["totals"]
    utilization, fill = (f"{t[k]:.1%}" if math.isfinite(t[k]) else "n/a" for k in ("utilization", "fill"))
    lines += ["", f"total: {t['crossbars']} crossbars (dense {t['dense_crossbars']}: area efficiency "
                  f"{_times(t['area_efficiency'])}), fill {fill}, utilization {utilization}, "
                  f"{t['nonzero_weights']}/{t['weights']} non-zero weights",
              f"       {t['ou_activations']:.4g} OU activations, {t['adc_conversions']:.4g} ADC conversions "
              f"({_times(t['adc_reduction'])} fewer than dense), {t['cycles']:.4g} cycles ({_times(t['speedup'])}), "
              f"{t['energy_pj'] / 1e6:.3f} µJ per inference ({_times(t['energy_efficiency'])})"]
    if "bit_slice_crossbars" in t:
        lines.append(f"       bit-slice mapping (one significance per crossbar): {t['bit_slice_crossbars']} crossbars, "
                     f"squeeze-out: {t['crossbars']}")
    if "quant_rel_rms_error" in t:
        e = t["quant_rel_rms_error"]
        lines.append(f"       SME weight error (relative RMS vs float): mean {e['mean']:.2%}, max {e['max']:.2%} per layer")
    return "\n".join(lines)
