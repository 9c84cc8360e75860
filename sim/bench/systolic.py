"""`make bench`: generation time, Verilator build time, simulation throughput and cycle model vs RTL.

For each benchmarked preset, in one run:

- Verilog generation time (``generate_verilog``, elaboration plus Amaranth's Yosys conversion);
- Verilator build time (a fresh build: verilate plus C++ compilation);
- simulated cycles per wall-clock second under Verilator and Icarus (one load plus M back-to-back rows,
  every result still checked against the golden model) and their ratio;
- the array's cycles for that job against the closed form of ``gen.systolic.perf.job_cycles``.

Timings are wall-clock on this machine and vary run to run; the ratios are measured in the same run.
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from gen.config import load_config
from gen.verilog import write_verilog
from sim.common.runner import VERILATOR_OPT_FAST, build_dir_for, ensure_build, run_design, simulator_available, verilator_env

PRESETS = ("ssa_8x8_2of4", "ssa_16x16_2of4")


def bench_preset(preset, m, out_dir):
    cfg = load_config(preset)
    t0 = time.perf_counter()
    v_path = write_verilog(cfg, out_dir / preset)[0]
    row = {"preset": preset, "generate_s": time.perf_counter() - t0}
    for sim in ("verilator", "icarus"):
        build_dir = build_dir_for(v_path, cfg.top, sim, False)
        shutil.rmtree(build_dir, ignore_errors=True)          # time a fresh build
        _, build_s = ensure_build(v_path, cfg.top, sim, waves=False)
        report = out_dir / f"{preset}.{sim}.json"
        # the cached Verilog has the same text as v_path, so this runs on the build just timed
        run_design(cfg, "sim.systolic.cocotb_array", sim, seed=1, testcase="throughput", waves=False,
                   knobs={"rows": m, "bench": report})
        result = json.loads(report.read_text())
        row[sim] = {"build_s": build_s, **result,
                    "cycles_per_s": result["sim_cycles"] / result["wall_s"]}
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.systolic", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1024, help="activation rows M per job (default 1024)")
    parser.add_argument("--preset", action="append", help="preset(s) to run (default: %s)" % ", ".join(PRESETS))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    for sim in ("verilator", "icarus"):
        ok, reason = simulator_available(sim)
        if not ok:
            raise SystemExit(f"bench: {sim} unavailable: {reason}")
    verilator_env()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sparsegen-bench-") as tmp:
        for preset in args.preset or PRESETS:
            rows.append(bench_preset(preset, args.rows, Path(tmp)))

    print(f"\nsparse systolic array benchmark, M = {args.rows} rows per job (one load + M back-to-back rows), "
          f"Verilator OPT_FAST={VERILATOR_OPT_FAST}\n")
    print(f"{'preset':<16} {'gen s':>7} {'vl build s':>10} {'vl cyc/s':>10} {'iv cyc/s':>10} {'vl/iv':>7} "
          f"{'RTL cycles':>10} {'closed form':>11} {'match':>6}")
    for r in rows:
        vl, iv = r["verilator"], r["icarus"]
        same = vl["job_cycles"] == iv["job_cycles"] == vl["closed_form"]
        print(f"{r['preset']:<16} {r['generate_s']:>7.2f} {vl['build_s']:>10.1f} {vl['cycles_per_s']:>10.0f} "
              f"{iv['cycles_per_s']:>10.0f} {vl['cycles_per_s'] / iv['cycles_per_s']:>7.2f} "
              f"{vl['job_cycles']:>10} {vl['closed_form']:>11} {'yes' if same else 'NO':>6}")
    print("\ncycles/s: simulated clock cycles per wall second inside the cocotb test (Python testbench included);"
          "\nRTL cycles: first weight beat to last result beat, measured by the testbench on both simulators.")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["verilator"]["job_cycles"] == r["icarus"]["job_cycles"] == r["verilator"]["closed_form"]
                    for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
