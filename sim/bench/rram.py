"""`make bench` section ``rram``: accuracy of the float RRAM physics model, and its speed against the golden model.

Runs the default accuracy sweep of :mod:`gen.rram.sweep` (the same as ``python -m gen rram-sweep``): tables of
relative RMS error against ``x @ W`` and PNG plots into ``<build>/rram-sweep``; then times one 128 × 128 crossbar
(9 × 8 OUs, int8 × int8, 64 vectors) through :func:`gen.rram.analog.physics_mvm` and
:func:`hw.formats.mvm.mvm`. Exit status 0 when the cross-check holds (noise-free 9-row OUs: a 5-bit ADC is exact,
a 4-bit one is not, both equal to the integer golden model) and every ideal sweep point equals the golden model.
"""

import argparse
import json
import time
from pathlib import Path

from gen.paths import build_dir
from gen.rram.analog import PhysicsParams, physics_mvm
from gen.rram.sweep import DEFAULT, mapping_for, format_tables, run_sweep, workload, write_plots
from hw.formats.mvm import mvm


def _best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.rram", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=build_dir() / "rram-sweep", help="PNG directory")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = run_sweep(DEFAULT)
    print(format_tables(result))
    print("\nplots:", *write_plots(result, args.out), sep="\n  ")
    print(f"sweep: {result['seconds']:.1f} s")

    w, x = workload(DEFAULT.seed, 64)
    mapping = mapping_for(w, 9)
    speed = {"golden_s": _best_of(lambda: mvm(mapping, x, adc_bits=5)),
             "physics_ideal_s": _best_of(lambda: physics_mvm(mapping, x, PhysicsParams.ideal(), adc_bits=5)),
             "physics_default_s": _best_of(lambda: physics_mvm(mapping, x, PhysicsParams(), adc_bits=5))}
    print("\n64 int8 vectors through one 128×128 crossbar (9×8 OUs, 240 OUs × 8 planes), best of 5:")
    for name, seconds in speed.items():
        print(f"  {name[:-2]:<16} {1e3 * seconds:7.1f} ms  {64 / seconds:9.0f} vectors/s")
    result["speed"] = speed
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    cc = result["cross_check"]
    ok = (cc["adc5_error"] == 0 < cc["adc4_error"] and cc["matches_golden"]
          and result["adc_ou"]["ideal_matches_golden"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
