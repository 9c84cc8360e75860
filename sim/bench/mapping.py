"""`make bench` section ``mapping``: sparse RRAM mapping strategies on whole networks, against the papers' claims.

For each network and each pruning (none, unstructured 50 % and 80 %, pattern k=4 P=8 on 3×3 convs, N:M 2:4) and
each mapping (dense, ou-sparse, kernel-reorder, bit-squeeze, kernel-reorder+bit-squeeze): crossbars, crossbar
area efficiency vs the dense mapping, ADC conversions, energy and cycles per inference (``gen/compiler/metrics.py``,
default energy table ``gen/compiler/energy.py``). Geometry: 128×128 crossbars, 9×8 OUs, 2-bit cells, int8 weights
(per-channel symmetric), int8 signed inputs bit-serial (8 planes), lossless 5-bit ADC.

Every sparse mapping is measured twice: *before*, one column group per slot (``slots="single"``, the packing of
mapping format v1), and *after*, column groups sharing slots through the per-OU routing (``slots="shared"``, the
default); the paper-style table puts the two side by side (crossbars, area efficiency, energy, fill, cycles).

Weights are synthetic (seeded per-channel Laplacian, ``gen/compiler/workloads.py``), not trained: the figures are
about mapping, not accuracy. VGG-16 is mapped without its three FC layers (123 M of its 138 M weights; the
pattern-pruning papers report conv layers). Exits non-zero if a structural invariant breaks (a sparse strategy
converting more than dense, bit-squeeze more than ou-sparse, shared slots needing more crossbars than one group
per slot).
"""

import argparse
import json
import time
from pathlib import Path

from gen.compiler.metrics import network_totals
from gen.compiler.networks import network
from gen.compiler.prune import parse_prune
from gen.compiler.report import Progress, map_strategies
from gen.compiler.sparse_map import SLOTS
from gen.compiler.workloads import prepare_layer, synthetic_weights
from hw.formats.mapping import CrossbarGeometry

NETS = ("resnet18", "resnet50", "mobilenetv2", "vgg16")
PRUNINGS = {"none": "none", "unstr-50%": "magnitude:0.5", "unstr-80%": "magnitude:0.8", "pattern-k4": "pattern:k=4,P=8",
            "nm-2:4": "nm:2:4"}
MAPPINGS = ("dense", "ou-sparse", "kernel-reorder", "bit-squeeze", "kernel-reorder+bit-squeeze")
SHORT = {"dense": "dense", "ou-sparse": "ou-sparse", "kernel-reorder": "k-reorder", "bit-squeeze": "bit-squeeze",
         "kernel-reorder+bit-squeeze": "k-reorder+b-sq"}
CLAIMS = [
    ("pattern pruning + kernel reorder", "pattern-k4", "kernel-reorder",
     "4.16–5.20x area, 1.98–2.15x energy, 1.15–1.35x speed"),
    ("AUTO-PRUNE", "unstr-80%", "ou-sparse", "up to 3.3x compression, 3.1x area, 3.3x energy"),
    ("SME bit squeeze, unpruned", "none", "bit-squeeze", "8.7x fewer crossbars ResNet-50, 2.1x MobileNet-v2"),
    ("SME bit squeeze + 80% pruning", "unstr-80%", "bit-squeeze", "(same claim)"),
]


def bench_net(name, geometry, seed, progress):
    """Network totals per (pruning, mapping): ``(after, before)``, with shared slots and with one group per slot
    (dense is the same in both)."""
    layers = [layer for layer in network(name) if not (name == "vgg16" and layer.kind == "fc")]
    rows = {(p, m, slots): [] for p in PRUNINGS for m in MAPPINGS for slots in SLOTS}
    bar = Progress(len(layers) * len(PRUNINGS), f"{name:<11}", enabled=progress)
    for index, layer in enumerate(layers):
        w = synthetic_weights(layer, seed=seed, index=index)
        for label, spec in PRUNINGS.items():
            q, _ = prepare_layer(layer, w, prune_name=parse_prune(spec)[0], prune_params=parse_prune(spec)[1])
            for slots in SLOTS:
                for mapping, row in map_strategies(layer, q, geometry, strategies=MAPPINGS, weight_bits=8,
                                                   slots=slots).items():
                    rows[label, mapping, slots].append(row)
            bar.step(layer.name)
    totals = {key: network_totals(value, geometry) for key, value in rows.items()}
    return tuple({(p, m): totals[p, m, slots] for p in PRUNINGS for m in MAPPINGS} for slots in SLOTS)


def print_net(name, totals):
    print(f"\n{name}: per inference, shared slots; ratios vs the dense mapping of the same pruned weights")
    print(f"{'pruning':<11} {'mapping':<15} {'zeros':>6} {'xbars':>7} {'area x':>7} {'util':>6} {'ADC conv':>10} "
          f"{'ADC x':>6} {'energy µJ':>10} {'energy x':>8} {'cycles':>10} {'speed x':>7} {'fill':>6}")
    for (pruning, mapping), t in totals.items():
        print(f"{pruning:<11} {SHORT[mapping]:<15} {1 - t['nonzero_weights'] / t['weights']:>6.1%} {t['crossbars']:>7} "
              f"{t['area_efficiency']:>7.2f} {t['utilization']:>6.1%} {t['adc_conversions']:>10.3e} "
              f"{t['adc_reduction']:>6.2f} {t['energy_pj'] / 1e6:>10.1f} {t['energy_efficiency']:>8.2f} "
              f"{t['cycles']:>10.3e} {t['speedup']:>7.2f} {t['fill']:>6.1%}")


def print_claims(results):
    print("\npapers' claims beside our measurement (area x / energy x / speed x vs dense, synthetic weights):")
    nets = list(results)
    print(f"{'scheme':<44} {'claim':<52} " + " ".join(f"{n:>18}" for n in nets))
    for label, pruning, mapping, claim in CLAIMS:
        cells = []
        for n in nets:
            t = results[n][pruning, mapping]
            cells.append(f"{t['area_efficiency']:.2f}/{t['energy_efficiency']:.2f}/{t['speedup']:.2f}")
        print(f"{label:<44} {claim:<52} " + " ".join(f"{c:>18}" for c in cells))
    best = {n: max(results[n].items(), key=lambda kv: kv[1]["area_efficiency"]) for n in nets}
    print("\nbest area efficiency per network: " +
          ", ".join(f"{n} {t['area_efficiency']:.2f}x ({p} + {m})" for n, ((p, m), t) in best.items()))


def print_before_after(results, before):
    """The paper-style schemes, one group per slot (before) → shared slots (after), per network."""
    print("\npaper-style table, before (one column group per slot) → after (shared slots); area x, energy x and "
          "speed x vs dense:")
    print(f"{'scheme':<32} {'network':<12} {'crossbars':>15} {'area x':>13} {'energy µJ':>17} {'energy x':>13} "
          f"{'fill':>15} {'cycles':>21} {'speed x':>13}")
    for label, pruning, mapping, _ in CLAIMS:
        for n in results:
            b, a = before[n][pruning, mapping], results[n][pruning, mapping]
            pair = lambda key, fmt: f"{format(b[key], fmt)} → {format(a[key], fmt)}"     # noqa: E731
            print(f"{label:<32} {n:<12} {pair('crossbars', 'd'):>15} {pair('area_efficiency', '.2f'):>13} "
                  f"{b['energy_pj'] / 1e6:>7.1f} → {a['energy_pj'] / 1e6:<7.1f} {pair('energy_efficiency', '.2f'):>13} "
                  f"{pair('fill', '.1%'):>15} {pair('cycles', '.3e'):>21} {pair('speedup', '.2f'):>13}")


def check(results, before):
    ok = True
    for n, totals in results.items():
        for key, t in totals.items():
            if t["crossbars"] > before[n][key]["crossbars"]:
                print(f"CHECK FAILED: {n} {key}: shared slots need {t['crossbars']} crossbars, one group per slot "
                      f"{before[n][key]['crossbars']}")
                ok = False
        for pruning in PRUNINGS:
            dense = totals[pruning, "dense"]["adc_conversions"]
            ou = totals[pruning, "ou-sparse"]["adc_conversions"]
            bs = totals[pruning, "bit-squeeze"]["adc_conversions"]
            if not bs <= ou <= dense:
                print(f"CHECK FAILED: {n} {pruning}: ADC conversions bit-squeeze {bs} <= ou-sparse {ou} <= dense {dense}")
                ok = False
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.mapping", description=__doc__.splitlines()[0])
    parser.add_argument("--net", action="append", help=f"network(s) (default: {', '.join(NETS)})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic weights (default 0)")
    parser.add_argument("--json", type=Path, help="also write the totals to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    geometry = CrossbarGeometry(xbar_rows=128, xbar_cols=128, ou_rows=9, ou_cols=8, cell_bits=2)
    results, before = {}, {}
    t0 = time.perf_counter()
    for name in args.net or NETS:
        results[name], before[name] = bench_net(name, geometry, args.seed, not args.quiet)
    elapsed = time.perf_counter() - t0
    print(f"\nRRAM mapping benchmark: 128x128 crossbars, OU 9x8, 2-bit cells, int8 weights (differential), int8 "
          f"inputs, 5-bit lossless ADC; synthetic Laplacian weights (seed {args.seed}); mapped in {elapsed:.0f} s")
    for name, totals in results.items():
        print_net(name, totals)
    print_claims(results)
    print_before_after(results, before)
    if args.json:
        args.json.write_text(json.dumps({slots: {n: {f"{p}|{m}": t for (p, m), t in r.items()} for n, r in res.items()}
                                         for slots, res in (("shared", results), ("single", before))},
                                        indent=1) + "\n")
    return 0 if check(results, before) else 1


if __name__ == "__main__":
    raise SystemExit(main())
