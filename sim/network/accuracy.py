"""The accuracy study: float, int8, the RTL of both engines, every pruning scheme (with and without masked
fine-tuning) and the analog tile under every non-ideality of the physics model; a table, JSON and plots.

Run by ``python -m gen accuracy`` (:mod:`sim.network.cli`), ``make demo`` (:mod:`sim.network.demo`) and the
``network`` bench section. Data: the test split of :func:`gen.network.data.digits`; network: the shipped digits
CNN (:data:`gen.network.spec.SHIPPED`). Each analog point is the mean ± standard deviation over ``chips``
seeded chips (chip ``c`` is seed ``seed + c``); every sweep changes one non-ideality from an ideal device.
"""

import time
from pathlib import Path

import numpy as np

from hw import checks
from gen.compiler.prune import parse_prune, prune
from gen.compiler.quantize import ternarize
from gen.network.data import DATASET, digits
from gen.network.spec import load
from gen.network.train import finetune
from gen.paths import build_dir
from gen.rram.analog import PhysicsParams
from sim.network.analog import ANALOG_GEOMETRY, DRIFT_NU, PCM_DRIFT_NU, analog_predict, lossless_bits
from sim.network.golden import int8_predict, quantize
from sim.network.pipeline import evaluate

__all__ = ["PRUNE_SCHEMES", "SWEEPS", "pruning_study", "analog_study", "rtl_evaluate", "run_study", "table", "plot",
           "default_out_dir"]

PRUNE_SCHEMES = ("nm:2:4", "pattern:k=4,P=8", "magnitude:ratio=0.5", "magnitude:ratio=0.8", "ternary")
_DAY = 86400.0
_SCHEME_NAMES = {"nm:2:4": "N:M 2:4", "pattern:k=4,P=8": "pattern k=4, P=8", "magnitude:ratio=0.5": "unstructured 50 %",
                 "magnitude:ratio=0.8": "unstructured 80 %", "ternary": "ternary (TWN)"}
_TITLES = {"prog_noise": "programming noise", "read_noise": "read noise", "stuck_at": "stuck-at faults",
           "adc_bits": "ADC resolution", "ir_drop": "IR drop", "drift": "conductance drift"}
_GEOMETRY_TEXT = (f"{ANALOG_GEOMETRY['cell_bits']}-bit cells, {ANALOG_GEOMETRY['ou_rows']}×{ANALOG_GEOMETRY['ou_cols']}"
                  " OUs")
# (name, x label, x values, PhysicsParams changes of one x, log x axis)
SWEEPS = {
    "prog_noise": ("programming noise σ (% of the conductance range)", [0, 1, 2, 3, 5]),
    "read_noise": ("read noise σ (% of G, per read)", [0, 1, 2, 5, 10]),
    "stuck_at": ("stuck-at cells (% of cells, ½ SA0 + ½ SA1)", [0.01, 0.1, 1]),
    "adc_bits": ("ADC resolution (bits)", None),
    "ir_drop": ("wire resistance per cell pitch (Ω)", [0, 1, 5, 20, 100]),
    "drift": ("time since programming (s)", [20, 3600, _DAY, 30 * _DAY, 365 * _DAY]),
}


def _progress(total, desc, quiet):
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False)


def _mask_of(scheme, weights):
    name, params = parse_prune(scheme)
    return {k: prune(w, name, params)[0] for k, w in weights.items()}


def _ternary_project(w):
    q, scale = ternarize(w)
    return q * scale.reshape((-1,) + (1,) * (w.ndim - 1))


def pruning_study(fnet, schemes=PRUNE_SCHEMES, *, epochs: int = 15, seed: int = 0, quiet: bool = True) -> dict:
    """Test accuracy (int8) of each pruning scheme without and with masked fine-tuning.

    Returns ``{scheme: {"sparsity", "no_finetune", "finetune", "networks": (int8 without, int8 with)}}``;
    ``ternary`` is TWN ternarization (its zeros are the mask); its fine-tuning is quantization-aware (the forward
    pass sees the ternarized weights, a straight-through estimator updates the float ones).
    """
    x, y = digits("train")
    xt, yt = digits("test")
    out = {}
    bar = _progress(len(schemes), "pruning + fine-tuning", quiet)
    for scheme in schemes:
        if scheme == "ternary":
            mask = {k: ternarize(w)[0] != 0 for k, w in fnet.weights().items()}
            mode = "ternary"
        else:
            mask = _mask_of(scheme, fnet.weights())
            mode = "int8"
        pruned = fnet.with_weights({k: w * mask[k] for k, w in fnet.weights().items()})
        # ternary: quantization-aware (straight-through), the ternary support re-drawn in every forward pass
        project = _ternary_project if scheme == "ternary" else None
        tuned = finetune(fnet, {} if project else mask, x, y, seed=seed, epochs=epochs, project=project)
        q0 = quantize(pruned, x, mode=mode, labels=y)
        q1 = quantize(tuned, x, mode=mode, labels=y)
        total = sum(m.size for m in mask.values())
        out[scheme] = {"sparsity": 1 - sum(int(m.sum()) for m in mask.values()) / total,
                       "no_finetune": float(np.mean(int8_predict(q0, xt) == yt)),
                       "finetune": float(np.mean(int8_predict(q1, xt) == yt)),
                       "networks": (q0, q1)}
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return out


def _points(name, lossless):
    """``[(x, PhysicsParams, options), ...]`` of one sweep (options: adc_bits, drift_s, drift_nu)."""
    ideal = PhysicsParams.ideal()
    label, xs = SWEEPS[name]
    pts = []
    if name == "prog_noise":
        for wv in (False, True):
            for s in xs:
                pts.append((s, PhysicsParams(**{**_fields(ideal), "prog_sigma": s / 100, "write_verify": wv}),
                            {}, "write-verify" if wv else "no write-verify"))
    elif name == "read_noise":
        pts = [(s, PhysicsParams(**{**_fields(ideal), "read_sigma": s / 100}), {}, "ideal programming")
               for s in xs]
    elif name == "stuck_at":
        pts = [(s, PhysicsParams(**{**_fields(ideal), "sa0_rate": s / 200, "sa1_rate": s / 200}), {},
                "no write-verify") for s in xs]
    elif name == "adc_bits":
        pts = [(b, ideal, {"adc_bits": b}, "ideal devices") for b in range(lossless, 1, -1)]
    elif name == "ir_drop":
        pts = [(r, PhysicsParams(**{**_fields(ideal), "wire_r_ohm": float(r)}), {}, "ideal devices") for r in xs]
    elif name == "drift":
        for nu, series in ((DRIFT_NU, f"ν = {DRIFT_NU[0]} ± {DRIFT_NU[1]} (RRAM, assumed)"),
                           (PCM_DRIFT_NU, f"ν = {PCM_DRIFT_NU[0]} ± {PCM_DRIFT_NU[1]} (PCM, aihwkit)")):
            pts += [(t, ideal, {"drift_s": float(t), "drift_nu": nu}, series) for t in xs]
    return pts


def _fields(params):
    from dataclasses import fields
    return {f.name: getattr(params, f.name) for f in fields(params)}


def analog_study(qnet, images, labels, *, chips: int = 10, seed: int = 0, sweeps=tuple(SWEEPS),
                 quiet: bool = True) -> dict:
    """Accuracy of ``qnet`` on the analog model, one sweep per non-ideality (see :data:`SWEEPS`).

    Returns ``{sweep: {"xlabel", "series": {name: {"x": [...], "mean": [...], "std": [...]}}}}``; deterministic
    points (ADC bits, which has no noise) run one chip.
    """
    checks.check_int("chips", chips, 1, 1000)
    lossless = lossless_bits()
    labels = np.asarray(labels)
    plan = {name: _points(name, lossless) for name in sweeps}
    total = sum(len(p) * (1 if name == "adc_bits" else chips) for name, p in plan.items())
    bar = _progress(total, "analog model", quiet)
    out = {}
    for name, pts in plan.items():
        series = {}
        for x, params, opts, label in pts:
            n = 1 if name == "adc_bits" else chips
            accs = []
            for c in range(n):
                pred = analog_predict(qnet, images, params, seed=seed + c, geometry=ANALOG_GEOMETRY, **opts)
                accs.append(float(np.mean(pred == labels)))
                if bar is not None:
                    bar.update()
            s = series.setdefault(label, {"x": [], "mean": [], "std": [], "chips": n})
            s["x"].append(x)
            s["mean"].append(float(np.mean(accs)))
            s["std"].append(float(np.std(accs)))
        out[name] = {"xlabel": SWEEPS[name][0], "series": series}
    if bar is not None:
        bar.close()
    return out


def rtl_evaluate(network, images, labels, path, *, chunk: int = 25, quiet: bool = True, **options) -> dict:
    """:func:`sim.network.pipeline.evaluate` on an RTL path in chunks of ``chunk`` images (one simulation each,
    a progress bar over images): the same result, summed (cycles per layer, seconds), ``bit_exact`` of all."""
    labels = np.asarray(labels)
    bar = _progress(len(labels), f"{path} ({options.get('strategy', 'dense')})", quiet)
    preds, cycles, seconds, exact = [], {}, 0.0, True
    for at in range(0, len(labels), chunk):
        r = evaluate(network, images[at:at + chunk], labels[at:at + chunk], path, **options)
        preds.append(r["predictions"])
        for k, v in r["cycles"].items():
            cycles[k] = cycles.get(k, 0) + v
        seconds += r["seconds"]
        exact &= r["bit_exact"]
        if bar is not None:
            bar.update(len(r["predictions"]))
    if bar is not None:
        bar.close()
    pred = np.concatenate(preds)
    correct = int(np.sum(pred == labels))
    return {"accuracy": correct / len(labels), "correct": correct, "images": len(labels), "predictions": pred,
            "bit_exact": exact, "cycles": cycles, "seconds": seconds}


def run_study(*, rtl_images: int = 100, rram_images: int | None = None, chips: int = 10, analog_images: int | None = None, sim: str = "verilator",
              seed: int = 0, rtl: bool = True, pruning: bool = True, analog: bool = True, rram_sparse_images: int = 10,
              out_dir=None, quiet: bool = False, finetune_epochs: int = 15) -> dict:
    """The whole study (see the module); returns the JSON-able result (``plots`` lists the files written).

    ``rtl_images`` test images run on the GEMM engine's RTL and ``rram_images`` (default the same) on the RRAM
    tile's; ``rram_sparse_images`` of the pruned networks on both.
    """
    checks.check_int("rtl_images", rtl_images, 0, 450)
    rram_images = rtl_images if rram_images is None else checks.check_int("rram_images", rram_images, 0, 450)
    start = time.monotonic()
    fnet, qnet = load("digits-float"), load("digits-int8")
    xt, yt = digits("test")
    res = {"dataset": DATASET, "network": fnet.name, "split": {"train": len(digits("train")[1]), "test": len(yt)},
           "accuracy": {"float": evaluate(fnet, xt, yt, "float")["accuracy"],
                        "int8": evaluate(qnet, xt, yt, "int8")["accuracy"]}}
    res["rtl_images"] = rtl_images if rtl else 0
    res["rram_images"] = rram_images if rtl else 0
    bit_exact = True
    res["rtl"] = {}
    for path, n in (("gemm_rtl", rtl_images), ("rram_rtl", rram_images)):
        if rtl and n:
            xs, ys = xt[:n], yt[:n]
            r = rtl_evaluate(qnet, xs, ys, path, sim=sim, seed=seed, quiet=quiet)
            res["accuracy"][path] = r["accuracy"]
            res["rtl"][path] = {"images": n, "bit_exact": r["bit_exact"], "cycles": r["cycles"],
                                "seconds": round(r["seconds"], 1),
                                "int8_same_images": float(np.mean(int8_predict(qnet, xs) == ys))}
            bit_exact &= r["bit_exact"]
    res["bit_exact"] = bit_exact
    if pruning:
        p = pruning_study(fnet, epochs=finetune_epochs, seed=seed, quiet=quiet)
        res["pruning"] = {k: {kk: vv for kk, vv in v.items() if kk != "networks"} for k, v in p.items()}
        if rtl and rram_sparse_images:
            # the 50 %-pruned, fine-tuned network mapped ou-sparse on the tile's RTL
            sparse = p["magnitude:ratio=0.5"]["networks"][1]
            xs, ys = xt[:rram_sparse_images], yt[:rram_sparse_images]
            r = rtl_evaluate(sparse, xs, ys, "rram_rtl", sim=sim, seed=seed, strategy="ou-sparse", quiet=quiet)
            res["rtl"]["rram_rtl_ou_sparse"] = {"images": rram_sparse_images, "network": "magnitude:ratio=0.5 + ft",
                                                "bit_exact": r["bit_exact"], "accuracy": r["accuracy"],
                                                "cycles": r["cycles"], "seconds": round(r["seconds"], 1)}
            res["bit_exact"] &= r["bit_exact"]
            g = p["nm:2:4"]["networks"][1]
            r = rtl_evaluate(g, xs, ys, "gemm_rtl", sim=sim, seed=seed, quiet=quiet)
            res["rtl"]["gemm_rtl_2of4"] = {"images": rram_sparse_images, "network": "nm:2:4 + ft",
                                           "bit_exact": r["bit_exact"], "accuracy": r["accuracy"],
                                           "cycles": r["cycles"], "seconds": round(r["seconds"], 1)}
            res["bit_exact"] &= r["bit_exact"]
    if analog:
        n = len(yt) if analog_images is None else analog_images
        res["analog"] = {"images": n, "chips": chips,
                         "int8_same_images": float(np.mean(int8_predict(qnet, xt[:n]) == yt[:n])), "geometry": ANALOG_GEOMETRY, "lossless_adc_bits": lossless_bits(),
                         "sweeps": analog_study(qnet, xt[:n], yt[:n], chips=chips, seed=seed, quiet=quiet)}
    if out_dir is not None:
        res["plots"] = [str(p) for p in plot(res, out_dir)]
    res["seconds"] = round(time.monotonic() - start, 1)
    return res


def table(res) -> str:
    """The accuracy table (Markdown) of a :func:`run_study` result."""
    a = res["accuracy"]
    lines = [f"{res['dataset']}, {res['network']}, test split ({res['split']['test']} images)", "",
             "| path | accuracy | images |", "|---|---:|---:|",
             f"| float (numpy) | {a['float']:.2%} | {res['split']['test']} |",
             f"| int8 golden | {a['int8']:.2%} | {res['split']['test']} |"]
    for path, r in res.get("rtl", {}).items():
        acc = a.get(path, r.get("accuracy"))
        lines.append(f"| {path} ({r.get('network', 'int8')}) | {acc:.2%} | {r['images']} (bit-exact: "
                     f"{'yes' if r['bit_exact'] else 'NO'}) |")
    if "pruning" in res:
        lines += ["", "| pruning (int8) | zeros | no fine-tuning | masked fine-tuning |", "|---|---:|---:|---:|"]
        for k, v in res["pruning"].items():
            lines.append(f"| {k} | {v['sparsity']:.0%} | {v['no_finetune']:.2%} | {v['finetune']:.2%} |")
    if "analog" in res:
        an = res["analog"]
        lines += ["", f"analog model ({an['images']} images, mean ± std over {an['chips']} chips):", "",
                  "| non-ideality | series | x | accuracy |", "|---|---|---:|---:|"]
        for name, sw in an["sweeps"].items():
            for label, s in sw["series"].items():
                for x, m, sd in zip(s["x"], s["mean"], s["std"]):
                    lines.append(f"| {name} | {label} | {x:g} | {m:.2%} ± {sd:.2%} |")
    return "\n".join(lines)


def plot(res, out_dir) -> list:
    """PNG and PDF plots of a :func:`run_study` result into ``out_dir``; returns the paths."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise OSError(f"the plots need matplotlib: pip install 'sparsegen[plot]' ({e})") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{res['dataset']} test set, {res['network']} (int8)"
    int8 = res["accuracy"]["int8"] * 100
    paths = []

    def save(fig, name):
        for ext in ("png", "pdf"):
            p = out_dir / f"{name}.{ext}"
            fig.savefig(p, dpi=150, bbox_inches="tight")
            paths.append(p)
        plt.close(fig)

    golden = res.get("analog", {}).get("int8_same_images", res["accuracy"]["int8"]) * 100
    for name, sw in res.get("analog", {}).get("sweeps", {}).items():
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for label, s in sw["series"].items():
            ax.errorbar(s["x"], np.array(s["mean"]) * 100, yerr=np.array(s["std"]) * 100, marker="o", capsize=3,
                        label=f"{label} ({s['chips']} chip{'s' if s['chips'] > 1 else ''})")
        ax.axhline(golden, color="grey", ls="--", lw=1, label=f"int8 golden, same images ({golden:.1f} %)")
        if name in ("stuck_at", "drift"):
            ax.set_xscale("log")
        elif name == "ir_drop":
            ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel(sw["xlabel"])
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        n = res["analog"]["images"]
        ax.set_title(f"{res['dataset']}, {n} test images, {res['network']} (int8)\n"
                     f"analog RRAM tile ({_GEOMETRY_TEXT}): {_TITLES[name]}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        save(fig, f"accuracy_{name}")
    if "pruning" in res:
        fig, ax = plt.subplots(figsize=(7.5, 3.8))
        names = list(res["pruning"])
        i = np.arange(len(names))
        ax.bar(i - 0.2, [res["pruning"][k]["no_finetune"] * 100 for k in names], 0.4, label="no fine-tuning")
        ax.bar(i + 0.2, [res["pruning"][k]["finetune"] * 100 for k in names], 0.4, label="masked fine-tuning")
        ax.axhline(int8, color="grey", ls="--", lw=1, label=f"int8, dense ({int8:.1f} %)")
        ax.set_xticks(i, [f"{_SCHEME_NAMES.get(k, k)}\n({res['pruning'][k]['sparsity']:.0%} zeros)" for k in names],
                      fontsize=7)
        ax.set_xlabel("pruning scheme (fraction of zero weights)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{title}\npruning schemes, int8 weights", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
        save(fig, "accuracy_pruning")
    return paths


def default_out_dir() -> Path:
    """``<build>/network/plots``."""
    return build_dir() / "network" / "plots"
