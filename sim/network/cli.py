"""``python -m gen accuracy``: the accuracy study of the digits CNN (a plugin: it runs the RTL, so it lives in sim).

Prints the accuracy table (``--json``: the whole result as JSON on stdout) and writes the plots; see
:func:`sim.network.accuracy.run_study` and docs/network.md.
"""

import contextlib
import json
import sys
from pathlib import Path

from hw import checks

__all__ = ["register"]


def _run(args) -> int:
    from sim.network.accuracy import default_out_dir, run_study, table

    checks.check_int("--images", args.images, 0, 450)
    checks.check_int("--chips", args.chips, 1, 1000)
    if args.rram_images is not None:
        checks.check_int("--rram-images", args.rram_images, 0, 450)
    if args.analog_images is not None:
        checks.check_int("--analog-images", args.analog_images, 1, 450)
    out = default_out_dir() if args.out is None else checks.check_writable_dir("--out", args.out, create=True)
    if args.quick:
        args.images, args.chips, args.analog_images, args.sparse_images = min(args.images, 2), 2, 50, 0
        args.rram_images = None
    # the simulator runner reports each run on stdout: keep stdout for the table or the JSON alone
    with contextlib.redirect_stdout(sys.stderr):
        res = run_study(rtl_images=args.images, rram_images=args.rram_images, chips=args.chips,
                        analog_images=args.analog_images, sim=args.sim, seed=args.seed, rtl=not args.no_rtl,
                        pruning=not args.no_pruning, analog=not args.no_analog,
                        rram_sparse_images=args.sparse_images, out_dir=out, quiet=args.json or args.quiet,
                        finetune_epochs=3 if args.quick else 15)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(table(res))
        print(f"\nbit-exact: {res['bit_exact']}; plots: {len(res.get('plots', []))} files in {out}; "
              f"{res['seconds']} s")
    return 0 if res["bit_exact"] else 1


def register(commands):
    p = commands.add_parser("accuracy", help="accuracy of the digits CNN: float, int8, GEMM/RRAM RTL, pruning, "
                                             "analog non-idealities")
    p.add_argument("--images", type=int, default=100, help="test images through each RTL (default 100)")
    p.add_argument("--rram-images", type=int, default=None,
                   help="test images through the RRAM tile's RTL (default: --images)")
    p.add_argument("--sparse-images", type=int, default=10,
                   help="test images of the pruned networks on the RTL (2:4 GEMM, ou-sparse RRAM; default 10)")
    p.add_argument("--chips", type=int, default=10, help="seeded chips per noisy analog point (default 10)")
    p.add_argument("--analog-images", type=int, default=None, help="test images per analog point (default all 450)")
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="plot directory (default <build>/network/plots)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quick", action="store_true", help="2 RTL images, 2 chips, 50 analog images, short fine-tuning")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-rtl", action="store_true", help="skip the RTL runs")
    p.add_argument("--no-pruning", action="store_true", help="skip pruning and fine-tuning")
    p.add_argument("--no-analog", action="store_true", help="skip the analog sweeps")
    p.set_defaults(run=_run)
