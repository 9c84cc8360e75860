"""``sparsegen sweep``: run a design-space sweep on Dask, or re-render the report of one (docs/sweep.md).

A plugin command (:mod:`sparsegen.commands`): the ``rtl`` stage runs cocotb, which ``gen`` may not import.
"""

import json
import sys
from pathlib import Path

from hw import checks

__all__ = ["register", "format_summary"]


def format_summary(summary: dict) -> str:
    """The text report: the table's path, the counts, the cache counters and the Pareto points."""
    cache = summary.get("cache", {})
    lines = [f"sweep {summary['name']}: {summary['points']} points: {summary['ok']} ok, {summary['invalid']} invalid, "
             f"{summary['error']} with a failed stage",
             f"table: {summary['table']} (and {summary['json']})"]
    if "engine" in summary:
        lines.append(f"engine: {summary['engine']}, {summary['submitted']} points submitted, "
                     f"{summary['seconds']:.1f} s")
    if cache:
        fmt = lambda d: ", ".join(f"{k} {v}" for k, v in d.items()) or "none"     # noqa: E731
        lines.append(f"cache: hits {fmt(cache.get('hits', {}))}; computed {fmt(cache.get('computed', {}))}")
    if summary.get("plots"):
        lines.append(f"plots: {', '.join(p for p in summary['plots'] if p.endswith('.png'))} (+ .pdf)")
    pareto = summary["pareto"]
    if pareto["objectives"]:
        names = [n for n, _ in pareto["objectives"]]
        lines.append(f"Pareto front over {', '.join(f'{s}:{n}' for n, s in pareto['objectives'])}: "
                     f"{len(pareto['points'])} points")
        for p in pareto["points"]:
            axes = ", ".join(f"{k}={v}" for k, v in p.items() if k != "point" and k not in names)
            objs = ", ".join(f"{n}={p[n]:.6g}" if isinstance(p[n], float) else f"{n}={p[n]}" for n in names)
            lines.append(f"  {p['point']}  {axes}  →  {objs}")
    return "\n".join(lines)


def _report(args):
    from gen.sweep.results import parse_objectives, plot_report, read_table, write_table

    data = read_table(args.report)
    spec = data["spec"]
    objectives = parse_objectives(args.pareto if args.pareto is not None
                                  else [f"{s}:{n}" for n, s in data["pareto"]["objectives"]])
    source = Path(args.report)
    out = Path(args.out) if args.out else source.parent
    checks.check_writable_dir("--out", out, create=True)
    axes = spec["axes"]
    stem = out / source.with_suffix("").name
    table = write_table(stem, spec=spec, columns=data["columns"], rows=data["rows"], objectives=objectives,
                        cache=data.get("cache"))
    plots = [] if args.no_plots else plot_report(out, rows=data["rows"], axes=axes, objectives=objectives,
                                                 title=spec.get("name", ""))
    rows = data["rows"]
    return {"name": spec.get("name", ""), "table": str(table["csv"]), "json": str(table["json"]),
            "plots": [str(p) for p in plots], "points": len(rows),
            "ok": sum(r["status"] == "ok" for r in rows), "invalid": sum(r["status"] == "invalid" for r in rows),
            "error": sum(r["status"] == "error" for r in rows),
            "pareto": {"objectives": [list(o) for o in objectives],
                       "points": [{k: r.get(k) for k in ("point", *axes, *(n for n, _ in objectives))}
                                  for r in table["pareto"]]}}


def _run(args):
    if args.report:
        if args.spec:
            raise ValueError("--report re-renders a finished sweep: allowed --spec or --report, not both")
        summary = _report(args)
    else:
        if not args.spec:
            raise ValueError("give --spec FILE (a sweep spec) or --report FILE (a sweep's table)")
        from gen.sweep.spec import load_spec
        from sim.sweep.run import run_sweep

        spec = load_spec(args.spec, pareto=args.pareto)      # the whole spec is checked before any work
        summary = run_sweep(spec, workers=args.workers, scheduler=args.scheduler, out_dir=args.out,
                            cache_dir=args.cache, use_cache=not args.no_cache, timeout=args.timeout,
                            progress=not args.quiet, retries=args.retries, plots=not args.no_plots)
        summary.pop("rows")
    if args.json:
        json.dump(summary, sys.stdout, indent=1, default=str)
        print()
    else:
        print(format_summary(summary))
    return 0


def register(commands):
    """Add ``sweep`` to the command line (see :mod:`gen.cli`)."""
    p = commands.add_parser("sweep", help="design-space sweep on Dask: table, Pareto front, plots",
                            description="Run the stages of a sweep spec on every point (Dask LocalCluster, or "
                                        "--scheduler), or re-render a finished sweep's report (docs/sweep.md).")
    p.add_argument("--spec", type=Path, metavar="TOML", help="the sweep spec")
    p.add_argument("--report", type=Path, metavar="JSON",
                   help="re-render the report of a finished sweep from its .json (or .csv) without recomputing")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: one per CPU); 0 runs the points in this process")
    p.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--pareto", metavar="A,B", help="objectives, e.g. area,cycles or cycles,max:fmax_mhz "
                   "(default: the spec's pareto)")
    p.add_argument("--out", type=Path, metavar="DIR", help="table, plots and work files (default: "
                   "$SPARSEGEN_BUILD/sweep/<spec name>, else ./build/sweep/<spec name>)")
    p.add_argument("--cache", type=Path, metavar="DIR", help="stage cache (default: <build>/sweep/cache)")
    p.add_argument("--no-cache", action="store_true", help="recompute every stage (and refresh the cache)")
    p.add_argument("--timeout", type=float, metavar="S", help="seconds per stage (default: none)")
    p.add_argument("--retries", type=int, default=2, help="reruns of a point whose worker died (default 2)")
    p.add_argument("--no-plots", action="store_true", help="write no plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=_run)
