"""Seed 000: pattern pruning + connectivity pruning + kernel reordering, reproduced (issue 14, point 1).

The scheme (:func:`gen.compiler.prune.pattern`): every 3×3 kernel keeps ``k = 4`` weights in one of a library of
``P`` patterns, and connectivity pruning removes whole kernels (a ratio of the layer's ``O·I`` kernels). The
mapping is the compiler's ``kernel-reorder`` strategy on the v2 format (:mod:`gen.compiler.sparse_map`): outputs
with the same zero rows share a column group, every group stores only its non-zero im2col rows (a removed kernel
is a whole 9-row block of its output that disappears, a kept one 4 rows), and groups share slots through the
per-OU routing. Its *bound* is ``dense cells / kept cells = weights / non-zero weights`` of the mapped layers: the
area efficiency a mapping that wastes no cell would reach.

Rows (:func:`rows`), each metric against the traditional dense mapping of the same layers:

- ``vgg16`` and ``resnet18``, synthetic weights (:func:`gen.compiler.workloads.synthetic_weights`), their
  convolutions (the pattern-pruning papers report conv layers; the FC layers are left out, ResNet-18's 7×7 stem and
  1×1 downsample convs are mapped dense-valued — pattern pruning applies to 3×3 kernels only), on
  :data:`GEOMETRY`, at :data:`CONNECTIVITY`;
- ``digits``, the shipped trained CNN (:data:`gen.network.spec.SHIPPED`): its 3×3 ``conv2`` pattern-pruned with
  the same ``k`` and connectivity by :func:`pattern_finetune` (``conv1`` — one input channel, 72 weights — stays
  dense, the ``fc`` layer is not 3×3), int8-quantized (:func:`sim.network.golden.quantize`), its accuracy drop
  against the shipped int8 network, and its two conv layers mapped with ``map-report`` on :data:`TRAINED_GEOMETRY`.
"""

import tempfile
from pathlib import Path

import numpy as np

from hw import checks
from gen.compiler.metrics import network_totals
from gen.compiler.networks import network as network_layers
from gen.compiler.prune import pattern
from gen.compiler.report import map_prepared, map_report
from gen.compiler.workloads import prepare_layer, synthetic_weights
from gen.network.spec import Network
from hw.formats.mapping import CrossbarGeometry
from sim.seeds import make_row

__all__ = ["PAPER", "CLAIMS", "K", "P", "CONNECTIVITY", "GEOMETRY", "TRAINED_GEOMETRY", "STRATEGY", "TRAINED_LAYERS",
           "ACCURACY_TARGET", "RECIPE", "QUICK_RECIPE", "prune_spec", "synthetic_figures", "dead_input_mask",
           "pattern_finetune", "network_npz", "trained_figures", "rows", "accuracy_sweep", "main"]

PAPER = "pattern-kernel-reorder"
CLAIMS = {"crossbar_area_efficiency": 4.16, "energy_efficiency": 1.98}    # the low ends of 4.16–5.20× and 1.98–2.15×
K = 4                          # weights kept per 3×3 kernel
P = 32                         # patterns in a layer's library
CONNECTIVITY = 0.5             # kernels removed per pruned layer
# the mapping bench's geometry (sim/bench/mapping.py): 128×128 crossbars, 9×8 OUs (one 3×3 kernel per OU row group),
# 2-bit cells, int8 weights (differential: 8 bitlines per output, so a column group is one output)
GEOMETRY = {"xbar_rows": 128, "xbar_cols": 128, "ou_rows": 9, "ou_cols": 8, "cell_bits": 2}
# the digits CNN's conv2 is a 72 × 16 matrix (128 bitlines): on 128×128 crossbars every mapping is one crossbar;
# 36×32 crossbars (four 9-row OU groups × four 8-bitline outputs) keep the same OU and cells at its scale
TRAINED_GEOMETRY = {"xbar_rows": 36, "xbar_cols": 32, "ou_rows": 9, "ou_cols": 8, "cell_bits": 2}
STRATEGY = "kernel-reorder"
TRAINED_LAYERS = ("conv2",)    # the digits CNN's layers pattern-pruned (see the module docstring)
ACCURACY_TARGET = 1.0          # points of int8 test accuracy
# Fine-tuning (pattern_finetune): connectivity raised to its target in `steps` straight-through stages of `epochs`
# each, then `final_epochs` of masked fine-tuning; all with the unpruned network as teacher (distillation 0.5).
RECIPE = {"steps": 5, "epochs": 10, "final_epochs": 30, "lr": 0.005, "final_lr": 0.002, "seed": 0}
QUICK_RECIPE = {"steps": 1, "epochs": 1, "final_epochs": 1, "lr": 0.005, "final_lr": 0.002, "seed": 0}
_QUICK_LAYERS = 4              # quick: the first conv layers of each network


def prune_spec(*, k: int = K, n_patterns: int = P, connectivity: float = CONNECTIVITY) -> str:
    """The ``--prune`` spec of the scheme, e.g. ``pattern:k=4,P=32,connectivity=0.5``."""
    return f"pattern:k={k},P={n_patterns},connectivity={connectivity:g}"


def _geometry(g):
    return CrossbarGeometry(**g)


def synthetic_figures(net: str, *, connectivity: float = CONNECTIVITY, n_patterns: int = P, k: int = K,
                      group: int = 1, geometry: dict = GEOMETRY, quick: bool = False, seed: int = 0,
                      progress=None) -> dict:
    """Pattern-prune, quantize (int8 per channel) and map the conv layers of ``net`` (synthetic weights, seed
    ``seed``) with :data:`STRATEGY`; returns the network totals (:func:`gen.compiler.metrics.network_totals`) plus
    ``bound`` (weights / non-zero weights), ``bound_ratio`` (area efficiency / bound), ``sparsity`` and
    ``layers`` (how many were mapped). ``quick`` maps only the first few conv layers; ``group`` shares patterns
    between that many consecutive outputs (:func:`gen.compiler.prune.pattern`)."""
    checks.check_float("connectivity", connectivity, 0.0, 1.0)
    layers = [(i, layer) for i, layer in enumerate(network_layers(net)) if layer.kind != "fc"]
    if quick:
        layers = layers[:_QUICK_LAYERS]
    g = _geometry(geometry)
    params = {"k": k, "P": n_patterns, "connectivity": connectivity, "group": group}
    rows = []
    for index, layer in layers:
        if progress is not None:
            progress(f"{net} {layer.name}: pattern + {STRATEGY}")
        q, _ = prepare_layer(layer, synthetic_weights(layer, seed=seed, index=index), prune_name="pattern",
                             prune_params=params)
        rows.append(map_prepared(layer, q, g, strategy=STRATEGY, weight_bits=8))
    return _with_bound(network_totals(rows, g), len(rows))


def _with_bound(totals, n_layers):
    bound = totals["weights"] / totals["nonzero_weights"] if totals["nonzero_weights"] else float("inf")
    return {**totals, "bound": bound, "bound_ratio": totals["area_efficiency"] / bound,
            "sparsity": 1 - totals["nonzero_weights"] / totals["weights"], "layers": n_layers}


def dead_input_mask(network: Network, mask: dict) -> dict:
    """``mask`` (``{layer: bool array}``, True = kept; missing layers keep everything) extended to the weights that
    read a *dead* channel: an output channel all of whose weights are pruned computes exactly 0 (no biases; ReLU
    and max-pooling keep 0), so the next weighted layer's weights on it never contribute and are pruned too.

    Exact in float. It matters for int8: :func:`sim.network.golden.quantize` gives a dead channel the scale 1.0 and
    folds it into the next layer's weights, which then swamp that layer's per-channel int8 scale.
    """
    checks.check_instance("network", network, Network)
    out = {name: np.asarray(m, dtype=bool) for name, m in mask.items()}
    dead = None
    for layer in network.layers:
        if not layer.has_weights:
            continue                      # max-pooling: channel c of its output is channel c of its input
        m = out.get(layer.name, np.ones(layer.weight.shape, dtype=bool))
        if dead is not None and dead.any():
            if layer.kind == "fc":        # input features flattened (c, y, x)
                m = m & ~np.repeat(dead, m.shape[1] // len(dead))[None, :]
            elif layer.kind == "depthwise":
                m = m & ~dead[:, None, None, None]
            else:
                m = m & ~dead[None, :, None, None]
            out[layer.name] = m
        dead = ~m.reshape(m.shape[0], -1).any(axis=1)
    return out


def pattern_finetune(fnet: Network, images, labels, *, layers=TRAINED_LAYERS, k: int = K, n_patterns: int = P,
                     connectivity: float = CONNECTIVITY, group: int = 1, steps: int = 5, epochs: int = 10,
                     final_epochs: int = 30, lr: float = 0.005, final_lr: float = 0.002, seed: int = 0,
                     progress=None):
    """Pattern + connectivity pruning of ``layers`` of a float network with fine-tuning on ``images``/``labels``.

    ``steps`` stages of ``epochs`` each: stage ``s`` fine-tunes with a straight-through projection onto
    :func:`gen.compiler.prune.pattern` at connectivity ``connectivity · s / steps`` (the forward pass sees the
    pruned weights, re-chosen every batch; the update goes to the float ones). The last stage's pattern masks,
    extended by :func:`dead_input_mask`, are then fixed and ``final_epochs`` of masked fine-tuning
    (:func:`gen.network.train.finetune`) train the kept weights; a pruned weight stays exactly zero. Every stage
    distils from ``fnet`` (the unpruned network, weight 0.5); ``group`` shares patterns between that many
    consecutive outputs (:func:`gen.compiler.prune.pattern`). Returns ``(network, mask)``.
    """
    from gen.network.train import finetune

    checks.check_instance("fnet", fnet, Network)
    if fnet.quantized:
        raise ValueError(f"fnet {fnet.name!r} has integer weights: allowed a float network")
    weights = fnet.weights()
    if isinstance(layers, str) or not layers:
        checks.fail("layers", layers, "is not a non-empty list of layer names", ", ".join(weights), exc=TypeError)
    for name in layers:
        checks.check_choice("layers", name, tuple(weights))
        if weights[name].ndim != 4 or weights[name].shape[2:] != (3, 3):
            checks.fail("layers", name, f"has weights of shape {weights[name].shape}", "3×3 convolutions")
    shapes = {weights[n].shape for n in layers}
    clash = [n for n in weights if n not in layers and weights[n].shape in shapes]
    if clash:     # the straight-through projection sees arrays, not names: it tells layers apart by shape
        checks.fail("layers", list(layers), f"share a weight shape with {clash}", "layers of distinct shapes")
    checks.check_float("connectivity", connectivity, 0.0, 1.0)
    steps = checks.check_int("steps", steps, 1, 100)
    seed = checks.check_int("seed", seed, 0, 2**31)
    for name in layers:       # a target no pruning can meet fails here, before any training
        pattern(weights[name], k, n_patterns, connectivity, group)

    def stage(c):
        def project(w):
            return w * pattern(w, k, n_patterns, c, group)[0] if w.shape in shapes else w
        return project
    net = fnet
    for s in range(1, steps + 1):
        if progress is not None:
            progress(f"digits: straight-through pattern stage {s}/{steps} (connectivity {connectivity * s / steps:.2f})")
        net = finetune(net, {}, images, labels, seed=seed + s, epochs=epochs, lr=lr, project=stage(connectivity * s / steps),
                       teacher=fnet)
    mask = dead_input_mask(net, {name: net.weights()[name] != 0 for name in layers})
    if progress is not None:
        progress(f"digits: masked fine-tuning ({final_epochs} epochs)")
    return finetune(net, mask, images, labels, seed=seed, epochs=final_epochs, lr=final_lr, teacher=fnet), mask


def network_npz(network: Network, path, *, layers=None) -> Path:
    """Write the weights of an int8 ``network``'s weighted layers (all, or ``layers``) as a ``map-report
    --weights`` file: one integer array per layer and its ``<name>.positions`` (output pixels per image)."""
    checks.check_instance("network", network, Network)
    entries = {}
    for layer, shape in zip(network.layers, network.shapes[1:]):
        if layer.has_weights and (layers is None or layer.name in layers):
            entries[layer.name] = layer.weight
            entries[f"{layer.name}.positions"] = np.array(1 if layer.kind == "fc" else shape[1] * shape[2])
    if not entries:
        checks.fail("layers", layers, "names no weighted layer", ", ".join(network.weights()))
    path = Path(path)
    np.savez(path, **entries)
    return path


def trained_figures(*, quick: bool = False, progress=None, recipe: dict | None = None,
                    connectivity: float = CONNECTIVITY, n_patterns: int = P, group: int = 1) -> dict:
    """The digits CNN through :func:`pattern_finetune` and int8 quantization: ``accuracy``, ``accuracy_drop``
    (points, against the shipped int8 network), ``sparsity`` of the pruned layers, and the map-report totals of its
    conv layers on :data:`TRAINED_GEOMETRY` (with ``bound``, ``bound_ratio``); ``qnet`` is the int8 network.
    ``quick``: :data:`QUICK_RECIPE` and shifts calibrated without the labels' search."""
    from gen.network.data import digits
    from gen.network.spec import load
    from sim.network.golden import quantize
    from sim.seeds import accuracy_drop, int8_accuracy

    recipe = dict(QUICK_RECIPE if quick else RECIPE, **(recipe or {}))
    fnet = load("digits-float")
    x, y = digits("train")
    xt, yt = digits("test")
    tuned, mask = pattern_finetune(fnet, x, y, connectivity=connectivity, n_patterns=n_patterns, group=group,
                                   progress=progress, **recipe)
    qnet = quantize(tuned, x, labels=None if quick else y)      # quick: no shift search on the labels (~10 s)
    accuracy = int8_accuracy(qnet, xt, yt)
    convs = [layer.name for layer in qnet.weighted if layer.kind == "conv"]
    with tempfile.TemporaryDirectory() as tmp:
        g = TRAINED_GEOMETRY
        report = map_report(weights=network_npz(qnet, Path(tmp) / "digits.npz", layers=convs), strategy=STRATEGY,
                            xbar=(g["xbar_rows"], g["xbar_cols"]), ou=(g["ou_rows"], g["ou_cols"]),
                            cell_bits=g["cell_bits"])
    pruned = [mask[name] for name in TRAINED_LAYERS]
    return {**_with_bound(report["totals"], len(report["layers"])), "accuracy": accuracy,
            "accuracy_drop": accuracy_drop(accuracy),
            "pruned_sparsity": 1 - sum(int(m.sum()) for m in pruned) / sum(m.size for m in pruned),
            "kernels_removed": int(sum((~m.reshape(-1, 9).any(axis=1)).sum() for m in pruned)),
            "recipe": recipe, "mapped_layers": convs, "qnet": qnet}


def _settings(geometry, figures, **extra):
    return {"ou": [geometry["ou_rows"], geometry["ou_cols"]], "crossbar": [geometry["xbar_rows"], geometry["xbar_cols"]],
            "cell_bits": geometry["cell_bits"], "weight_bits": 8, "mapping": STRATEGY, **extra,
            "sparsity": round(figures["sparsity"], 4), "bound": round(figures["bound"], 3),
            "bound_ratio": round(figures["bound_ratio"], 3), "fill": round(figures["fill"], 3),
            "crossbars": figures["crossbars"], "dense_crossbars": figures["dense_crossbars"],
            "layers": figures["layers"]}


def _row(network, weights, metric, ours, settings, accuracy_drop=None, note=None):
    return make_row(PAPER, network, weights, metric, claim=CLAIMS[metric], ours=ours, settings=settings,
                    accuracy_drop=accuracy_drop, accuracy_target=ACCURACY_TARGET if weights == "trained" else None,
                    note=note)


def rows(*, quick: bool = False, progress=None) -> list[dict]:
    """The seed's rows: ``crossbar_area_efficiency`` and ``energy_efficiency`` of ``vgg16`` and ``resnet18``
    (synthetic) and ``digits`` (trained, with its accuracy drop). ``quick``: the first conv layers of the big
    networks and :data:`QUICK_RECIPE` (a few seconds; the figures are then not the documented ones)."""
    checks.check_bool("quick", quick)
    out = []
    spec = prune_spec()
    for net in ("vgg16", "resnet18"):
        f = synthetic_figures(net, quick=quick, progress=progress)
        settings = _settings(GEOMETRY, f, prune=spec, k=K, P=P, connectivity=CONNECTIVITY, group=1,
                             scope="conv layers (FC left out); pattern on 3×3 kernels, other convs dense",
                             quick=quick)
        note = (f"{f['bound_ratio']:.1%} of the bound {f['bound']:.2f}× (weights / non-zero weights) at "
                f"{f['sparsity']:.1%} sparsity")
        out += [_row(net, "synthetic", "crossbar_area_efficiency", f["area_efficiency"], settings, note=note),
                _row(net, "synthetic", "energy_efficiency", f["energy_efficiency"], settings)]
    t = trained_figures(quick=quick, progress=progress)
    settings = _settings(TRAINED_GEOMETRY, t, prune=prune_spec(), k=K, P=P, connectivity=CONNECTIVITY, group=1,
                         pruned_layers=list(TRAINED_LAYERS), pruned_sparsity=round(t["pruned_sparsity"], 4),
                         kernels_removed=t["kernels_removed"], mapped_layers=t["mapped_layers"],
                         accuracy=round(t["accuracy"], 4), quick=quick, **t["recipe"])
    drop = round(t["accuracy_drop"], 3)
    g = TRAINED_GEOMETRY
    note = (f"{t['crossbars']} crossbars of {g['xbar_rows']}×{g['xbar_cols']} instead of {t['dense_crossbars']}: "
            f"{t['bound_ratio']:.1%} of the "
            f"bound {t['bound']:.2f}×, set by crossbar granularity on two tiny layers (conv1 stays dense)")
    accuracy = ("the 1-point budget is inside the fine-tuning's seed-to-seed spread on 450 test images "
                "(0.9–2.9 points at any connectivity, docs/seeds.md)")
    out += [_row("digits", "trained", "crossbar_area_efficiency", t["area_efficiency"], settings, drop,
                 f"{note}; {accuracy}" if drop > ACCURACY_TARGET else note),
            _row("digits", "trained", "energy_efficiency", t["energy_efficiency"], settings, drop,
                 accuracy if drop > ACCURACY_TARGET else None)]
    return out


def accuracy_sweep(connectivities=(0.0, 0.25, 0.5), seeds=(0, 1, 2), *, group: int = 1, progress=None) -> list[dict]:
    """The trained row's accuracy drop and area efficiency at several connectivity ratios and fine-tuning seeds
    (:data:`RECIPE` with ``seed`` replaced; patterns shared by ``group`` outputs): ``[{"connectivity", "seed",
    "accuracy_drop", "area_efficiency",
    "energy_efficiency", "pruned_sparsity"}, ...]``. What ``python -m sim.seeds.pattern --sweep`` prints."""
    out = []
    for c in connectivities:
        for s in seeds:
            if progress is not None:
                progress(f"digits: connectivity {c:g}, seed {s}")
            t = trained_figures(recipe={"seed": s}, connectivity=c, group=group)
            out.append({"connectivity": c, "seed": s, "accuracy_drop": t["accuracy_drop"],
                        "area_efficiency": t["area_efficiency"], "energy_efficiency": t["energy_efficiency"],
                        "pruned_sparsity": t["pruned_sparsity"]})
    return out


def main(argv=None) -> int:
    """``python -m sim.seeds.pattern [--quick] [--sweep] [--ou-cols N [--group G]]``: the seed's rows as a table, the accuracy
    sweep, or the synthetic networks at another OU width."""
    import argparse

    from sim.seeds import table

    parser = argparse.ArgumentParser(prog="python -m sim.seeds.pattern", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tests' quick rows")
    parser.add_argument("--sweep", action="store_true",
                        help="digits CNN: accuracy drop and area efficiency at connectivity 0, 0.25, 0.5 × seeds 0, 1, 2")
    parser.add_argument("--ou-cols", type=int, metavar="N",
                        help="VGG-16 and ResNet-18 (synthetic) mapped with OUs N bitlines wide instead of 8")
    parser.add_argument("--group", type=int, default=1, metavar="G",
                        help="with --ou-cols or --sweep: patterns shared by G consecutive outputs (default 1)")
    parser.add_argument("--connectivity", type=float, action="append", metavar="C",
                        help="with --sweep: the connectivity ratios (default 0, 0.25, 0.5)")
    args = parser.parse_args(argv)
    if args.ou_cols is not None:
        geometry = dict(GEOMETRY, ou_cols=checks.check_int("--ou-cols", args.ou_cols, 1, GEOMETRY["xbar_cols"]))
        group = checks.check_int("--group", args.group, 1, 4096)
        for net in ("vgg16", "resnet18"):
            f = synthetic_figures(net, geometry=geometry, group=group)
            print(f"{net}: OU {geometry['ou_rows']}x{geometry['ou_cols']}, pattern group {group}: area "
                  f"{f['area_efficiency']:.2f}x "
                  f"({f['bound_ratio']:.1%} of the bound {f['bound']:.2f}x), energy {f['energy_efficiency']:.2f}x",
                  flush=True)
        return 0
    if args.sweep:
        print(f"{'connectivity':>12} {'seed':>4} {'acc. drop (pt)':>14} {'area x':>7} {'energy x':>8} {'conv2 zeros':>11}")
        group = checks.check_int("--group", args.group, 1, 4096)
        for r in accuracy_sweep(tuple(args.connectivity or (0.0, 0.25, 0.5)), group=group):
            print(f"{r['connectivity']:>12g} {r['seed']:>4} {r['accuracy_drop']:>14.2f} {r['area_efficiency']:>7.2f} "
                  f"{r['energy_efficiency']:>8.2f} {r['pruned_sparsity']:>11.1%}", flush=True)
        return 0
    print(table(rows(quick=args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
