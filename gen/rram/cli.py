"""``sparsegen rram-sweep`` and ``sparsegen rram-perf``.

``rram-sweep``: accuracy of the float RRAM physics model against the exact int8 product. Runs
:func:`gen.rram.sweep.run_sweep` (workload and sweeps described there), prints the tables, writes one PNG per sweep
into ``--out`` (matplotlib, extra ``plot``) and, with ``--json FILE``, every figure as JSON.

``rram-perf``: the tile's exact cycle model (:mod:`gen.rram.perf`) for one layer on one tile config, against the
limit: an isolated MVM and a stream of ``--vectors`` vectors.
"""

import dataclasses
import json
from pathlib import Path

from hw import checks

from gen.paths import build_dir

__all__ = ["register"]


def _run(args):
    from gen.rram.sweep import DEFAULT, QUICK, format_tables, run_sweep, write_plots

    spec = QUICK if args.quick else DEFAULT
    changes = {name: getattr(args, name) for name in ("seed", "vectors", "chips") if getattr(args, name) is not None}
    for name, value in changes.items():
        if value < (0 if name == "seed" else 1):
            raise ValueError(f"--{name} = {value} is out of range: allowed {0 if name == 'seed' else 1} or more")
    spec = dataclasses.replace(spec, **changes)
    # the outputs are checked before the sweep runs: a bad path must not cost the whole sweep
    if args.json:
        checks.check_writable_file("--json", args.json)
        checks.check_writable_dir("--json", args.json.parent, create=True)
    checks.check_writable_dir("--out", args.out, create=True)
    try:
        import matplotlib  # noqa: F401  (checked before the sweep runs: nothing is computed for nothing)
    except ImportError as error:
        raise ValueError("the plots need matplotlib: pip install 'sparsegen[plot]'") from error
    result = run_sweep(spec)
    print(format_tables(result))
    paths = write_plots(result, args.out)
    print("\nplots:", *paths, sep="\n  ")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"figures: {args.json}")
    print(f"sweep took {result['seconds']:.1f} s")
    cc = result["cross_check"]
    # the 4-bit ADC's error is data-dependent (0 when no column sum exceeds 15); its equality with the golden is in
    # matches_golden
    exact = cc["adc5_error"] == 0 and cc["matches_golden"]
    return 0 if exact and result["adc_ou"]["ideal_matches_golden"] else 1


def _perf_mapping(cfg, args):
    """The layer ``rram-perf`` measures, mapped onto ``cfg``'s geometry (checked to fit the tile)."""
    from gen.rram.layer import dense_layer_weights, map_layer

    if args.weights is not None:
        from gen.compiler.report import prepared_layers
        from gen.compiler.workloads import layer_matrices

        layers = list(prepared_layers(weights=args.weights, prune=args.prune))
        names = [layer.name for layer, _, _ in layers]
        name = args.layer_name or names[0]
        if name not in names:
            raise ValueError(f"--layer-name {name!r} is not in {args.weights}: allowed {', '.join(names)}")
        layer, q, _ = layers[names.index(name)]
        w = layer_matrices(layer, q, xbar_rows=cfg.xbar_rows, xbar_cols=cfg.xbar_cols,
                           per_output=cfg.columns_per_output)[0]
        what = f"{args.weights}:{name} ({args.prune}) {w.shape[0]}×{w.shape[1]}"
    else:
        if args.layer is None:
            k, n = cfg.xbar_rows, cfg.output_capacity
        else:
            parts = args.layer.split(",")
            if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
                raise ValueError(f"--layer {args.layer!r} is not K,N: two positive integers, e.g. 128,32")
            k, n = (checks.check_int(f"--layer {label}", int(p), 1, 65536) for label, p in zip("KN", parts))
        w = dense_layer_weights(cfg, k, n)
        what = f"dense random {k}×{n}"
    return map_layer(cfg, w, strategy=args.mapping, what=what), what


def _perf(args):
    from gen.config import load_config
    from gen.rram import perf
    from gen.rram.config import RramTileConfig

    cfg = load_config(args.config, args.set)
    if not isinstance(cfg, RramTileConfig):
        raise ValueError(f"--config {args.config} is a {cfg.kind} preset: rram-perf needs an rram one")
    checks.check_int("--vectors", args.vectors, 1, 100000)
    mapping, what = _perf_mapping(cfg, args)
    result = {"config": cfg.top, "layer": what, "mapping": args.mapping, "adcs_per_xbar": cfg.adcs,
              **perf.report(cfg, mapping, args.vectors)}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{cfg.top}: {what}, mapping {args.mapping}, {cfg.n_xbars} crossbars, {cfg.adcs} ADCs each, "
          f"{cfg.n_planes} input planes")
    rows = [("isolated MVM", result["mvm_cycles"], result["limit_cycles"]),
            (f"per vector of {args.vectors}", result["stream_cycles_per_vector"], result["stream_limit_per_vector"])]
    print(f"{'':24} {'cycles':>10} {'limit L':>10} {'ratio':>7}")
    for label, cycles, limit in rows:
        print(f"{label:24} {cycles:>10.1f} {limit:>10} {cycles / limit if limit else float('nan'):>7.3f}")
    print(f"busiest crossbar: {max(result['lane_cycles'])} conversion cycles per MVM; "
          f"the sequential v1 controller: {result['old_mvm_cycles']} cycles per MVM")
    return 0


def register(commands):
    sweep = commands.add_parser("rram-sweep", help="accuracy sweep of the RRAM physics model (tables, PNG, JSON)")
    sweep.add_argument("--out", type=Path, default=build_dir() / "rram-sweep", metavar="DIR",
                       help="directory for the PNG plots (default $SPARSEGEN_BUILD/rram-sweep, else "
                            "./build/rram-sweep)")
    sweep.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to this JSON file")
    sweep.add_argument("--quick", action="store_true", help="a tiny sweep (a few points, 8 vectors, 1 chip)")
    sweep.add_argument("--seed", type=int, help="workload and chip seed (default 1)")
    sweep.add_argument("--vectors", type=int, help="input vectors per point (default 64)")
    sweep.add_argument("--chips", type=int, help="programmed chips averaged per point (default 2)")
    sweep.set_defaults(run=_run)

    from gen.compiler.sparse_map import STRATEGIES

    p = commands.add_parser("rram-perf", help="RRAM tile cycles of one layer: exact model against the limit",
                            description=__doc__.splitlines()[-2])
    p.add_argument("--config", required=True, help="an rram preset")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override one field")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--layer", metavar="K,N", help="a dense random K×N layer (default: xbar_rows × output_capacity)")
    source.add_argument("--weights", metavar="NPZ", help="a layer of a weight file (.npz or a shipped name)")
    p.add_argument("--layer-name", help="with --weights: the layer (default the first)")
    p.add_argument("--prune", default="none", metavar="SPEC", help="with --weights: pruning as map-report takes it")
    p.add_argument("--mapping", default="dense", metavar="STRATEGY",
                   help=f"{' | '.join(STRATEGIES)}, or a '+' composition (default dense)")
    p.add_argument("--vectors", type=int, default=8, help="vectors of the stream (default 8)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(run=_perf)
