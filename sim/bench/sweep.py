"""Bench section ``sweep``: the sweep engine, serial vs a 2-worker Dask LocalCluster, and its per-point overhead.

1. **Speedup**: 16 points (systolic arrays: rows × cols × keep × pe_pipeline), each an ECP5 synthesis without
   place and route, run once in this process (``workers=0``, no Dask) and once on a 2-worker LocalCluster, each with
   an empty build directory (so neither the stage cache nor the synthesis flow's own cache helps). Reported: wall
   times and their ratio (target ≥ 1.7× on 2 cores); the two tables must hold the same metrics.
2. **Overhead**: 64 points whose only stages are ``validate`` and ``perf`` (microseconds of work each), serial vs
   a 1-worker LocalCluster, without the cache: (cluster wall − cluster start − serial wall) / points is what the
   engine adds per point (serialization, scheduling, result transfer, the table rewrite).

``python -m sim.bench --only sweep``. Returns 1 when the serial and parallel tables differ (the speed ratio is
reported, not enforced: it depends on what else runs on the machine).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from gen.paths import BUILD_ENV

__all__ = ["SYNTH_SPEC", "OVERHEAD_SPEC", "main"]

SYNTH_SPEC = {
    "name": "bench_synth",
    "base": "ssa_4x8_2of4",
    "axes": {"rows": [2, 4], "cols": [2, 4], "keep": [1, 2], "pe_pipeline": [0, 2]},
    "stages": ["synth"],
    "synth": {"pnr": False},
    "pareto": ["area", "multipliers"],
}

OVERHEAD_SPEC = {
    "name": "bench_overhead",
    "base": "gemm_4x4_2of4",
    "axes": {"rows": [1, 2, 3, 4], "cols": [1, 2, 3, 4], "keep": [1, 2], "dataflow": ["ws", "os"]},
    "workloads": [{"gemm": [16, 16, 16]}],
    "stages": ["perf"],
}


def _run(spec, workers, root):
    from sim.sweep.run import run_sweep

    saved = os.environ.get(BUILD_ENV)
    os.environ[BUILD_ENV] = str(root)     # the workers inherit it: the synthesis cache starts empty too
    try:
        t0 = time.perf_counter()
        summary = run_sweep(spec, workers=workers, out_dir=root / "out", cache_dir=root / "cache", plots=False)
        return time.perf_counter() - t0, summary
    finally:
        if saved is None:
            os.environ.pop(BUILD_ENV, None)
        else:
            os.environ[BUILD_ENV] = saved


def _metrics(summary):
    return [{k: v for k, v in row.items() if not k.endswith("_s")} for row in summary["rows"]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.bench.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-speedup", action="store_true", help="only the overhead measurement")
    args = parser.parse_args(argv)
    status = 0
    with tempfile.TemporaryDirectory(prefix="sparsegen-bench-sweep-") as tmp:
        tmp = Path(tmp)
        if not args.skip_speedup:
            load = [os.getloadavg()[0]]
            serial_s, serial = _run(SYNTH_SPEC, 0, tmp / "serial")
            load.append(os.getloadavg()[0])
            dask_s, parallel = _run(SYNTH_SPEC, 2, tmp / "dask2")
            load.append(os.getloadavg()[0])
            same = _metrics(serial) == _metrics(parallel)
            status |= not same
            work = [sum(row.get("synth_s", 0) for row in s["rows"]) for s in (serial, parallel)]
            print(f"speedup: {serial['points']} points, synth (ECP5, no P&R) each, empty caches; "
                  f"{os.cpu_count()} CPUs, 1-min load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
                  "(start / between / end)")
            print(f"  serial (in process):      {serial_s:7.1f} s  (stage time {work[0]:.1f} s)")
            print(f"  LocalCluster, 2 workers:  {dask_s:7.1f} s  (stage time {work[1]:.1f} s, cluster start "
                  f"{parallel['startup_seconds']:.1f} s)")
            ratio = serial_s / dask_s
            # stage time / wall: how many points the engine kept running at once, whatever else loads the CPUs
            print(f"  ratio: {ratio:.2f}x (target >= 1.7x on 2 idle cores: {'met' if ratio >= 1.7 else 'NOT met'}); "
                  f"points running at once on 2 workers: {work[1] / dask_s:.2f}; tables "
                  f"{'equal' if same else 'DIFFER'}; ok points {parallel['ok']}/{parallel['points']}")
        serial_s, serial = _run(OVERHEAD_SPEC, 0, tmp / "o-serial")
        dask_s, one = _run(OVERHEAD_SPEC, 1, tmp / "o-dask1")
        n = one["submitted"]
        overhead = (dask_s - one["startup_seconds"] - serial_s) / n
        same = _metrics(serial) == _metrics(one)
        status |= not same
        print(f"overhead: {serial['points']} points ({n} valid), validate + perf (cycle model) only, no cache")
        print(f"  serial: {serial_s:.2f} s; LocalCluster, 1 worker: {dask_s:.2f} s, of which cluster start "
              f"{one['startup_seconds']:.2f} s")
        print(f"  engine overhead per point: {overhead * 1e3:.1f} ms; tables {'equal' if same else 'DIFFER'}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
