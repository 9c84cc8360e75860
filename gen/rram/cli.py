"""``sparsegen rram-sweep``: accuracy of the float RRAM physics model against the exact int8 product.

Runs :func:`gen.rram.sweep.run_sweep` (workload and sweeps described there), prints the tables, writes one PNG per
sweep into ``--out`` (matplotlib, extra ``plot``) and, with ``--json FILE``, every figure as JSON.
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
    exact = cc["adc5_error"] == 0 and cc["adc4_error"] > 0 and cc["matches_golden"]
    return 0 if exact and result["adc_ou"]["ideal_matches_golden"] else 1


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
