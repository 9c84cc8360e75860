"""`make bench` section "soak": at least 10⁵ beats through every design under Verilator, random valid/ready on
every stream, every output word checked against the golden model; beats per design, 0 lost, 0 duplicated.

Each design runs its cocotb module's ``soak`` test (``sim/<design>/cocotb_*.py``): sources idle with probability
0.3 and sinks hold ``ready`` low with probability 0.3 in every cycle (``sim.common.testbench.SOAK_GAP``/``_STALL``);
the scoreboard compares each result beat with the golden model as it leaves, and the test ends with the design's
counters checked. The table counts the beats that crossed each design's ports (inputs and outputs), the result
beats checked, and the result beats lost (expected, never sent), duplicated (sent beyond the expected ones) and the
input beats never taken. The section fails unless every design passed with at least ``--beats`` beats and all three
are 0. Replay one design with its printed seed: ``python -m sim.bench.soak --only NAME --seed N``.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from gen.config import load_config
from sim.common.runner import run_design, simulator_available, verilator_env

# name → (preset, cocotb module); the GEMM engine runs in both dataflows
DESIGNS = {
    "systolic": ("ssa_4x8_2of4", "sim.systolic.cocotb_array"),
    "gemm-ws": ("gemm_4x4_2of4", "sim.gemm.cocotb_engine"),
    "gemm-os": ("gemm_4x4_2of4_os", "sim.gemm.cocotb_engine"),
    "rram": ("rram_32x32_c2_small", "sim.rram.cocotb_tile"),
}
BEATS = 100_000


def soak(name, beats, seed, out_dir):
    """Run the ``soak`` cocotb test of design ``name``; returns its report (and the wall time)."""
    preset, module = DESIGNS[name]
    report = Path(out_dir) / f"{name}.json"
    t0 = time.perf_counter()
    run_design(load_config(preset), module, "verilator", seed=seed, testcase="soak", waves=False,
               knobs={"soak_beats": beats, "soak_report": report})
    return json.loads(report.read_text()) | {"design": name, "preset": preset,
                                              "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=BEATS, help=f"beats per design (default {BEATS})")
    parser.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    parser.add_argument("--only", action="append", choices=list(DESIGNS), help="run only these designs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.beats < 1:
        parser.error(f"--beats = {args.beats} is out of range: allowed 1 or more")
    ok, reason = simulator_available("verilator")
    if not ok:
        raise SystemExit(f"bench: verilator unavailable: {reason}")
    verilator_env()
    rows, failed = [], []
    with tempfile.TemporaryDirectory(prefix="sparsegen-bench-soak-") as tmp:
        for name in args.only or DESIGNS:
            try:
                rows.append(soak(name, args.beats, args.seed, tmp))
            except Exception as error:   # a failing run names its seed and its logs
                print(f"soak: {name} FAILED: {error}")
                failed.append(name)
    print(f"\nsoak: random gaps and backpressure (p = 0.3) on every stream, seed {args.seed}, "
          f"target >= {args.beats} beats per design\n")
    print(f"{'design':<10} {'preset':<22} {'beats':>8} {'checked':>8} {'lost':>5} {'dup':>4} {'unsent':>6} "
          f"{'cycles':>9} {'s':>6}  per stream")
    for r in rows:
        streams = ", ".join(f"{k} {v}" for k, v in r["per_stream"].items())
        print(f"{r['design']:<10} {r['preset']:<22} {r['beats']:>8} {r['checked']:>8} {r['lost']:>5} "
              f"{r['duplicated']:>4} {r['unsent']:>6} {r['cycles']:>9} {r['seconds']:>6}  {streams}")
        if r["beats"] < args.beats or r["lost"] or r["duplicated"] or r["unsent"]:
            failed.append(r["design"])
    if args.json:
        args.json.write_text(json.dumps({"beats_target": args.beats, "seed": args.seed, "designs": rows}, indent=1))
    if failed:
        print(f"soak: FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
