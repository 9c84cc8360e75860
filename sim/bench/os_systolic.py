"""`make bench` section "os_systolic": the output-stationary core's cycles against its closed form, and speed.

For each (core, tile size) case, in one run: n back-to-back random tiles of T K-blocks through the core's Verilog
(every result checked against the golden model), the RTL's cycles from the first step to the last result beat
against ``gen.gemm.os_perf.stream_cycles``, the multiplier utilization that implies
(``macs / (cycles · rows · cols · keep)``), and simulated cycles per wall-clock second under Verilator and Icarus.
Tiles shorter than ``rows`` K-blocks show the output-bandwidth bound ``max(T, rows)`` cycles per tile.
"""

import argparse
import json
import tempfile
from pathlib import Path

from sim.gemm.os_core import OSCoreParams
from sim.common.runner import run_design, simulator_available, verilator_env

CORES = (OSCoreParams(rows=8, cols=8, keep=2, block=4),)
CASES = ((32, 32), (32, 8), (32, 2))          # (tiles, K-blocks per tile)


def bench_case(p, n, t, sim, out_dir):
    report = out_dir / f"{p.top}.{n}x{t}.{sim}.json"
    run_design(p, "sim.gemm.cocotb_os_array", sim, seed=1, testcase="throughput", waves=False,
               knobs={"os_tiles": f"{n},{t}", "bench": report})
    return json.loads(report.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.os_systolic", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    for sim in ("verilator", "icarus"):
        ok, reason = simulator_available(sim)
        if not ok:
            raise SystemExit(f"bench: {sim} unavailable: {reason}")
    verilator_env()
    rows, status = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for p in CORES:
            for n, t in CASES:
                row = {"core": p.top, "tiles": n, "k_blocks": t}
                for sim in ("verilator", "icarus"):
                    r = bench_case(p, n, t, sim, Path(tmp))
                    row[sim] = r | {"cycles_per_s": r["sim_cycles"] / r["wall_s"]}
                rows.append(row)
    print("| core | tiles × T | RTL cycles | closed form | MAC utilization | Verilator cycles/s | Icarus cycles/s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        p = next(c for c in CORES if c.top == row["core"])
        v = row["verilator"]
        util = v["macs"] / (v["stream_cycles"] * p.rows * p.cols * p.keep)
        print(f"| `{row['core']}` | {row['tiles']} × {row['k_blocks']} | {v['stream_cycles']} | {v['closed_form']} "
              f"| {util:.1%} | {v['cycles_per_s']:,.0f} | {row['icarus']['cycles_per_s']:,.0f} |")
        for sim in ("verilator", "icarus"):
            if row[sim]["stream_cycles"] != row[sim]["closed_form"]:
                print(f"MISMATCH: {sim} {row['core']} {row['tiles']}×{row['k_blocks']}: RTL "
                      f"{row[sim]['stream_cycles']} cycles, closed form {row[sim]['closed_form']}")
                status = 1
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
