"""``python -m gen map-report``: prune, quantize and map a network onto RRAM crossbars and report the figures."""

import json
import sys
from pathlib import Path

from hw import checks

from gen.compiler.energy import EnergyTable
from gen.compiler.networks import NETWORKS
from gen.compiler.sparse_map import SLOTS, STRATEGIES
from gen.compiler.workloads import QUANTIZERS, shipped_weights

__all__ = ["register"]


def _pair(text, option):
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{option} {text!r} is not ROWSxCOLS, e.g. 128x128")
    return int(parts[0]), int(parts[1])


def _run(args):
    from gen.compiler.report import format_report, map_report

    table = EnergyTable.from_json(args.energy) if args.energy else EnergyTable()
    checks.check_int("--round", args.round, 0)
    checks.check_choice("--slots", args.slots, SLOTS)
    result = map_report(net=args.net, weights=args.weights, onnx=args.onnx, prune=args.prune, quant=args.quant,
                        strategy=args.mapping, xbar=_pair(args.xbar, "--xbar"), ou=_pair(args.ou, "--ou"),
                        cell_bits=args.cell_bits, round_error=args.round, input_bits=args.input_bits,
                        dac_bits=args.dac_bits, adc_bits=args.adc_bits, seed=args.seed, table=table,
                        progress=not args.quiet, slots=args.slots)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(format_report(result))
    return 0


def _auto_prune(args):
    from gen.compiler.autoprune import METHODS, ratio_grid, search
    from gen.compiler.autoprune import energy_proxy
    from gen.compiler.networks import network
    from gen.compiler.workloads import load_npz, synthetic_weights
    from hw.formats.mapping import CrossbarGeometry

    checks.check_choice("--method", args.method, METHODS)
    checks.check_float("--budget", args.budget, 0.0, 100.0, allowed="0 … 100 (% of weight energy, mean over layers)")
    if args.target is not None:
        checks.check_float("--target", args.target, 1.0, allowed="a crossbar reduction ≥ 1")
    ratio_grid(args.step, args.max_ratio)
    xbar, ou = _pair(args.xbar, "--xbar"), _pair(args.ou, "--ou")
    geometry = CrossbarGeometry(xbar_rows=xbar[0], xbar_cols=xbar[1], ou_rows=ou[0], ou_cols=ou[1],
                                cell_bits=args.cell_bits)
    if args.out is not None:
        checks.check_writable_file("--out", args.out)
    if args.weights is not None:
        layers = load_npz(args.weights)
        ints = [layer.name for layer, w in layers if w.dtype.kind != "f"]
        if ints:
            raise ValueError(f"--weights {args.weights}: layers {ints} hold integers: allowed float weights (the "
                             "search prunes by magnitude before quantizing)")
    else:
        layers = [(layer, synthetic_weights(layer, seed=args.seed, index=i))
                  for i, layer in enumerate(network(args.net))]
    progress = None if args.quiet else (lambda text: print(f"auto-prune: {text}", file=sys.stderr, flush=True))
    found, uni = search(layers, geometry, energy_proxy(layers, method=args.method, geometry=geometry),
                        max_drop=args.budget, method=args.method, step=args.step, max_ratio=args.max_ratio,
                        target=args.target, progress=progress)
    result = {"searched": found.to_dict(), "uniform": uni.to_dict(),
              "constraint": "proxy: mean over layers of the % of squared-weight energy pruned (no accuracy)"}
    if args.out is not None:
        found.save(args.out)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(f"auto-prune: {found.total} ou-sparse crossbars of {found.dense_total} dense "
              f"({found.reduction:.2f}x; uniform ratio {next(iter(uni.ratios.values())):g}: {uni.total}, "
              f"{uni.reduction:.2f}x) at {found.drop:.3g} % weight energy pruned (budget {args.budget:g})")
        for name, ratio in found.ratios.items():
            print(f"  {name:<24} ratio {ratio:<5g} crossbars {found.crossbars[name]:>5} (dense {found.dense[name]})")
        if args.out is not None:
            print(f"ratios written to {args.out} (map-report --prune ratios:{args.out})")
    return 0


def register(commands):
    a = commands.add_parser("auto-prune", help="search per-layer pruning ratios for the fewest ou-sparse crossbars "
                            "(AUTO-PRUNE) under a weight-energy proxy; the seeds table runs it with accuracy",
                            description="AUTO-PRUNE's search (gen.compiler.autoprune) on user or synthetic weights. "
                            "Without a trained network's accuracy the constraint is a proxy: the mean over layers of "
                            "the percentage of squared-weight energy pruned (--budget).")
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--net", help=f"built-in network: {', '.join(NETWORKS)} (synthetic seeded weights)")
    src.add_argument("--weights", metavar="NPZ", help="float weights, one array per layer (as map-report)")
    a.add_argument("--budget", type=float, default=3.0, help="proxy constraint: mean %% of weight energy pruned "
                   "per layer (default 3)")
    a.add_argument("--method", default="magnitude", help="magnitude (unstructured + ou-sparse compaction) | ou "
                   "(whole OUs) (default magnitude)")
    a.add_argument("--target", type=float, default=None, help="crossbar reduction the result must reach (error if "
                   "not)")
    a.add_argument("--step", type=float, default=0.05, help="ratio grid step (default 0.05)")
    a.add_argument("--max-ratio", type=float, default=0.95, help="largest ratio tried (default 0.95)")
    a.add_argument("--xbar", default="128x128", help="crossbar ROWSxCOLS (default 128x128)")
    a.add_argument("--ou", default="9x8", help="operation unit ROWSxCOLS (default 9x8)")
    a.add_argument("--cell-bits", type=int, default=2, help="bits per cell: 1, 2 or 4 (default 2)")
    a.add_argument("--seed", type=int, default=0, help="seed of the synthetic weights (default 0)")
    a.add_argument("--out", type=Path, metavar="JSON", help="write the searched ratios (for map-report --prune "
                   "ratios:JSON)")
    a.add_argument("--json", action="store_true", help="print the searched and uniform results as JSON")
    a.add_argument("--quiet", action="store_true", help="no progress lines")
    a.set_defaults(run=_auto_prune)
    p = commands.add_parser("map-report", help="prune, quantize and map a network onto RRAM crossbars; report it",
                            description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--net", help=f"built-in network: {', '.join(NETWORKS)} (synthetic seeded weights)")
    source.add_argument("--weights", metavar="NPZ", help="weights, one array per layer: a .npz file or a shipped "
                        f"name ({', '.join(shipped_weights())})")
    source.add_argument("--onnx", type=Path, metavar="MODEL",
                        help="an ONNX model: its Conv/Gemm/MatMul weights, positions from shape inference, depthwise "
                             "convs detected, other operators skipped with a note (needs the onnx extra)")
    p.add_argument("--prune", default="none", metavar="SPEC",
                   help="none | magnitude:ratio=R | nm:KEEP:BLOCK | pattern:k=K,P=P[,connectivity=C,group=G] | "
                        "ou:ratio=R[,ou_rows=..,outputs_per_group=..] | "
                        "pe:ratio=R[,rows=..,block=..,cols=..,group=..] | sense | ratios:FILE.json or "
                        "ratios:LAYER=R,... (per-layer ratios, e.g. an AUTO-PRUNE search result) (default none)")
    p.add_argument("--quant", default="int8", metavar="SPEC",
                   help=f"{' | '.join(q for q in QUANTIZERS if q != 'sme')} | sme:terms=T[,granularity=channel|layer] "
                        "(SME: at most T non-zero cell slices per weight, scale per channel or layer minimizing the "
                        "error; default int8)")
    p.add_argument("--mapping", "--strategy", default="dense", metavar="STRATEGY",
                   help=f"{' | '.join(STRATEGIES)}, or a '+' composition (default dense; --strategy is the same)")
    p.add_argument("--slots", default="shared", metavar="PACKING",
                   help=f"{' | '.join(SLOTS)}: compacted strategies let column groups share slots through the per-OU "
                        "routing where that saves crossbars (default shared), or keep one column group per slot "
                        "(single, the packing before mapping format v2)")
    p.add_argument("--xbar", default="128x128", help="crossbar ROWSxCOLS (default 128x128)")
    p.add_argument("--ou", default="9x8", help="operation unit ROWSxCOLS (default 9x8)")
    p.add_argument("--cell-bits", type=int, default=2, help="bits per cell: 1, 2 or 4 (default 2)")
    p.add_argument("--round", type=int, default=0, metavar="E",
                   help="bit-squeeze: round weights by at most E units toward fewer non-zero slices (default 0)")
    p.add_argument("--input-bits", type=int, default=8, help="signed input width (default 8)")
    p.add_argument("--dac-bits", type=int, default=1, help="DAC bits per input step (default 1)")
    p.add_argument("--adc-bits", type=int, default=None, help="ADC bits for the energy model (default lossless)")
    p.add_argument("--energy", type=Path, metavar="JSON", help="override entries of the energy table")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic weights (default 0)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=_run)
