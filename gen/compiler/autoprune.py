"""AUTO-PRUNE: a search over per-layer pruning ratios whose reward is the mapped crossbar count (seed 003).

The paper trains a reinforcement-learning agent to pick each layer's pruning ratio so that the OU-sparse
mapping with input index needs as few crossbars as possible at a given accuracy. This module does the same with
a documented deterministic optimiser and the real mapper:

Crossbar table (:func:`crossbar_table`)
    For every layer and every ratio of a grid (``0, step, 2·step, … ≤ max_ratio``), the layer is pruned
    (``magnitude``: unstructured, the smallest ``|w|``; or ``ou``: whole OU row groups,
    :func:`gen.compiler.prune.ou_structured` with the geometry's OU), quantized (int8 by default, as
    ``map-report`` does) and planned by :func:`gen.compiler.sparse_map.plan_layer` with the ``ou-sparse`` strategy;
    the table holds its crossbars. A layer's *levels* are its crossbar-count breakpoints: for every count the
    grid reaches, the smallest ratio reaching it (a larger ratio at the same count only costs accuracy).
Greedy breakpoint descent (:func:`search`)
    Start from every layer at ratio 0 (the constraint must hold there). Each round tries, for every layer not
    frozen, its next level (the fewest extra pruned weights that save a crossbar); the candidate is evaluated by the
    ``evaluate(ratios) -> drop`` callback (accuracy drop in points on the trained network, passed in from ``sim``,
    or a proxy such as :func:`energy_proxy`). Among the candidates meeting ``drop ≤ max_drop`` the one with the
    smallest drop increase per crossbar saved is taken (ties: more crossbars saved, then layer order); a layer
    whose next level breaks the constraint is frozen (pruning other layers further only lowers accuracy). The
    search ends when every layer is frozen or at its last level. Evaluations are cached by ratios.
Uniform baseline (:func:`uniform`)
    One ratio for every layer: the uniform grid's breakpoints of the total crossbar count, evaluated in increasing
    ratio until ``patience`` consecutive ones break the constraint; the best feasible one. :func:`search` runs it
    first and starts the greedy descent from the better of ratio 0 and that point, so the search never needs more
    crossbars than the best uniform ratio at the same constraint.

No randomness: the result is a function of the weights, the geometry and the callback (whose own seed, e.g. the
fine-tuning's, makes it deterministic). The result saves to JSON (:meth:`SearchResult.save`) and
``map-report --prune ratios:FILE.json`` maps it (:func:`load_ratios`, :func:`layer_prune`).
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hw import checks
from hw.formats.mapping import CrossbarGeometry

from gen.compiler.networks import Layer
from gen.compiler.prune import prune
from gen.compiler.rram_map import columns_per_output
from gen.compiler.sparse_map import plan_layer
from gen.compiler.workloads import QUANTIZERS, layer_matrices, prepare_layer

__all__ = ["METHODS", "QUANTS", "STRATEGY", "ratio_grid", "layer_prune", "layer_crossbars", "crossbar_table", "energy_proxy", "SearchResult",
           "search", "uniform", "load_ratios", "parse_ratios"]

METHODS = ("magnitude", "ou")
"""Pruning granularities the search can use: unstructured magnitude (then ou-sparse compaction), or whole OUs."""
STRATEGY = "ou-sparse"
"""The mapping the reward counts: AUTO-PRUNE's OU-sparse mapping with input index."""


def ratio_grid(step: float = 0.01, max_ratio: float = 0.95) -> np.ndarray:
    """``0, step, 2·step, … ≤ max_ratio`` (rounded to 6 decimals, so the ratios print and save exactly)."""
    step = checks.check_float("step", step, 1e-4, 0.5, allowed="1e-4 … 0.5")
    max_ratio = checks.check_float("max_ratio", max_ratio, 0.0, 0.999, allowed="0 … 0.999")
    return np.round(np.arange(int(math.floor(max_ratio / step + 1e-9)) + 1) * step, 6)


# SME needs its term count (``sme:terms=T``): the search's quantizers are the plain ones
QUANTS = tuple(q for q in QUANTIZERS if q != "sme")


def layer_prune(method: str, ratio: float, geometry: CrossbarGeometry | None = None, *, quant: str = "int8"):
    """``(prune name, params)`` of one layer at ``ratio`` for :func:`gen.compiler.workloads.prepare_layer`: OU
    pruning gets the geometry's OU (``ou_rows`` rows × the outputs of one OU column group)."""
    checks.check_choice("method", method, METHODS)
    checks.check_float("ratio", ratio, 0.0, 1.0, allowed="0 … 1")
    if method == "magnitude":
        return "magnitude", {"ratio": float(ratio)}
    if geometry is None:
        return "ou", {"ratio": float(ratio)}
    per_output = columns_per_output(weight_bits=QUANTIZERS.get(quant, 8), cell_bits=geometry.cell_bits,
                                    encoding="differential")
    return "ou", {"ratio": float(ratio), "ou_rows": geometry.ou_rows,
                  "outputs_per_group": max(1, geometry.ou_cols // per_output)}


def _check_layers(layers):
    if isinstance(layers, (str, bytes, dict)) or not hasattr(layers, "__iter__"):
        checks.fail("layers", type(layers).__name__, "is not a sequence of (Layer, weights) pairs",
                    "[(gen.compiler.networks.Layer, array), ...] as gen.compiler.workloads.load_npz returns",
                    exc=TypeError)
    layers = list(layers)
    if not layers:
        checks.fail("layers", "[]", "is empty", "at least one (Layer, weights) pair")
    names = set()
    for i, pair in enumerate(layers):
        if not isinstance(pair, tuple) or len(pair) != 2:
            checks.fail(f"layers[{i}]", type(pair).__name__, "is not a (Layer, weights) pair",
                        "(gen.compiler.networks.Layer, array)", exc=TypeError)
        layer, w = pair
        checks.check_instance(f"layers[{i}][0]", layer, Layer)
        w = np.asarray(w)
        if w.dtype.kind != "f":
            checks.fail(f"layer {layer.name!r} weights", w.dtype, "are not float",
                        "float weights (the search prunes and quantizes them)", exc=TypeError)
        checks.check_float_array(f"layer {layer.name!r} weights", w)        # NaN has no magnitude to rank
        if w.shape != layer.shape:
            checks.fail(f"layer {layer.name!r} weights", list(w.shape), "do not match the layer",
                        f"shape {list(layer.shape)}")
        if layer.name in names:
            checks.fail("layer name", layer.name, "is not unique", "one entry per layer")
        names.add(layer.name)
    return layers


def layer_crossbars(layer: Layer, w, geometry: CrossbarGeometry, *, method: str = "magnitude", ratio: float = 0.0,
                    quant: str = "int8", dense: bool = False) -> int:
    """Crossbars of one layer pruned at ``ratio`` (float weights; integer weights are taken as quantized) and
    mapped ``ou-sparse`` — or, with ``dense``, mapped densely (the pruning does not change that count)."""
    checks.check_choice("quant", quant, QUANTS)
    name, params = layer_prune(method, ratio, geometry, quant=quant)
    q, _ = prepare_layer(layer, w, prune_name="none" if dense else name, prune_params=None if dense else params,
                         quant=quant)
    bits = QUANTIZERS[quant]
    per_output = columns_per_output(weight_bits=bits, cell_bits=geometry.cell_bits, encoding="differential")
    matrices = layer_matrices(layer, q, xbar_rows=geometry.xbar_rows, xbar_cols=geometry.xbar_cols,
                              per_output=per_output)
    strategy = "dense" if dense else STRATEGY
    return int(sum(plan_layer(m, geometry, strategy=strategy, weight_bits=bits).stats["crossbars"]
                   for m in matrices))


def crossbar_table(layers, geometry: CrossbarGeometry, *, method: str = "magnitude", step: float = 0.01,
                   max_ratio: float = 0.95, quant: str = "int8", progress=None) -> dict:
    """Crossbars of every layer at every grid ratio, with the real mapper (see the module docstring).

    Returns
    -------
    dict
        ``grid`` (the ratios), ``crossbars`` ``{layer: [crossbars at each grid ratio]}`` (ou-sparse), ``dense``
        ``{layer: crossbars of the dense mapping}``, ``method``, ``quant``.
    """
    layers = _check_layers(layers)
    checks.check_instance("geometry", geometry, CrossbarGeometry)
    checks.check_choice("method", method, METHODS)
    checks.check_choice("quant", quant, QUANTS)
    grid = ratio_grid(step, max_ratio)
    table, dense = {}, {}
    for layer, w in layers:
        if progress is not None:
            progress(f"crossbar table: {layer.name} ({len(grid)} ratios)")
        w = np.asarray(w)
        dense[layer.name] = layer_crossbars(layer, w, geometry, quant=quant, dense=True)
        table[layer.name] = [layer_crossbars(layer, w, geometry, method=method, ratio=float(r), quant=quant)
                             for r in grid]
    return {"grid": grid.tolist(), "crossbars": table, "dense": dense, "method": method, "quant": quant}


def _levels(grid, counts):
    """``[(grid index, crossbars)]``: the smallest ratio of every crossbar count below all smaller ratios'."""
    out = []
    for i, c in enumerate(counts):
        if not out or c < out[-1][1]:
            out.append((i, c))
    return out


def energy_proxy(layers, *, method: str = "magnitude", geometry: CrossbarGeometry | None = None):
    """A proxy of the accuracy drop where none can be measured: ``evaluate(ratios)`` = the mean over layers of the
    percentage of each layer's squared-weight energy that pruning removes (a layer's pruned ``Σ w²`` / its
    ``Σ w²`` · 100). It is a proxy, not an accuracy: it only ranks ratios, small layers count as much as big ones."""
    layers = _check_layers(layers)
    checks.check_choice("method", method, METHODS)
    cache = {}

    def lost(layer, w, ratio):
        key = (layer.name, ratio)
        if key not in cache:
            name, params = layer_prune(method, ratio, geometry)
            keep, _ = prune(w, name, params)
            total = float(np.sum(np.square(w, dtype=np.float64)))
            cache[key] = 100.0 * float(np.sum(np.square(w[~keep], dtype=np.float64))) / total if total else 0.0
        return cache[key]

    def evaluate(ratios):
        return float(np.mean([lost(layer, np.asarray(w), float(ratios[layer.name])) for layer, w in layers]))

    return evaluate


@dataclass
class SearchResult:
    """What :func:`search` / :func:`uniform` found.

    Attributes
    ----------
    ratios : dict
        ``{layer: pruning ratio}``.
    crossbars, dense : dict
        ``{layer: crossbars}`` of the ou-sparse mapping at ``ratios`` and of the dense mapping.
    drop : float
        ``evaluate(ratios)``: the accuracy drop (points) or the proxy's value.
    max_drop : float
    method : str
    geometry : dict
        ``xbar_rows``, ``xbar_cols``, ``ou_rows``, ``ou_cols``, ``cell_bits``.
    evaluations : list
        Every evaluated point ``{"ratios", "crossbars", "drop", "feasible"}`` in order.
    kind : str
        ``"search"`` (greedy breakpoint descent) or ``"uniform"``.
    """

    ratios: dict
    crossbars: dict
    dense: dict
    drop: float
    max_drop: float
    method: str
    geometry: dict
    evaluations: list = field(default_factory=list)
    kind: str = "search"

    @property
    def total(self) -> int:
        return int(sum(self.crossbars.values()))

    @property
    def dense_total(self) -> int:
        return int(sum(self.dense.values()))

    @property
    def reduction(self) -> float:
        """Dense crossbars / ou-sparse crossbars (the crossbar compression)."""
        return self.dense_total / self.total if self.total else math.inf

    def to_dict(self) -> dict:
        return {"kind": self.kind, "method": self.method, "strategy": STRATEGY, "ratios": self.ratios,
                "crossbars": self.crossbars, "dense": self.dense, "total": self.total,
                "dense_total": self.dense_total, "reduction": self.reduction, "drop": self.drop,
                "max_drop": self.max_drop, "geometry": self.geometry, "evaluations": len(self.evaluations)}

    def save(self, path) -> Path:
        """Write :meth:`to_dict` as JSON (what ``map-report --prune ratios:FILE.json`` reads)."""
        path = Path(checks.check_writable_file("path", path))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path


class _Evaluator:
    """The callback, checked, cached by ratios, and recorded."""

    def __init__(self, evaluate, names, grid, table, progress):
        if not callable(evaluate):
            checks.fail("evaluate", type(evaluate).__name__, "is not callable", "evaluate(ratios) -> drop",
                        exc=TypeError)
        self.evaluate, self.names, self.grid, self.table, self.progress = evaluate, names, grid, table, progress
        self.cache, self.log = {}, []

    def ratios(self, index):
        return {n: float(self.grid[index[n]]) for n in self.names}

    def crossbars(self, index):
        return {n: int(self.table[n][index[n]]) for n in self.names}

    def __call__(self, index, max_drop):
        key = tuple(index[n] for n in self.names)
        if key not in self.cache:
            ratios = self.ratios(index)
            if self.progress is not None:
                self.progress(f"evaluate {len(self.cache) + 1}: {sum(self.crossbars(index).values())} crossbars, "
                              + ", ".join(f"{n} {r:g}" for n, r in ratios.items()))
            drop = self.evaluate(dict(ratios))
            if isinstance(drop, bool) or not isinstance(drop, (int, float, np.floating, np.integer)) \
                    or not math.isfinite(drop):
                checks.fail("evaluate(ratios)", drop, "is not a finite number", "the accuracy drop in points")
            self.cache[key] = float(drop)
            self.log.append({"ratios": ratios, "crossbars": sum(self.crossbars(index).values()),
                             "drop": float(drop), "feasible": float(drop) <= max_drop})
        return self.cache[key]


def _prepare(layers, geometry, evaluate, max_drop, method, step, max_ratio, quant, table, progress):
    layers = _check_layers(layers)
    checks.check_instance("geometry", geometry, CrossbarGeometry)
    max_drop = checks.check_float("max_drop", max_drop, 0.0, 100.0, allowed="0 … 100 points")
    if table is None:
        table = crossbar_table(layers, geometry, method=method, step=step, max_ratio=max_ratio, quant=quant,
                               progress=progress)
    else:
        checks.check_instance("table", table, dict)
        if table.get("method") != method or set(table.get("crossbars", {})) != {layer.name for layer, _ in layers}:
            checks.fail("table", checks.Text(f"method {table.get('method')!r}, layers {sorted(table.get('crossbars', {}))}"),
                        "does not match the search", f"a crossbar_table of method {method!r} of the same layers")
    names = [layer.name for layer, _ in layers]
    ev = _Evaluator(evaluate, names, np.asarray(table["grid"]), table["crossbars"], progress)
    return names, table, ev, max_drop


def _result(kind, ev, index, table, max_drop, method, geometry):
    return SearchResult(ratios=ev.ratios(index), crossbars=ev.crossbars(index), dense=dict(table["dense"]),
                        drop=ev.cache[tuple(index[n] for n in ev.names)], max_drop=max_drop, method=method,
                        geometry={"xbar_rows": geometry.xbar_rows, "xbar_cols": geometry.xbar_cols,
                                  "ou_rows": geometry.ou_rows, "ou_cols": geometry.ou_cols,
                                  "cell_bits": geometry.cell_bits},
                        evaluations=list(ev.log), kind=kind)


def _start(ev, names, max_drop):
    zero = dict.fromkeys(names, 0)
    drop = ev(zero, max_drop)
    if drop > max_drop:
        checks.fail("max_drop", max_drop, f"is not met even without pruning (the callback gives {drop:g})",
                    f"max_drop ≥ {drop:g}")
    return zero


def _uniform(names, table, ev, max_drop, patience):
    grid = table["grid"]
    totals = [sum(table["crossbars"][n][i] for n in names) for i in range(len(grid))]
    best = _start(ev, names, max_drop)
    misses = 0
    for i, _ in _levels(grid, totals)[1:]:
        index = dict.fromkeys(names, i)
        if ev(index, max_drop) <= max_drop:
            best, misses = index, 0
        else:
            misses += 1
            if misses >= patience:
                break
    return best


def _check_target(result, target, table, names):
    if target is None:
        return result
    floor = sum(min(table["crossbars"][n]) for n in names)
    if result.reduction + 1e-12 < target:
        best = result.dense_total / floor if floor else math.inf
        checks.fail("target", checks.Text(f"{target:g}× crossbar reduction"),
                    f"is not met: the best ratios under max_drop = {result.max_drop:g} give {result.reduction:.2f}× "
                    f"({result.total} of {result.dense_total} crossbars; {best:.2f}× at the largest ratios)",
                    f"a target ≤ {result.reduction:.2f}× or a larger max_drop")
    return result


def uniform(layers, geometry: CrossbarGeometry, evaluate, *, max_drop: float, method: str = "magnitude",
            step: float = 0.01, max_ratio: float = 0.95, quant: str = "int8", patience: int = 2, table=None,
            progress=None) -> SearchResult:
    """The best single ratio for all layers under ``evaluate(ratios) ≤ max_drop`` (see the module docstring)."""
    patience = checks.check_int("patience", patience, 1)
    names, table, ev, max_drop = _prepare(layers, geometry, evaluate, max_drop, method, step, max_ratio, quant,
                                          table, progress)
    best = _uniform(names, table, ev, max_drop, patience)
    return _result("uniform", ev, best, table, max_drop, method, geometry)


def search(layers, geometry: CrossbarGeometry, evaluate, *, max_drop: float, method: str = "magnitude",
           step: float = 0.01, max_ratio: float = 0.95, quant: str = "int8", patience: int = 2,
           target: float | None = None, table=None, progress=None) -> tuple[SearchResult, SearchResult]:
    """Per-layer ratios with the fewest ou-sparse crossbars under ``evaluate(ratios) ≤ max_drop``.

    Parameters
    ----------
    layers : sequence of (gen.compiler.networks.Layer, float ndarray)
        As :func:`gen.compiler.workloads.load_npz` returns them.
    geometry : CrossbarGeometry
    evaluate : callable
        ``evaluate({layer: ratio}) -> float``, the accuracy drop in points (or a proxy) of the network pruned at
        those ratios; called once per distinct point.
    max_drop : float
        The constraint, ``0 … 100``.
    method : str
        ``"magnitude"`` or ``"ou"`` (:data:`METHODS`).
    step, max_ratio : float
        The ratio grid (:func:`ratio_grid`).
    target : float, optional
        A crossbar reduction (dense / ou-sparse crossbars) the result must reach; ``ValueError`` naming it if not.
    table : dict, optional
        A :func:`crossbar_table` of the same layers, geometry and method (computed if not given).
    progress : callable, optional
        ``progress(text)`` before every evaluation.

    Returns
    -------
    (SearchResult, SearchResult)
        The searched per-layer ratios and the best uniform ratio (the baseline), both meeting the constraint.

    Raises
    ------
    TypeError, ValueError
        Bad arguments; ``max_drop`` not met even without pruning; ``target`` not met.
    """
    patience = checks.check_int("patience", patience, 1)
    if target is not None:
        target = checks.check_float("target", target, 1.0, allowed="a crossbar reduction ≥ 1")
    names, table, ev, max_drop = _prepare(layers, geometry, evaluate, max_drop, method, step, max_ratio, quant,
                                          table, progress)
    floor = sum(min(table["crossbars"][n]) for n in names)
    dense_total = sum(table["dense"].values())
    if target is not None and floor and dense_total < target * floor:     # floor 0: a layer pruned away
        checks.fail("target", checks.Text(f"{target:g}× crossbar reduction"),
                    f"is out of reach of any pruning on the grid: {dense_total} dense crossbars, at least {floor} "
                    f"ou-sparse ones at ratio {max(table['grid']):g} ({dense_total / floor:.2f}×)",
                    f"a target ≤ {dense_total / floor:.2f}×")
    uni = _uniform(names, table, ev, max_drop, patience)
    base = _result("uniform", ev, uni, table, max_drop, method, geometry)
    levels = {n: _levels(table["grid"], table["crossbars"][n]) for n in names}

    def level_of(n, i):                   # the lowest level whose ratio is ≤ grid index i and count equal
        count = table["crossbars"][n][i]
        return next(k for k, (_, c) in enumerate(levels[n]) if c <= count)

    zero = dict.fromkeys(names, 0)
    # start: the uniform point with each layer lowered to the smallest ratio of its crossbar count, if feasible
    start = {n: levels[n][level_of(n, uni[n])][0] for n in names}
    if ev(start, max_drop) > max_drop:
        start = uni
    if sum(table["crossbars"][n][start[n]] for n in names) >= sum(table["crossbars"][n][0] for n in names):
        start = zero
    index = dict(start)
    at = {n: level_of(n, index[n]) for n in names}
    frozen = set()
    while True:
        here = ev(index, max_drop)
        count = sum(table["crossbars"][n][index[n]] for n in names)
        best = None
        for order, n in enumerate(names):
            if n in frozen or at[n] + 1 >= len(levels[n]):
                continue
            cand = dict(index, **{n: levels[n][at[n] + 1][0]})
            saved = count - sum(table["crossbars"][m][cand[m]] for m in names)
            drop = ev(cand, max_drop)
            if drop > max_drop:
                frozen.add(n)
                continue
            key = ((drop - here) / saved, -saved, order)
            if best is None or key < best[0]:
                best = (key, n, cand)
        if best is None:
            break
        _, n, index = best
        at[n] += 1
    found = _result("search", ev, index, table, max_drop, method, geometry)
    if found.total > base.total:          # cannot happen (the descent starts at the uniform point); kept honest
        found = SearchResult(**{**base.__dict__, "kind": "search"})
    base.evaluations = found.evaluations
    return _check_target(found, target, table, names), base


def parse_ratios(text: str) -> dict:
    """``"conv1=0.1,conv2=0.68"`` → ``{"conv1": 0.1, "conv2": 0.68}`` (the inline form of ``--prune ratios:``)."""
    checks.check_str("ratios", text, "LAYER=RATIO,… or a .json file")
    out = {}
    for item in filter(None, text.split(",")):
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ValueError(f"--prune ratios:{text}: {item!r} is not LAYER=RATIO: allowed LAYER=RATIO,… or a "
                             ".json file of gen.compiler.autoprune")
        try:
            ratio = float(value)
        except ValueError:
            raise ValueError(f"--prune ratios:{text}: {name} = {value!r} is not a number: allowed 0 … 1") from None
        out[name] = checks.check_float(f"--prune ratios: {name}", ratio, 0.0, 1.0, allowed="0 … 1")
    if not out:
        raise ValueError(f"--prune ratios:{text} names no layer: allowed LAYER=RATIO,… or a .json file")
    return out


def load_ratios(spec: str) -> tuple[str, dict]:
    """``(method, {layer: ratio})`` of a ``--prune ratios:…`` value: a JSON file written by
    :meth:`SearchResult.save` (its ``method`` and ``ratios``), or the inline ``LAYER=RATIO,…`` (magnitude)."""
    checks.check_str("ratios", spec, "LAYER=RATIO,… or a .json file")
    if "=" in spec:
        return "magnitude", parse_ratios(spec)
    path = checks.check_readable_file("--prune ratios", spec)
    try:
        data = json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"--prune ratios:{spec}: not JSON ({error}): allowed a file written by "
                         "gen.compiler.autoprune (SearchResult.save)") from None
    if not isinstance(data, dict) or not isinstance(data.get("ratios"), dict):
        raise ValueError(f"--prune ratios:{spec}: no 'ratios' object: allowed a file written by "
                         "gen.compiler.autoprune (SearchResult.save)")
    method = checks.check_choice(f"--prune ratios:{spec}: method", data.get("method", "magnitude"), METHODS)
    ratios = {}
    for name, ratio in data["ratios"].items():
        ratios[name] = checks.check_float(f"--prune ratios:{spec}: {name}", ratio, 0.0, 1.0, allowed="0 … 1")
    return method, ratios
