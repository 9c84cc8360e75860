"""`make bench` section "gemm": sparse speedup and utilization of the GEMM engine, RTL cycles vs the cycle model.

1. Sparse speedup: cycles of the dense engine with the same multiplier count (``gemm_8x8_dense``, 2:2, k = 16)
   over cycles of the 2:4 engine (``gemm_8x8_2of4``, k = 32), for GEMMs with M ≥ 256 and K, N ≥ 8× the array's
   coverage (K ≥ 256, N ≥ 64). Target: speedup ≥ 0.95 × block/keep = 1.9.
2. Utilization: ideal bound (ceil-tiled MACs / multipliers = M·k_tiles·n_tiles cycles) over the engine's cycles,
   for M ≥ 256. Target ≥ 95 %.

The first shape of each table (and 256,256,64 in both) is simulated under Verilator (one job from descriptor to last result, every result
checked against the golden model); the other rows come from the cycle model (``gen/gemm/perf.py``), which the
simulated rows confirm cycle for cycle.
"""

import argparse
import json
import tempfile
from pathlib import Path

from gen.config import load_config
from gen.gemm import perf
from sim.common.runner import run_design, simulator_available, verilator_env

SPARSE, DENSE = "gemm_8x8_2of4", "gemm_8x8_dense"
SPEEDUP_SHAPES = [(256, 256, 64), (256, 512, 128), (512, 1024, 256), (1024, 1024, 1024), (300, 270, 70)]
UTIL_SHAPES = [(256, 270, 70), (256, 256, 64), (256, 1024, 1024), (512, 300, 100), (1024, 1024, 1024), (256, 33, 9)]
SPEEDUP_TARGET, UTIL_TARGET = 0.95, 0.95


def rtl_cycles(cfg, shape, out_dir):
    """Cycles of one job simulated under Verilator (the cocotb ``throughput`` test also checks every result)."""
    report = out_dir / f"{cfg.top}-{'x'.join(map(str, shape))}.json"
    run_design(cfg, "sim.gemm.cocotb_engine", "verilator", seed=1, testcase="throughput", waves=False,
               knobs={"bench": report, "bench_shape": ",".join(map(str, shape))})
    return json.loads(report.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.gemm", description=__doc__.splitlines()[0])
    parser.add_argument("--no-rtl", action="store_true", help="cycle model only (skip the Verilator runs)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sparse, dense = load_config(SPARSE), load_config(DENSE)
    assert sparse.multipliers == dense.multipliers
    ideal_speedup = sparse.block / sparse.keep
    measured = {}
    if not args.no_rtl:
        ok, reason = simulator_available("verilator")
        if not ok:
            raise SystemExit(f"bench: verilator unavailable: {reason}")
        verilator_env()
        with tempfile.TemporaryDirectory(prefix="sparsegen-bench-gemm-") as tmp:
            for cfg in (sparse, dense):
                measured[cfg.top] = rtl_cycles(cfg, SPEEDUP_SHAPES[0], Path(tmp))
            measured["util"] = rtl_cycles(sparse, UTIL_SHAPES[0], Path(tmp))
    ok = True
    figures = {"speedup": [], "utilization": []}

    print(f"\n1. sparse speedup: {DENSE} ({dense.keep}:{dense.block}, k={dense.k}) cycles / {SPARSE} "
          f"({sparse.keep}:{sparse.block}, k={sparse.k}) cycles, both {sparse.multipliers} multipliers; "
          f"target >= {SPEEDUP_TARGET} x block/keep = {SPEEDUP_TARGET * ideal_speedup:g}\n")
    print(f"{'M,K,N':<16} {'sparse cyc':>11} {'dense cyc':>11} {'source':>12} {'speedup':>8} {'/ (b/k)':>8} "
          f"{'tiled bound':>11} {'/ bound':>8} {'ok':>4}")
    for shape in SPEEDUP_SHAPES:
        s, d = perf.job_cycles(sparse, *shape), perf.job_cycles(dense, *shape)
        source = "model"
        if shape == SPEEDUP_SHAPES[0] and measured:
            rs, rd = measured[sparse.top]["rtl_cycles"], measured[dense.top]["rtl_cycles"]
            source = "RTL=model" if (rs, rd) == (s, d) else "RTL!=MODEL"
            ok &= (rs, rd) == (s, d)
            s, d = rs, rd
        ratio = d / s / ideal_speedup
        # Ragged K: whole tiles bound the speedup below block/keep (e.g. K = 270: 17 dense vs 9 sparse K-tiles).
        bound = perf.ideal_cycles(dense, *shape) / perf.ideal_cycles(sparse, *shape)
        met = d / s / bound >= SPEEDUP_TARGET
        ok &= met
        figures["speedup"].append({"shape": shape, "sparse": s, "dense": d, "source": source, "ratio": ratio,
                                   "tiled_bound": bound})
        print(f"{','.join(map(str, shape)):<16} {s:>11} {d:>11} {source:>12} {d / s:>7.3f}x {ratio:>8.3f} "
              f"{bound:>10.3f}x {d / s / bound:>8.3f} {'yes' if met else 'NO':>4}")
    print(f"\nok: speedup >= {SPEEDUP_TARGET} x the tiled bound (dense / sparse ceil-tiled cycles), which is "
          f"block/keep = {ideal_speedup:g} whenever K is a multiple of both tiles' k")

    print(f"\n2. utilization of {SPARSE}: ideal cycles (M·k_tiles·n_tiles) / cycles; target >= {UTIL_TARGET:.0%} "
          f"for M >= 256\n")
    print(f"{'M,K,N':<16} {'cycles':>11} {'ideal':>11} {'source':>12} {'util':>8} {'ok':>4}")
    for shape in UTIL_SHAPES:
        c, ideal = perf.job_cycles(sparse, *shape), perf.ideal_cycles(sparse, *shape)
        source = "model"
        if shape in (UTIL_SHAPES[0], SPEEDUP_SHAPES[0]) and measured:
            rc = measured["util" if shape == UTIL_SHAPES[0] else sparse.top]["rtl_cycles"]
            source = "RTL=model" if rc == c else "RTL!=MODEL"
            ok &= rc == c
            c = rc
        util = ideal / c
        ok &= util >= UTIL_TARGET
        figures["utilization"].append({"shape": shape, "cycles": c, "ideal": ideal, "source": source, "util": util})
        print(f"{','.join(map(str, shape)):<16} {c:>11} {ideal:>11} {source:>12} {util:>7.1%} "
              f"{'yes' if util >= UTIL_TARGET else 'NO':>4}")
    for top, r in measured.items():
        top = sparse.top if top == "util" else top
        print(f"\nRTL {top}: {','.join(map(str, r['shape']))} in {r['rtl_cycles']} cycles (model {r['model_cycles']}), "
              f"{r['busy_cycles']} busy, {r['wall_s']:.1f} s wall under Verilator")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "rtl": measured}, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
