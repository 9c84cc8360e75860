"""The sweep engine: points on Dask distributed (or in this process), stage results cached, the table streamed.

:func:`run_sweep` expands the spec (:mod:`gen.sweep.spec`), validates every point here, looks each (point, stage)
up in the stage cache (:mod:`gen.sweep.cache`), and submits one Dask task per point that still has stages to run.
Its workers are a :class:`distributed.LocalCluster` (one single-threaded worker process per core: Yosys, nextpnr
and Verilator are CPU-bound) unless ``scheduler`` names a running Dask scheduler (``dask scheduler`` /
``dask worker``, dask-jobqueue, Kubernetes: the same code path). ``workers=0`` runs the points one after the
other in this process, without Dask (the bench's serial baseline). Results come back as they finish
(:func:`distributed.as_completed`); each is stored in the cache at once and the table (CSV + JSON) is rewritten,
so an interrupted sweep leaves a consistent cache and a table of what finished, and a re-run resumes.

A stage that raises is recorded (``status = "error"``, ``error = "<stage>: <message>"``) and the point's other
stages still run; errors from bad values (``ValueError``, ``TypeError``) are cached like results, crashes and
timeouts are not (they may pass next time). A worker that dies is replaced and its point retried by Dask
(``retries``); a point that kills its worker every time is recorded with the error.
"""

import contextlib
import dataclasses
import importlib.util
import os
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

from hw import checks

from gen.paths import build_dir
from gen.sweep.cache import StageCache
from gen.sweep.results import parse_objectives, plot_report, write_table
from gen.sweep.spec import STAGES, SweepSpec, expand, load_spec, selected
from gen.sweep.stages import STAGE_FUNCTIONS, stage_inputs
from sim.sweep.rtl import rtl

__all__ = ["STAGE_RUNNERS", "run_point", "run_sweep", "default_out_dir", "default_cache_dir", "default_workers"]

STAGE_RUNNERS = {**STAGE_FUNCTIONS, "rtl": rtl}
"""Every stage function, by name."""


def default_out_dir(name: str) -> Path:
    """``<build>/sweep/<name>``."""
    return build_dir() / "sweep" / name


def default_cache_dir() -> Path:
    """``<build>/sweep/cache``."""
    return build_dir() / "sweep" / "cache"


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class StageTimeout(Exception):
    """A stage ran longer than its ``timeout``."""


def _call(function, config, workloads, options, work_dir):
    timeout = options.get("timeout")
    if timeout is None or function is STAGE_FUNCTIONS["synth"]:
        # synth passes its timeout to each tool subprocess, which the flow kills
        return function(config, workloads, options, work_dir=work_dir)
    box = {}

    def target():
        try:
            box["result"] = function(config, workloads, options, work_dir=work_dir)
        except BaseException as error:     # noqa: BLE001 (handed to the caller's thread)
            box["error"] = error

    # an in-process stage cannot be killed: it is abandoned (daemon thread) and the point moves on
    thread = threading.Thread(target=target, daemon=True, name="sweep-stage")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StageTimeout(f"timed out after {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def run_point(config, workloads, stages, work_dir, runners=None) -> dict:
    """Run ``stages`` (a list of ``(stage, options)``) for one config; what a Dask task runs.

    ``runners`` replaces stage functions of :data:`STAGE_RUNNERS` by name. Returns ``{stage: {"ok", "metrics",
    "error", "seconds", "cacheable"}}``; never raises for a failing stage.
    """
    out = {}
    functions = STAGE_RUNNERS | (runners or {})
    for stage, options in stages:
        t0 = time.perf_counter()
        try:
            metrics = _call(functions[stage], config, workloads, options, Path(work_dir) / stage)
            entry = {"ok": True, "metrics": metrics, "error": None, "cacheable": True}
        except (ValueError, TypeError) as error:
            entry = {"ok": False, "metrics": {}, "error": " ".join(str(error).split()) or type(error).__name__,
                     "cacheable": True}
        except Exception as error:     # noqa: BLE001 (a tool crash or timeout is a result of the point)
            text = " ".join(str(error).split()) or type(error).__name__
            entry = {"ok": False, "metrics": {}, "error": f"{type(error).__name__}: {text}"[:2000],
                     "cacheable": False}
        entry["seconds"] = time.perf_counter() - t0
        out[stage] = entry
    return out


def _row(point, results, stages):
    row = {"point": point.id, "index": point.index, **point.values}
    if point.config is None:
        return row | {"status": "invalid", "error": f"validate: {point.error}"}
    errors = []
    for stage in stages:
        entry = results.get(stage)
        if entry is None:
            continue
        row.update(entry["metrics"])
        row[f"{stage}_s"] = round(entry["seconds"], 4)
        if not entry["ok"]:
            errors.append(f"{stage}: {entry['error']}")
    pending = [s for s in stages if s not in results]
    if pending:
        return row | {"status": "not run", "error": "; ".join(errors + [f"not run: {', '.join(pending)}"])}
    return row | {"status": "error" if errors else "ok", "error": "; ".join(errors) or None}


def _columns(spec, rows):
    head = ["point", "index", *spec.axes, "status", "error"]
    metrics, seconds = [], []
    for row in rows:
        for key in row:
            if key in head or key in metrics or key in seconds:
                continue
            (seconds if key.endswith("_s") and key[:-2] in STAGES else metrics).append(key)
    return head + metrics + seconds


class _StderrProgress:
    """Dask's text progress bar, drawn on stderr (stdout carries the report or the JSON) in its own thread."""

    def __init__(self, futures, address):
        from distributed.diagnostics.progressbar import TextProgressBar

        class Bar(TextProgressBar):
            last = None

            def _draw_bar(self, remaining, all, **kwargs):
                # redrawn on a change only: a log file would get a line every interval otherwise
                if (remaining, all) == self.last:
                    return
                self.last = (remaining, all)
                frac = (1 - remaining / all) if all else 1.0
                sys.stderr.write(f"\r[{'#' * int(self.width * frac):<{self.width}}] | {int(100 * frac)}% "
                                 f"Completed | {all - remaining}/{all} points")
                sys.stderr.flush()

            def _draw_stop(self, **kwargs):
                sys.stderr.write("\n")
                sys.stderr.flush()

        def run():
            with contextlib.suppress(Exception):
                Bar(futures, scheduler=address, interval="200ms")

        self.thread = threading.Thread(target=run, daemon=True, name="sweep-progress")
        self.thread.start()


def run_sweep(spec, *, workers: int | None = None, scheduler: str | None = None, out_dir=None, cache_dir=None,
              use_cache: bool = True, timeout: float | None = None, progress: bool = False, retries: int = 2,
              plots: bool = True, pareto=None, runners: dict | None = None) -> dict:
    """Run a sweep; returns its summary (the paths written, the counts, the cache counters, the Pareto rows).

    Parameters
    ----------
    spec : SweepSpec, dict, str or path-like
        The spec (:func:`gen.sweep.spec.load_spec` reads a file or a dict).
    workers : int, optional
        Worker processes of the local cluster (default: the CPUs); ``0`` runs the points in this process.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) instead of a local cluster.
    out_dir : path-like, optional
        Where the table, the plots and the points' work files go (default ``<build>/sweep/<spec name>``).
    cache_dir : path-like, optional
        The stage cache (default ``<build>/sweep/cache``).
    use_cache : bool
        ``False`` recomputes every stage (and refreshes the cache).
    timeout : float, optional
        Seconds per stage, for the stages whose spec options give none.
    progress : bool
        Draw Dask's progress bar on stderr.
    retries : int
        Times Dask reruns a point whose worker died.
    plots : bool
        Write the plots (PNG + PDF; needs matplotlib).
    pareto : list of str, optional
        Objectives replacing the spec's.
    runners : dict, optional
        ``{stage: function}`` replacing built-in stage functions (same signature as
        :data:`gen.sweep.stages.STAGE_FUNCTIONS`), e.g. an experimental cost model; sent to the workers with each
        task (cloudpickle), so it must be importable there or pickled by value. Its results are cached under the
        stage's name: use a separate ``cache_dir``.

    Raises
    ------
    ValueError, TypeError
        For a bad spec or argument, before any work.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec, pareto=pareto)
    elif pareto is not None:
        spec = dataclasses.replace(spec, pareto=parse_objectives(pareto))
    if workers is not None:
        workers = checks.check_int("workers", workers, 0, 4096)
    if scheduler is not None:
        checks.check_str("scheduler", scheduler, "a Dask scheduler address such as tcp://host:8786")
        if workers:
            raise ValueError(f"workers = {workers} with scheduler = {scheduler!r}: allowed one of them (the "
                             "scheduler's workers run the points)")
    if timeout is not None:
        timeout = checks.check_float("timeout", timeout, 1e-3, allowed="a number of seconds > 0")
    if workers != 0 and importlib.util.find_spec("distributed") is None:
        raise ValueError("the sweep runs on Dask distributed, which is not installed: pip install "
                         "'sparsegen[sweep]' (make does), or run the points in this process with workers = 0")
    checks.check_bool("use_cache", use_cache)
    checks.check_bool("progress", progress)
    retries = checks.check_int("retries", retries, 0, 100)
    checks.check_bool("plots", plots)
    runners = dict(runners or {})
    for stage, function in runners.items():
        checks.check_choice("runners", stage, STAGES)
        if not callable(function):
            checks.fail(f"runners[{stage!r}]", function, "is not callable", "a stage function", exc=TypeError)
    out = Path(out_dir) if out_dir is not None else default_out_dir(spec.name)
    checks.check_writable_dir("out_dir", out, create=True)
    cache = StageCache(Path(cache_dir) if cache_dir is not None else default_cache_dir(), enabled=use_cache)
    checks.check_writable_dir("cache_dir", cache.root, create=True)

    t_start = time.perf_counter()
    points = expand(spec)
    stage_options = {stage: opts | ({"timeout": timeout} if opts["timeout"] is None and timeout else {})
                     for stage, opts in spec.options.items()}
    results = {p.id: {} for p in points}
    keys = {}
    todo = []        # (point, [(stage, options)])
    # points whose stage has the same key as an earlier point's (a map of the same network, the same Verilog)
    # wait for that one's result instead of computing it again
    followers = {}
    computed = {}     # stage → runs of its function in this sweep
    for point in points:
        if point.config is None:
            continue
        missing = []
        for stage in spec.stages:
            opts = stage_options[stage]
            if not selected(point, opts["where"]):
                continue
            key = cache.key(stage, stage_inputs(stage, point.config, spec.workloads, opts))
            keys[point.id, stage] = key
            hit = cache.get(stage, key)
            if hit is not None:
                results[point.id][stage] = hit
            elif stage == "validate":        # instant: no task for it
                entry = run_point(point.config, spec.workloads, [(stage, opts)], out / "points" / point.id,
                                  runners)[stage]
                results[point.id][stage] = entry
                cache.put(stage, key, entry)
                computed[stage] = computed.get(stage, 0) + 1
            elif (stage, key) in followers:
                followers[stage, key].append(point.id)
            else:
                followers[stage, key] = []
                missing.append((stage, opts))
        if missing:
            todo.append((point, missing))

    stages_of = {p.id: [s for s in spec.stages if (p.id, s) in keys] for p in points}
    table_stem = out / spec.name
    state = {"written": 0.0}

    def rows():
        return [_row(p, results[p.id], stages_of[p.id]) for p in points]

    def write(final=False):
        now = time.perf_counter()
        if not final and now - state["written"] < 1.0:
            return None
        state["written"] = now
        table = rows()
        return write_table(table_stem, spec=spec.to_dict(), columns=_columns(spec, table), rows=table,
                           objectives=spec.pareto, cache=cache.counters() | {"computed": dict(computed)})

    def store(point_id, got):
        for stage, entry in got.items():
            computed[stage] = computed.get(stage, 0) + 1
            for target in (point_id, *followers[stage, keys[point_id, stage]]):
                results[target][stage] = entry
            if entry.get("cacheable"):
                cache.put(stage, keys[point_id, stage], entry)
        write()

    engine = "serial" if workers == 0 else ("scheduler " + scheduler if scheduler else "local cluster")
    n_workers = 0
    t_compute = time.perf_counter()
    ready = []       # when the cluster was up
    try:
        if workers == 0:
            for point, missing in todo:
                store(point.id, run_point(point.config, spec.workloads, missing, out / "points" / point.id,
                                          runners))
        elif todo:
            n_workers = _run_dask(todo, store, workers=workers, scheduler=scheduler, out=out, retries=retries,
                                  progress=progress, workloads=spec.workloads, started=ready.append,
                                  runners=runners)
    finally:
        # on Ctrl-C too: every stored entry is complete, and the table shows what finished
        table = write(final=True)
    compute_s = time.perf_counter() - t_compute
    written = list(plot_report(out, rows=rows(), axes=spec.axes, objectives=spec.pareto, title=spec.name)) \
        if plots else []
    table_rows = rows()
    return {"name": spec.name, "table": str(table["csv"]), "json": str(table["json"]),
            "plots": [str(p) for p in written], "points": len(points),
            "ok": sum(r["status"] == "ok" for r in table_rows),
            "invalid": sum(r["status"] == "invalid" for r in table_rows),
            "error": sum(r["status"] == "error" for r in table_rows),
            "submitted": len(todo), "engine": engine, "workers": n_workers,
            "cache": cache.counters() | {"computed": computed},
            "seconds": round(time.perf_counter() - t_start, 3), "compute_seconds": round(compute_s, 3),
            "startup_seconds": round(ready[0] - t_compute, 3) if ready else 0.0,
            "pareto": {"objectives": [list(o) for o in spec.pareto],
                       "points": [{k: r.get(k) for k in ("point", *spec.axes, *(n for n, _ in spec.pareto))}
                                  for r in table["pareto"]]},
            "rows": table_rows}


def _run_dask(todo, store, *, workers, scheduler, out, retries, progress, workloads, started, runners) -> int:
    """Submit one task per point and store the results as they finish; returns the number of workers."""
    import logging

    from distributed import Client, LocalCluster, as_completed

    if scheduler:
        cluster = contextlib.nullcontext()
        client = Client(scheduler, timeout="20s")
    else:
        # one single-threaded process per core: the tools are CPU-bound and not all of them release the GIL
        cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    run = uuid.uuid4().hex[:8]
    with cluster, client:
        if not scheduler:
            with contextlib.suppress(TimeoutError):      # the tasks wait for the workers anyway
                client.wait_for_workers(workers or default_workers(), timeout=120)
        n_workers = len(client.scheduler_info().get("workers", {}))
        started(time.perf_counter())
        futures, submitted = {}, []
        for point, missing in todo:
            future = client.submit(run_point, point.config, workloads, missing, str(out / "points" / point.id),
                                   runners, key=f"sweep-point-{point.id}-{run}", pure=False, retries=retries)
            futures[future.key] = (point, missing)
            submitted.append(future)
        if progress:
            _StderrProgress(submitted, client.scheduler.address)
        try:
            for future in as_completed(submitted):
                point, missing = futures[future.key]
                try:
                    got = future.result()
                except Exception as error:    # noqa: BLE001 (KilledWorker after the retries, a lost scheduler)
                    text = f"{type(error).__name__}: {' '.join(str(error).split())}"[:2000]
                    got = {stage: {"ok": False, "metrics": {}, "error": f"worker failed: {text}", "seconds": 0.0,
                                   "cacheable": False} for stage, _ in missing}
                    traceback.clear_frames(error.__traceback__)
                store(point.id, got)
        except BaseException:
            client.cancel(submitted)
            raise
    return n_workers
