"""``python -m gen seeds``: the seed papers' claims beside our figures (a plugin: accuracy needs the sim layer).

Prints :func:`sim.seeds.table` (``--json``: the rows as a JSON list on stdout, see :mod:`sim.seeds`).
"""

import contextlib
import json
import sys

from hw import checks

__all__ = ["register"]


def _run(args) -> int:
    from sim.seeds import PAPERS, seed_rows, table

    papers = None
    if args.only:
        papers = [p.strip() for p in args.only.split(",") if p.strip()]
        for p in papers:
            checks.check_choice("--only", p, tuple(PAPERS))
    progress = None if args.json or args.quiet else (lambda text: print(f"seeds: {text}", file=sys.stderr, flush=True))
    # simulator runners report on stdout: keep stdout for the table or the JSON alone
    with contextlib.redirect_stdout(sys.stderr):
        rows = seed_rows(papers, quick=args.quick, progress=progress)
    print(json.dumps(rows, indent=1) if args.json else table(rows))
    return 0


def register(commands):
    p = commands.add_parser("seeds", help="the seed papers' headline results beside ours (pattern + kernel reorder, "
                                          "AUTO-PRUNE, SME, PE-wise ternary)")
    p.add_argument("--only", help="comma-separated papers (default all): pattern-kernel-reorder, auto-prune, sme, "
                                  "pe-wise-ternary")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    p.add_argument("--quick", action="store_true", help="fewer fine-tuning epochs and layers (tests)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=_run)
