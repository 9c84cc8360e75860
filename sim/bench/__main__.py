"""Run the benchmark sections: ``python -m sim.bench [--only NAME[,NAME…]] [--list]``.

Each section is a module of this package with ``main(argv) -> int`` (0 when its checks hold). Sections run in
the order of :data:`SECTIONS`; the exit status is non-zero if any section fails.
"""

import argparse
import importlib
import sys
import time

# name → module; each section prints its own tables
SECTIONS = {
    "systolic": "sim.bench.systolic",
    "scalesim": "sim.bench.scalesim",
    "traffic": "sim.bench.traffic",
    "rram": "sim.bench.rram",
    "rram_perf": "sim.bench.rram_perf",
    "mapping": "sim.bench.mapping",
    "gemm": "sim.bench.gemm",
    "os_systolic": "sim.bench.os_systolic",
    "actsparse": "sim.bench.actsparse",
    "scale": "sim.bench.scale",
    "soak": "sim.bench.soak",
    "sweep": "sim.bench.sweep",
    "network": "sim.bench.network",
    "seeds": "sim.bench.seeds",
    "synth": "sim.bench.synth",
}
# sections that run only when named with --only: synth places and routes for tens of minutes on 2 cores when
# its cache is cold (`make synth` runs it after synthesizing every preset); scale builds a 32x32 array in Verilator
# (minutes on a busy machine)
OPT_IN = {"synth", "scale"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated sections to run (default: all but %s)" % ", ".join(sorted(OPT_IN)))
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SECTIONS))
        return 0
    names = args.only.split(",") if args.only else [name for name in SECTIONS if name not in OPT_IN]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}: allowed {', '.join(SECTIONS)}")
    failed = []
    for name in names:
        print(f"\n=== bench: {name} ===", flush=True)
        t0 = time.perf_counter()
        status = importlib.import_module(SECTIONS[name]).main([])
        print(f"=== {name}: {'ok' if status == 0 else 'FAILED'} in {time.perf_counter() - t0:.0f} s ===", flush=True)
        if status:
            failed.append(name)
    if failed:
        print(f"bench: failed sections: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
