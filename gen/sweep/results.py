"""The sweep's result table (CSV + JSON), its Pareto front and its plots.

One row per point: ``point`` (its id), ``index``, every axis, ``status`` (``ok``, ``invalid``: the config rejected
the combination, ``error``: a stage failed; the others' metrics are still there), ``error`` (``stage: message``
of every failed stage), then every metric of every stage that ran (:data:`METRICS`) and the seconds each stage
took (``<stage>_s``). Written as ``<name>.csv`` (one line per row, empty cells for missing values) and
``<name>.json`` (``spec``, ``columns``, ``rows``, ``pareto``, ``cache``), which ``sparsegen sweep --report``
reads back to re-render the report without recomputing.
"""

import csv
import json
import math
import os
from pathlib import Path

from hw import checks

__all__ = ["METRICS", "METRIC_STAGES", "parse_objectives", "dominates", "candidates", "pareto_front", "write_table", "read_table", "plot_report"]

# metric → (sense, unit): "min" or "max" is better; what the plots label the axis with
METRICS = {
    "cycles": ("min", "cycles"), "ideal_cycles": ("min", "cycles"), "dense_cycles": ("min", "cycles"),
    "utilization": ("max", "fraction of multiplier-cycles"), "speedup": ("max", "× over the dense twin"),
    "multipliers": ("min", "multipliers"), "latency": ("min", "cycles"),
    "area": ("min", "ECP5 LUT4 equivalents (LUT4 + 2·CCU2C)"), "lut4": ("min", "LUT4"), "carry": ("min", "CCU2C"),
    "ff": ("min", "flip-flops"), "dsp": ("min", "MULT18X18D"), "fmax_mhz": ("max", "MHz"),
    "map_crossbars": ("min", "crossbars"), "map_energy_pj": ("min", "pJ per inference"),
    "map_cycles": ("min", "OU cycles per inference"), "map_utilization": ("max", "fraction of cells"),
    "map_fill": ("max", "fraction of cells holding a mapped weight"),
    "map_speedup": ("max", "× over the dense mapping"), "map_area_efficiency": ("max", "× fewer crossbars"),
    "map_energy_efficiency": ("max", "× over the dense mapping"),
}

# the stage that computes each metric of METRICS (the spec checks that its objectives can be computed)
METRIC_STAGES = {"multipliers": "validate", "latency": "validate",
                 **dict.fromkeys(("cycles", "ideal_cycles", "dense_cycles", "utilization", "speedup"), "perf"),
                 **dict.fromkeys(("area", "lut4", "carry", "ff", "dsp", "fmax_mhz"), "synth"),
                 **{name: "map" for name in METRICS if name.startswith("map_")}}


def parse_objectives(objectives) -> tuple:
    """``["area", "max:accuracy", …]`` (or ``"area,cycles"``) → ``(("area", "min"), ("accuracy", "max"), …)``.

    A metric of :data:`METRICS` takes its sense from there; any other column needs ``min:`` or ``max:``.
    """
    if isinstance(objectives, str):
        objectives = [text for text in objectives.split(",") if text.strip()]
    if not isinstance(objectives, (list, tuple)):
        checks.fail("pareto", objectives, f"is a {type(objectives).__name__}", "a list of metric names",
                    exc=TypeError)
    out = []
    for item in objectives:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            item = f"{item[1]}:{item[0]}"
        checks.check_str("pareto", item, "a metric name")
        sense, sep, name = item.strip().rpartition(":")
        if sep and sense not in ("min", "max"):
            checks.fail("pareto", item, "has an unknown sense", "NAME, min:NAME or max:NAME")
        if not sep and name not in METRICS:
            checks.fail("pareto", item, "is not a known metric",
                        f"{', '.join(METRICS)}, or min:NAME / max:NAME for any other column")
        out.append((name, sense or METRICS[name][0]))
    if len({name for name, _ in out}) != len(out):
        checks.fail("pareto", objectives, "repeats a metric", "distinct metrics")
    if len(out) == 1:
        checks.fail("pareto", objectives, "names one objective", "none, or two or more")
    return tuple(out)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def dominates(a, b, objectives) -> bool:
    """Whether row ``a`` is at least as good as ``b`` in every objective and better in one."""
    better = False
    for name, sense in objectives:
        x, y = (a[name], b[name]) if sense == "min" else (-a[name], -b[name])
        if x > y:
            return False
        better |= x < y
    return better


def candidates(rows, objectives) -> list:
    """The rows that compete for the front: a finite number in every objective (a point whose other stage failed
    still competes on the metrics it has)."""
    return [r for r in rows if r.get("status") != "invalid" and all(_number(r.get(name)) for name, _ in objectives)]


def pareto_front(rows, objectives) -> list:
    """The rows no other row dominates, among the :func:`candidates` (in table order); rows with equal objectives
    are all kept."""
    objectives = tuple(objectives)
    if not objectives:
        return []
    rows = candidates(rows, objectives)
    # sort by the objectives, so a row can only be dominated by one sorted before it
    keyed = sorted(rows, key=lambda r: tuple(r[n] if s == "min" else -r[n] for n, s in objectives))
    front = []
    for row in keyed:
        if not any(dominates(other, row, objectives) for other in front):
            front.append(row)
    order = {id(r): i for i, r in enumerate(rows)}
    return sorted(front, key=lambda r: order[id(r)])


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_table(path_stem, *, spec: dict, columns: list, rows: list, objectives, cache: dict | None = None) -> dict:
    """Write ``<stem>.csv`` and ``<stem>.json`` (atomically); returns the paths and the Pareto rows."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    front = pareto_front(rows, objectives)
    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    tmp = csv_path.with_suffix(f".csv.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    tmp.replace(csv_path)
    data = {"spec": spec, "columns": columns, "rows": rows, "cache": cache or {},
            "pareto": {"objectives": [list(o) for o in objectives], "points": [r["point"] for r in front]}}
    tmp = json_path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(json_path)
    return {"csv": csv_path, "json": json_path, "pareto": front}


def read_table(path) -> dict:
    """The ``<stem>.json`` a sweep wrote (``path``: it, or the ``.csv`` beside it)."""
    path = Path(path)
    if path.suffix == ".csv":
        path = path.with_suffix(".json")
    path = checks.check_readable_file("--report", path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"--report {path}: not a sweep table ({error})") from None
    if not isinstance(data, dict) or not {"spec", "columns", "rows"} <= set(data):
        raise ValueError(f"--report {path}: not a sweep table: allowed the .json (or .csv) a sweep wrote")
    return data


def _label(name):
    unit = METRICS.get(name, (None, ""))[1]
    return f"{name} ({unit})" if unit and unit != name else name


def plot_report(out_dir, *, rows: list, axes: dict, objectives, title: str = "") -> list[Path]:
    """The plots of a sweep, PNG and PDF each: the first two objectives as a scatter with the Pareto front
    highlighted (``pareto.png``), and per axis the best value of each objective over the other axes
    (``axis_<name>.png``). Returns the paths written; needs matplotlib (the ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    objectives = tuple(objectives)
    ok = candidates(rows, objectives)
    written = []

    def save(fig, stem):
        for suffix in (".png", ".pdf"):
            fig.savefig(out / f"{stem}{suffix}", dpi=120, bbox_inches="tight")
            written.append(out / f"{stem}{suffix}")
        plt.close(fig)

    if len(objectives) >= 2 and ok:
        (x, xs), (y, ys) = objectives[:2]
        front = pareto_front(ok, objectives)
        ids = {r["point"] for r in front}
        fig, ax = plt.subplots(figsize=(6, 4.5))
        others = [r for r in ok if r["point"] not in ids]
        ax.scatter([r[x] for r in others], [r[y] for r in others], c="0.6", s=22, label="other points")
        front2 = sorted(pareto_front(ok, objectives[:2]), key=lambda r: r[x])
        ax.step([r[x] for r in front2], [r[y] for r in front2], where="post", c="C3", lw=1, alpha=0.6)
        ax.scatter([r[x] for r in front], [r[y] for r in front], c="C3", s=40, marker="D",
                   label=f"Pareto front ({len(front)} of {len(ok)})")
        for r in front:
            ax.annotate(",".join(str(r.get(a)) for a in axes), (r[x], r[y]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"{_label(x)}, {'lower' if xs == 'min' else 'higher'} is better")
        ax.set_ylabel(f"{_label(y)}, {'lower' if ys == 'min' else 'higher'} is better")
        ax.set_title(title or "sweep: objectives", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        save(fig, "pareto")
    metrics = [n for n, _ in objectives] or [c for c in ("cycles", "area") if any(_number(r.get(c)) for r in ok)]
    for axis, values in axes.items():
        if not metrics or len(values) < 2:
            continue
        fig, panels = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3), squeeze=False)
        positions = list(range(len(values)))
        numeric = all(_number(v) for v in values)
        for ax, name in zip(panels[0], metrics):
            sense = dict(objectives).get(name, METRICS.get(name, ("min",))[0])
            best = []
            for v in values:
                got = [r[name] for r in ok if r.get(axis) == v and _number(r.get(name))]
                best.append((min(got) if sense == "min" else max(got)) if got else float("nan"))
            ax.plot(values if numeric else positions, best, marker="o")
            if not numeric:
                ax.set_xticks(positions, [str(v) for v in values])
            ax.set_xlabel(axis)
            ax.set_ylabel(f"best {_label(name)}", fontsize=8)
            ax.grid(alpha=0.3)
        fig.suptitle(f"{title}: best over the other axes" if title else "best over the other axes", fontsize=9)
        fig.tight_layout()
        save(fig, f"axis_{axis}")
    return written
