"""Seed 001: PE-wise structured pruning with ternary weights on the GEMM engine (issue 14 point 4; docs/seeds.md).

The shipped float digits CNN is pruned at the GEMM engine's tile granularity (:func:`gen.compiler.pe_prune.pe_prune`:
whole ``rows·block × cols`` = 16 × 4 weight tiles of the ``gemm_4x4_2of4`` preset run dense 4:4, as
:func:`sim.network.rtl.gemm_config` does, with ``weight_bits = 2``), fine-tuned with the mask kept and a ternary
straight-through projection whose threshold comes from the kept weights
(:func:`gen.compiler.pe_prune.ternary_projection`, one scale per layer, folded into the layer's requantization
shift), and quantized by the int8 pipeline (:func:`sim.network.golden.quantize`, ``mode="ternary"``,
``granularity="tensor"``: the ternary integers ``{−1, 0, +1}`` come out unchanged). Accuracy drop: the shipped
``digits-int8`` test accuracy (435/450) minus the pruned ternary network's, int8 golden, 450 test images.

Only ``conv2`` is pruned (1,152 of the 1,384 weights, 5 × 4 tiles): ``conv1`` is 2 tiles (removing one removes
half of the first layer's channels) and ``fc`` one K-tile of 3 N-tiles (removing one silences 3–4 classes).

Rows: ``digits``/trained ``compression`` (claim 21, the paper's ResNet-18 figure), ``compression_ternary``
(ternarization alone, the issue's 16× floor), ``cycles_saved`` (the engine's cycles of the dense layer jobs /
the jobs the host sends with the pruned tiles compiled away, :func:`sim.gemm.driver.plan_pruned`, cycle model
:func:`gen.gemm.perf.predict`; the RTL equals the model, tests/gemm/test_gemm_pe_ternary.py), and
``resnet18``/synthetic ``compression`` at the same tile ratio.
"""

import json
from pathlib import Path

import numpy as np

from hw import checks
from gen.compiler.networks import network as big_network
from gen.compiler.pe_prune import compression, pe_prune, tile_shape, ternary_projection, ternarize_pruned
from gen.compiler.prune import as_matrix
from gen.compiler.workloads import synthetic_weights
from gen.config import load_config
from gen.gemm import perf
from gen.network.data import digits
from gen.network.spec import MAX_SHIFT, load
from gen.network.train import finetune
from gen.paths import build_dir
from sim.common.runner import run_design, simulator_available
from sim.gemm.driver import plan_pruned
from sim.network.golden import int8_forward, layer_gemm, output_stage, quantize
from sim.network.rtl import gemm_matrix_of
from sim.network.pipeline import SHIPPED_ACCURACY
from sim.seeds import accuracy_drop, int8_accuracy, make_row

__all__ = ["PRESET", "PRUNED", "RATIOS", "R18_RATIO", "RULE", "THRESHOLD", "EPOCHS", "SEED", "SEEDS",
           "engine_config", "prune_and_tune", "layer_cycles", "sweep", "operating_point", "conv2_job", "rtl_cycles",
           "resnet18_compression", "plot", "rows"]

PAPER = "pe-wise-ternary"
PRESET = "gemm_4x4_2of4"
PRUNED = ("conv2",)                       # the layers pruned (module docstring)
RATIOS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75)   # tile ratios swept: 0, 2, 4, 6, 10, 15 of conv2's 20 tiles (quick: 0, 0.5)
RULE, THRESHOLD = "twn", 0.7             # ternary threshold: 0.7 · mean|w| of the kept weights, one scale per layer
EPOCHS, QUICK_EPOCHS, QUICK_CALIB, SEED = 30, 1, 200, 0   # quick: 1 epoch, shifts calibrated on 200 images
SEEDS = (0, 1)                            # fine-tuning seeds per point, accuracy averaged (quick: SEED only)
R18_RATIO = 0.25                          # ResNet-18 (synthetic): 16/(1 − 0.25) ≈ 21.3 before the tile map
SHIFT_BITS = MAX_SHIFT.bit_length()      # a layer's requantization shift, 0 … 31
RTL_IMAGES, RTL_MAX_M, RTL_SIM = 8, 32, "icarus"   # the operating point's conv2 on the RTL (full run only)
TARGET = 2.0                              # accuracy points (issue 14)
CLAIM = 21.0                              # the paper's compression on ResNet-18


def engine_config(*, max_m: int = 256):
    """The engine the ternary layers run on: ``gemm_4x4_2of4`` dense 4:4 (the network path's engine) with
    ``weight_bits = 2``, maxima for the digits CNN (K ≤ 72, N ≤ 20 with the logits' ``[W, −W]``)."""
    return load_config(PRESET, {"keep": 4, "weight_bits": 2, "max_m": max_m, "max_k": 72, "max_n": 20})


def _tile(cfg):
    return tile_shape(rows=cfg.rows, block=cfg.block, cols=cfg.cols)[:2]


def prune_and_tune(fnet, ratio: float, *, epochs: int = EPOCHS, seed: int = SEED, cfg=None, calib: int | None = None):
    """``(mask, tuned float network, ternary int8-pipeline network)``: PE-wise pruning of :data:`PRUNED` at
    ``ratio`` on ``cfg``'s tiles, quantization-aware masked fine-tuning (train split), ternary quantization with
    its shifts calibrated on the first ``calib`` training images (default all)."""
    cfg = engine_config() if cfg is None else cfg
    x, y = digits("train")
    ratio = checks.check_float("ratio", ratio, 0.0, 1.0)
    weights = fnet.weights()
    mask = {name: pe_prune(weights[name], ratio, rows=cfg.rows, block=cfg.block, cols=cfg.cols)[0]
            for name in PRUNED}
    tuned = finetune(fnet, mask, x, y, seed=seed, epochs=epochs,
                     project=ternary_projection(rule=RULE, threshold=THRESHOLD, granularity="tensor"))
    n = len(x) if calib is None else checks.check_int("calib", calib, 1, len(x))
    qnet = quantize(tuned, x[:n], mode="ternary", granularity="tensor", labels=y[:n])
    return mask, tuned, qnet


def layer_cycles(cfg, qnet, images: int) -> dict:
    """Per weighted layer ``{"dense", "pruned", "jobs", "tiles", "tiles_kept"}``: cycle-model cycles of the layer over
    ``images`` images as dense jobs and as the jobs :func:`sim.gemm.driver.plan_pruned` sends (zero tiles removed;
    the cycles do not depend on the activations)."""
    images = checks.check_int("images", images, 1)
    out = {}
    for layer, shape in zip(qnet.layers, qnet.shapes[1:]):
        if not layer.has_weights:
            continue
        W = gemm_matrix_of(layer)
        A = np.zeros((images * shape[1] * shape[2], W.shape[0]), np.int64)
        plan = plan_pruned(cfg, A, W, layer.shift)
        out[layer.name] = {"dense": perf.predict(cfg, plan.dense).cycles,
                           "pruned": perf.predict(cfg, plan.shapes).cycles if plan.jobs else 0,
                           "jobs": len(plan.jobs), "tiles": int(plan.tiles.size), "tiles_kept": int(plan.tiles.sum())}
    return out


def conv2_job(qnet, images) -> dict:
    """conv2 of the int8 ``qnet`` on ``images`` (float, image units) as the engine runs it: ``A`` (conv1's int8
    output, im2col), ``W`` (ternary, ``K × N``), ``shift`` and ``expect``, the layer's int8 output from the network
    golden (:func:`sim.network.golden.output_stage` of ``A · W``)."""
    conv1 = int8_forward(qnet, images)[0]
    layer = next(l for l in qnet.layers if l.name == "conv2")
    A, W = layer_gemm(layer, conv1)
    return {"A": A, "W": W, "shift": layer.shift, "expect": output_stage(A @ W, layer)}


def rtl_cycles(job: dict, *, sim: str = "icarus", seed: int = 0, out_dir=None, max_m: int = RTL_MAX_M) -> dict:
    """Run a layer ``job`` (:func:`conv2_job`) on the engine's RTL (``engine_config(max_m=max_m)``): the cocotb tests
    of :mod:`sim.gemm.cocotb_pe_ternary` (pruned jobs and the dense layer from an ideal host, the pruned jobs with
    gaps and backpressure; every output checked inside the simulation). Returns ``{"sim", "pruned", "dense",
    "model_pruned", "model_dense", "jobs", "cycles_saved"}`` (cycles, first descriptor to last result).
    ``RuntimeError`` when ``sim`` is unavailable; a mismatch fails the run."""
    cfg = engine_config(max_m=max_m)
    out = Path(out_dir) if out_dir is not None else build_dir() / "seeds" / "pe_ternary"
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "job.npz", **job)
    report = out / "report.json"
    report.unlink(missing_ok=True)
    run_design(cfg, "sim.gemm.cocotb_pe_ternary", sim, seed=seed, knobs={"job": out / "job.npz", "report": report})
    got = json.loads(report.read_text())
    return {"sim": sim, "config": cfg.top, "pruned": got["pruned"]["cycles"], "dense": got["dense"]["cycles"],
            "model_pruned": got["pruned"]["model"], "model_dense": got["dense"]["model"],
            "jobs": got["pruned"]["jobs"], "counters": got["pruned"]["counters"],
            "cycles_saved": got["dense"]["cycles"] / got["pruned"]["cycles"]}


def _compression(cfg, qnet):
    tile_k, tile_n = _tile(cfg)
    return compression([as_matrix(l.weight) for l in qnet.weighted], tile_k=tile_k, tile_n=tile_n,
                       weight_bits=cfg.weight_bits)


def sweep(*, quick: bool = False, progress=None) -> list[dict]:
    """One point per tile ratio of :data:`RATIOS` (quick: 0 and 0.5, :data:`QUICK_EPOCHS` epoch, one seed): ratio,
    accuracy (mean over the fine-tuning :data:`SEEDS`; each in ``accuracies``), drop, compression
    (:func:`gen.compiler.pe_prune.compression`) and cycles of the 450 test images of the :data:`SEED` network.
    ``AssertionError`` if a pruned weight comes back (it cannot: the mask is re-applied after every step)."""
    cfg = engine_config()
    fnet = load("digits-float")
    xt, yt = digits("test")
    base = SHIPPED_ACCURACY["int8"]                  # the shipped digits-int8 (a test re-measures it)
    points = []
    for ratio in ((0.0, 0.5) if quick else RATIOS):
        accs = []
        for seed in ((SEED,) if quick else SEEDS):
            if progress is not None:
                progress(f"pe-wise-ternary: tile ratio {ratio}, fine-tuning seed {seed}")
            mask, tuned, q = prune_and_tune(fnet, ratio, epochs=QUICK_EPOCHS if quick else EPOCHS, seed=seed, cfg=cfg,
                                            calib=QUICK_CALIB if quick else None)
            accs.append(int8_accuracy(q, xt, yt))
            if seed == SEED:
                qnet = q
            kept = all(not np.asarray(l.weight)[~mask[l.name]].any() for l in q.weighted if l.name in mask)
            if not kept:
                raise AssertionError(f"tile ratio {ratio}, seed {seed}: a pruned weight came back")
        acc = float(np.mean(accs))
        points.append({"ratio": ratio, "accuracy": acc, "accuracies": accs, "baseline": base,
                       "drop": accuracy_drop(acc), "compression": _compression(cfg, qnet),
                       "cycles": layer_cycles(cfg, qnet, len(xt)), "shifts": [l.shift for l in qnet.weighted],
                       "network": qnet})
    return points


def resnet18_compression(ratio: float, *, quick: bool = False, seed: int = 0, cfg=None) -> dict:
    """Compression of ResNet-18 (synthetic Laplacian weights, :func:`gen.compiler.workloads.synthetic_weights`)
    pruned at ``ratio`` on ``cfg``'s tiles and ternarized per layer (no accuracy: synthetic weights). ``quick``: the
    first 6 layers."""
    cfg = engine_config() if cfg is None else cfg
    layers = big_network("resnet18")
    layers = layers[:6] if quick else layers
    mats = []
    for i, layer in enumerate(layers):
        w = synthetic_weights(layer, seed=seed, index=i).astype(np.float64)
        if layer.kind == "dw":
            continue
        mask = pe_prune(w, ratio, rows=cfg.rows, block=cfg.block, cols=cfg.cols)[0]
        mats.append(as_matrix(ternarize_pruned(w * mask, rule=RULE, threshold=THRESHOLD)[0]).astype(np.int64))
    return compression(mats, tile_k=_tile(cfg)[0], tile_n=_tile(cfg)[1], weight_bits=cfg.weight_bits)


def operating_point(points):
    """The largest ratio within the target (drop ≤ 2 points); when even ratio 0 (ternarization alone) misses it,
    the largest ratio whose pruning costs at most 2 points on top of ternarization alone. ``points`` as
    :func:`sweep` returns them (ratio 0 first); returns ``(point, reason)``."""
    within = [p for p in points if p["drop"] <= TARGET]
    if within:
        return max(within, key=lambda p: p["ratio"]), "drop ≤ 2 points"
    floor = points[0]["drop"]
    return (max((p for p in points if p["drop"] <= floor + TARGET), key=lambda p: p["ratio"]),
            f"ternarization alone already drops {floor:.2f} points; pruning costs ≤ 2 points more")


def plot(points, path) -> Path:
    """The sweep as a picture: accuracy drop and compression against conv2's tiles removed (:func:`sweep` points),
    the 2-point target and the ternary-only floor marked; a PNG at ``path`` (its folder created). Returns the path."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise OSError(f"the plot needs matplotlib: pip install 'sparsegen[plot]' ({e})") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = [100 * p["ratio"] for p in points]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(x, [p["drop"] for p in points], "o-", color="C3", label="accuracy drop (int8, mean of seeds)")
    for i in range(len(points[0]["accuracies"])):
        ax.plot(x, [100 * (p["baseline"] - p["accuracies"][i]) for p in points], ".", color="C3", alpha=0.4)
    ax.axhline(TARGET, color="k", ls=":", label=f"target ≤ {TARGET:g} points")
    ax.set_xlabel("conv2 tiles removed (% of its 16 × 4 tiles)")
    ax.set_ylabel("test accuracy drop (points)")
    ax2 = ax.twinx()
    ax2.plot(x, [p["compression"]["compression"] for p in points], "s--", color="C0", label="compression vs float32")
    ax2.axhline(CLAIM, color="C0", ls=":", alpha=0.6, label=f"paper: {CLAIM:g}× (ResNet-18)")
    ax2.set_ylabel("compression (×)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="upper left")
    ax.set_title("PE-wise pruning + ternary weights, digits CNN", fontsize=9)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def _bits(point):
    """A sweep point's shifts and bit counts; the shifts (one per layer, carrying the per-layer scale) are not in
    the compression figure, ``compression_with_shifts`` counts them too."""
    c, shifts = point["compression"], point["shifts"]
    return {"shifts": shifts, "compression_bits": {k: c[k] for k in ("float_bits", "weight_bits", "index_bits")},
            "shift_bits": SHIFT_BITS * len(shifts),
            "compression_with_shifts": c["float_bits"] / (c["weight_bits"] + c["index_bits"]
                                                          + SHIFT_BITS * len(shifts))}


def rows(*, quick: bool = False, progress=None) -> list[dict]:
    """The paper's rows (module docstring); ``quick``: 2 ratios, 1 fine-tuning epoch, 6 ResNet-18 layers."""
    checks.check_bool("quick", quick)
    cfg = engine_config()
    points = sweep(quick=quick, progress=progress)
    op, why = operating_point(points)
    ternary = points[0]
    cyc = op["cycles"]
    dense = sum(c["dense"] for c in cyc.values())
    pruned = sum(c["pruned"] for c in cyc.values())
    tile_k, tile_n = _tile(cfg)
    settings = {"preset": PRESET, "config": cfg.top, "weight_bits": cfg.weight_bits, "tile": [tile_k, tile_n],
                "pruned_layers": list(PRUNED), "ratio": op["ratio"], "operating_point": why,
                "threshold_rule": f"{RULE}: Δ = {THRESHOLD}·mean|w| of the kept weights; one scale per layer",
                "epochs": QUICK_EPOCHS if quick else EPOCHS, "seeds": [SEED] if quick else list(SEEDS),
                "calibration_images": QUICK_CALIB if quick else len(digits("train")[1]), **_bits(op),
                "sweep": [{"ratio": p["ratio"], "accuracy": round(p["accuracy"], 4), "drop": round(p["drop"], 2),
                           "accuracies": [round(a, 4) for a in p["accuracies"]],
                           "compression": round(p["compression"]["compression"], 2),
                           "cycles_saved": round(sum(c["dense"] for c in p["cycles"].values())
                                                 / max(1, sum(c["pruned"] for c in p["cycles"].values())), 3)}
                          for p in points]}
    n_weights = op["compression"]["weights"]
    miss = (f"ternary weights on the {n_weights:,}-weight digits CNN cost {ternary['drop']:.2f} points before any "
            "pruning (no redundancy to absorb 2-bit weights; the paper's ResNet-18 has 11 M weights)"
            if ternary["drop"] > TARGET else None)
    def trained(metric, claim, ours, drop, settings, note):
        return make_row(PAPER, "digits", "trained", metric, claim=claim, ours=ours, settings=settings,
                        accuracy_drop=drop, accuracy_target=TARGET, note=note)
    out = [
        trained("compression", CLAIM, op["compression"]["compression"], op["drop"], settings,
                "claim is the paper's ResNet-18 figure (a different network)" + (f"; {miss}" if miss else "")),
        trained("compression_ternary", 16.0, ternary["compression"]["compression"], ternary["drop"],
                dict(settings, ratio=0.0, **_bits(ternary)),
                "claim: the issue's floor, 32-bit float → 2-bit weights" + (f"; {miss}" if miss else "")),
        trained("cycles_saved", None, dense / pruned, op["drop"],
                dict(settings, cycles={"dense": dense, "pruned": pruned, "layers": cyc,
                                       "images": len(digits("test")[1])}),
                "engine cycle model of the 450 test images, dense jobs / jobs without the pruned tiles; "
                "settings.rtl: the same network's conv2 on the RTL (cycles = model)"),
    ]
    if not quick:
        settings["plot"] = str(plot(points, build_dir() / "seeds" / "pe_ternary_sweep.png"))
        ok, reason = simulator_available(RTL_SIM)
        if progress is not None:
            progress(f"pe-wise-ternary: conv2 of {RTL_IMAGES} test images on the {RTL_SIM} RTL")
        rtl = (rtl_cycles(conv2_job(op["network"], digits("test")[0][:RTL_IMAGES])) if ok
               else {"not_run": f"{RTL_SIM} unavailable: {reason}"})
        out[2]["settings"]["rtl"] = dict(rtl, images=RTL_IMAGES)
    if progress is not None:
        progress("pe-wise-ternary: ResNet-18 synthetic")
    r18 = resnet18_compression(R18_RATIO, quick=quick, cfg=cfg)
    out.append(make_row(
        PAPER, "resnet18", "synthetic", "compression", claim=CLAIM, ours=r18["compression"],
        settings={"ratio": R18_RATIO, "tile": [tile_k, tile_n], "weight_bits": cfg.weight_bits,
                  "threshold_rule": settings["threshold_rule"], "layers": "first 6" if quick else "all",
                  "bits": {k: r18[k] for k in ("float_bits", "weight_bits", "index_bits")}},
        note="synthetic Laplacian weights: compression only (no accuracy); the tile ratio is set, not searched"))
    return out
