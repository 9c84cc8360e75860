"""AUTO-PRUNE (seed 003): per-layer pruning ratios searched for the fewest OU-sparse crossbars at an accuracy.

The search is :func:`gen.compiler.autoprune.search` (greedy crossbar-breakpoint descent from the best uniform
ratio); its reward is the real mapper's crossbar count (``ou-sparse``, input index), its constraint the accuracy
drop of the trained digits CNN measured here (gen may not import sim, so :func:`digits_evaluator` is passed in):
prune every layer at its ratio (unstructured magnitude), masked fine-tuning on the train split, int8 quantization
(:func:`sim.network.golden.quantize`), int8 golden accuracy on the 450 test images; the drop is the shipped
``digits-int8``'s accuracy minus that, in points. ResNet-18 (synthetic weights) has no accuracy: its search uses
:func:`gen.compiler.autoprune.energy_proxy` with the budget the digits result spends — a proxy, stated as one.

Rows (:func:`rows`): digits searched (claim 3.3×, ≤ 1 point) and the digits uniform baseline (best single ratio at
≤ 1 point) on :data:`GEOMETRY`; digits searched on :data:`WORD_GEOMETRY` (one int8 output per OU column group,
with the drop of the fewest pruned weights that reach 3.3× there); ResNet-18 searched (proxy).
"""

import itertools

import numpy as np

from gen.compiler.autoprune import crossbar_table, energy_proxy, layer_crossbars, layer_prune, search
from gen.compiler.networks import Layer, network
from gen.compiler.prune import prune
from gen.compiler.workloads import synthetic_weights
from gen.network.data import digits
from gen.network.spec import load
from gen.network.train import finetune
from hw.formats.mapping import CrossbarGeometry
from sim.network.golden import quantize
from sim.seeds import int8_accuracy, make_row

__all__ = ["CLAIM", "MAX_DROP", "GEOMETRY", "WORD_GEOMETRY", "RESNET_GEOMETRY", "FULL", "QUICK", "digits_layers", "digits_evaluator",
           "network_crossbars", "at_claim", "rows"]

CLAIM = 3.3                  # AUTO-PRUNE's crossbar compression
MAX_DROP = 1.0               # points (issue 14)
# the digits CNN's layers are 9×8, 72×16 and 16×10 (K × outputs): 32×32 crossbars of 2-bit cells keep a layer's
# dense mapping within a few crossbars (17 in all); 4-row OUs compact finely. 2-column OUs: an OU column group is
# one 2-bit slice (its + and − bitlines) of one output, so the compaction also drops the rows whose slice is zero
# (the high slices of small weights); WORD_GEOMETRY's 8-column groups hold a whole int8 output (word level only)
GEOMETRY = CrossbarGeometry(xbar_rows=32, xbar_cols=32, ou_rows=4, ou_cols=2, cell_bits=2)
WORD_GEOMETRY = CrossbarGeometry(xbar_rows=32, xbar_cols=32, ou_rows=4, ou_cols=8, cell_bits=2)
RESNET_GEOMETRY = CrossbarGeometry(xbar_rows=128, xbar_cols=128, ou_rows=8, ou_cols=2, cell_bits=2)
FULL = {"epochs": 40, "lr": 0.003, "seed": 0, "step": 0.01, "shift_search": True, "calib_images": None,
        "resnet_step": 0.1, "resnet_layers": None}
QUICK = {"epochs": 1, "lr": 0.003, "seed": 0, "step": 0.1, "shift_search": False, "calib_images": 200,
         "resnet_step": 0.1, "resnet_layers": 4}


def _geometry_settings(g):
    return {"xbar": [g.xbar_rows, g.xbar_cols], "ou": [g.ou_rows, g.ou_cols], "cell_bits": g.cell_bits,
            "weight_bits": 8, "encoding": "differential", "mapping": "ou-sparse (input index)"}


def digits_layers(fnet=None) -> list:
    """``[(gen.compiler.networks.Layer, float weights)]`` of the digits CNN's weighted layers."""
    fnet = load("digits-float") if fnet is None else fnet
    out = []
    for layer in fnet.weighted:
        w = layer.weight
        spec = (Layer(layer.name, "fc", w.shape[1], w.shape[0]) if w.ndim == 2 else
                Layer(layer.name, "conv", w.shape[1], w.shape[0], w.shape[2], 1))
        out.append((spec, w))
    return out


def digits_evaluator(*, epochs: int, lr: float, seed: int, fnet=None, shift_search: bool = True,
                     method: str = "magnitude", data=None, calib_images: int | None = None):
    """``evaluate(ratios) -> drop`` on the trained digits CNN (see the module docstring); ``evaluate.networks``
    holds the int8 network of every evaluated point (key: the ratios' items), ``evaluate.base`` the shipped int8
    accuracy. All-zero ratios are the shipped network itself (nothing to fine-tune). ``shift_search``: quantize
    with the train labels (each layer's shift lowered where that raises the train accuracy, as the shipped
    network was built; about 9 s per point); ``False`` (quick runs) keeps the calibrated shifts. ``method``:
    the pruning granularity (:data:`gen.compiler.autoprune.METHODS`; ``ou`` takes :data:`GEOMETRY`'s OU).
    ``data``: ``((train images, labels), (test images, labels))`` if already loaded (default
    :func:`gen.network.data.digits`). ``calib_images``: quantize with the first that many train images (quick
    runs; default all of them)."""
    fnet = load("digits-float") if fnet is None else fnet
    (x, y), (xt, yt) = (digits("train"), digits("test")) if data is None else data
    shipped = load("digits-int8")
    base = int8_accuracy(shipped, xt, yt)

    def evaluate(ratios):
        key = tuple(sorted(ratios.items()))
        if key not in evaluate.networks:
            if not any(ratios.values()):
                q = shipped
            else:
                mask = {name: prune(w, *layer_prune(method, ratios[name], GEOMETRY))[0]
                        for name, w in fnet.weights().items()}
                tuned = finetune(fnet, mask, x, y, epochs=epochs, lr=lr, seed=seed)
                q = quantize(tuned, x[:calib_images], labels=y[:calib_images] if shift_search else None)
            evaluate.networks[key] = (q, int8_accuracy(q, xt, yt))
        return 100.0 * (base - evaluate.networks[key][1])

    evaluate.networks, evaluate.base = {}, base
    return evaluate


def network_crossbars(qnet, geometry) -> tuple[dict, dict]:
    """``({layer: ou-sparse crossbars}, {layer: dense crossbars})`` of an int8 network's own integer weights (the
    fine-tuned network's zeros, not the search's table)."""
    sparse, dense = {}, {}
    for layer, w in digits_layers(qnet):
        sparse[layer.name] = layer_crossbars(layer, w, geometry)
        dense[layer.name] = layer_crossbars(layer, w, geometry, dense=True)
    return sparse, dense


def at_claim(table, sizes, target) -> dict:
    """The per-layer ratios (grid breakpoints) with the fewest pruned weights whose ou-sparse crossbars reach
    ``target``× the dense ones (``None`` if none): exhaustive over the breakpoints (small networks only)."""
    grid, names = table["grid"], list(table["crossbars"])
    budget = sum(table["dense"].values()) / target
    options = []
    for n in names:
        counts = table["crossbars"][n]
        options.append([(i, c) for i, c in enumerate(counts) if i == 0 or c < min(counts[:i])])
    best = None
    for combo in itertools.product(*options):
        if sum(c for _, c in combo) <= budget + 1e-9:
            pruned = sum(grid[i] * sizes[n] for n, (i, _) in zip(names, combo))
            if best is None or pruned < best[0]:
                best = (pruned, {n: float(grid[i]) for n, (i, _) in zip(names, combo)})
    return None if best is None else best[1]


def _row(network_name, weights, result_crossbars, dense, drop, settings, *, claim, note=None):
    return make_row("auto-prune", network_name, weights, "crossbar_reduction", claim=claim,
                    ours=sum(dense.values()) / max(sum(result_crossbars.values()), 1), settings=settings,
                    accuracy_drop=drop, accuracy_target=MAX_DROP if weights == "trained" else None, note=note)


def _digits_search(opts, geometry, fnet, data, progress):
    """The search at one geometry: ``(found, uniform, table, evaluate)``."""
    layers = digits_layers(fnet)
    evaluate = digits_evaluator(epochs=opts["epochs"], lr=opts["lr"], seed=opts["seed"], fnet=fnet,
                                shift_search=opts["shift_search"], data=data, calib_images=opts["calib_images"])
    table = crossbar_table(layers, geometry, step=opts["step"], max_ratio=0.95, progress=progress)
    found, uni = search(layers, geometry, evaluate, max_drop=MAX_DROP, step=opts["step"], table=table,
                        progress=progress)
    return found, uni, table, evaluate


def _point(evaluate, ratios, geometry, common, sizes, what):
    """Settings of one evaluated point, its crossbars counted from the fine-tuned int8 network's own weights."""
    q, acc = evaluate.networks[tuple(sorted(ratios.items()))]
    ours, dense = network_crossbars(q, geometry)
    zeros = sum(int(np.count_nonzero(layer.weight == 0)) for layer in q.weighted)
    settings = {**common, **_geometry_settings(geometry), "point": what, "ratios": ratios, "crossbars": ours,
                "crossbars_dense": dense, "crossbars_total": sum(ours.values()),
                "crossbars_dense_total": sum(dense.values()), "sparsity": zeros / sum(sizes.values()),
                "accuracy": acc}
    return ours, dense, round(100.0 * (evaluate.base - acc), 4), settings


def _evaluated(found):
    # every point the search evaluated, in order: the rejected ones show how far the next crossbar is
    return [{"ratios": e["ratios"], "crossbars": e["crossbars"], "accuracy_drop": round(e["drop"], 4),
             "feasible": e["feasible"]} for e in found.evaluations]


def _digits_rows(opts, progress):
    fnet = load("digits-float")
    layers = digits_layers(fnet)
    sizes = {layer.name: int(np.asarray(w).size) for layer, w in layers}
    data = digits("train"), digits("test")
    common = {"method": "magnitude (unstructured) + ou-sparse compaction", "dataset": "digits (sklearn), 450 test",
              "finetune": {"epochs": opts["epochs"], "lr": opts["lr"], "seed": opts["seed"], "split": "train"},
              "quantize": "sim.network.golden.quantize" + (", shift search on the train labels"
                                                           if opts["shift_search"] else ", calibrated shifts")
              + (f", calibrated on {opts['calib_images']} train images" if opts["calib_images"] else ""),
              "ratio_grid_step": opts["step"], "max_drop": MAX_DROP}
    out = []
    found, uni, table, evaluate = _digits_search(opts, GEOMETRY, fnet, data, progress)
    common["int8_base_accuracy"] = evaluate.base
    # the other granularity at the searched crossbar counts: whole OUs pruned (smallest ratio per layer reaching them)
    ou_table = crossbar_table(layers, GEOMETRY, method="ou", step=opts["step"], max_ratio=0.95)
    ou_ratios = {n: float(next((r for r, c in zip(ou_table["grid"], ou_table["crossbars"][n])
                                if c <= found.crossbars[n]), ou_table["grid"][-1])) for n in found.ratios}
    ou_drop = digits_evaluator(epochs=opts["epochs"], lr=opts["lr"], seed=opts["seed"], fnet=fnet,
                               shift_search=opts["shift_search"], method="ou", data=data,
                               calib_images=opts["calib_images"])(ou_ratios)
    ours, dense, drop, settings = _point(evaluate, found.ratios, GEOMETRY, common, sizes, "searched")
    settings.update(evaluations=len(evaluate.networks), evaluated=_evaluated(found), uniform_crossbars_total=uni.total,
                    ou_structured_same_crossbars={
                        "ratios": ou_ratios, "accuracy_drop": round(ou_drop, 4),
                        "crossbars": sum(ou_table["crossbars"][n][ou_table["grid"].index(r)]
                                         for n, r in ou_ratios.items())})
    met = sum(dense.values()) >= CLAIM * sum(ours.values())
    out.append(_row("digits", "trained", ours, dense, drop, settings, claim=CLAIM, note=None if met else
                    "3.3× is not reached at ≤ 1 point (settings.evaluated: the points the search rejected)"))
    ours, dense, drop, settings = _point(evaluate, uni.ratios, GEOMETRY, common, sizes, "uniform")
    out.append(_row("digits", "trained", ours, dense, drop, settings, claim=None,
                    note="uniform baseline: the best single ratio at the same ≤ 1 point constraint"))
    budget = energy_proxy(layers)(found.ratios)
    # one int8 output per OU column group (8 bitlines): word-level compaction only, no zero slices dropped
    found8, uni8, table8, evaluate8 = _digits_search(opts, WORD_GEOMETRY, fnet, data, progress)
    claim_ratios = at_claim(table8, sizes, CLAIM)
    ours, dense, drop, settings = _point(evaluate8, found8.ratios, WORD_GEOMETRY, common, sizes, "searched")
    settings.update(evaluations=len(evaluate8.networks), evaluated=_evaluated(found8),
                    uniform_crossbars_total=uni8.total, uniform_ratio=next(iter(uni8.ratios.values())))
    if claim_ratios is not None:
        evaluate8(claim_ratios)
        c_ours, _, c_drop, _ = _point(evaluate8, claim_ratios, WORD_GEOMETRY, common, sizes, "at the claim")
        settings["at_the_claim"] = {"ratios": claim_ratios, "crossbars_total": sum(c_ours.values()),
                                    "accuracy_drop": c_drop}
    met = sum(dense.values()) >= CLAIM * sum(ours.values())
    out.append(_row("digits", "trained", ours, dense, drop, settings, claim=CLAIM, note=(
        "OU 4×8: an OU column group holds one whole int8 output, so only all-zero weights free a row" + (
            "" if met or claim_ratios is None else
            f"; 3.3× needs conv2 ≥ {claim_ratios['conv2']:.0%} pruned, which costs "
            f"{settings['at_the_claim']['accuracy_drop']:.2f} points after masked fine-tuning"))))
    return out, budget


def _resnet_row(opts, budget, progress):
    layers = [(layer, synthetic_weights(layer, seed=0, index=i)) for i, layer in enumerate(network("resnet18"))]
    if opts["resnet_layers"]:
        layers = layers[:opts["resnet_layers"]]
    table = crossbar_table(layers, RESNET_GEOMETRY, step=opts["resnet_step"], max_ratio=0.95, progress=progress)
    found, uni = search(layers, RESNET_GEOMETRY, energy_proxy(layers), max_drop=round(budget, 6),
                        step=opts["resnet_step"], table=table)
    settings = {"method": "magnitude (unstructured) + ou-sparse compaction", **_geometry_settings(RESNET_GEOMETRY),
                "proxy": "mean over layers of the % of squared-weight energy pruned (gen.compiler.autoprune."
                         "energy_proxy), not an accuracy",
                "proxy_budget": round(budget, 4), "proxy_value": round(found.drop, 4),
                "layers": len(layers), "ratio_grid_step": opts["resnet_step"], "ratios": found.ratios,
                "crossbars": found.crossbars, "crossbars_dense": found.dense, "crossbars_total": found.total,
                "crossbars_dense_total": found.dense_total, "uniform_ratio": next(iter(uni.ratios.values())),
                "uniform_crossbars_total": uni.total, "uniform_reduction": uni.reduction}
    return _row("resnet18", "synthetic", found.crossbars, found.dense, None, settings, claim=CLAIM,
                note="proxy constraint (weight energy, budget = what the digits result spends), no accuracy: "
                     f"uniform at the same budget {uni.reduction:.2f}×")


def rows(*, quick: bool = False, progress=None) -> list[dict]:
    """The AUTO-PRUNE rows (see the module docstring); ``quick``: 1 fine-tuning epoch, a coarse grid, the first
    4 ResNet-18 layers."""
    opts = QUICK if quick else FULL
    if progress is not None:
        progress("auto-prune: digits CNN, searching per-layer ratios (masked fine-tuning per point)")
    out, budget = _digits_rows(opts, progress)
    if progress is not None:
        progress("auto-prune: ResNet-18 (synthetic), energy proxy")
    out.append(_resnet_row(opts, budget, progress))
    return out
