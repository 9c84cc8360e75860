"""`make bench` section "scale": Verilog emission time and size of large N:M arrays (emit once vs per instance).

For square 2:4 int8 arrays (``SparseSystolicArray``, acc 32) of 8×8, 32×32, 64×64 and 128×128 PEs: the wall time of
:func:`gen.verilog.convert` with each distinct PE row and PE emitted once (:mod:`hw.shared`; what ``make verilog``
does from :data:`gen.verilog.EMIT_ONCE_MIN_PES` PEs on) and the size of the one ``.v`` file, and, up to ``--old-max``
(default 32), the same with one module per PE instance (what smaller arrays keep). The emitted text is checked to be
identical on a second conversion of the smallest array (deterministic). The configs stop at 64×64 (``rows``,
``cols`` ≤ 64), so the 128×128 row builds the component directly.
"""

import argparse
import time

from gen.verilog import convert
from hw.systolic.array import SparseSystolicArray

SIZES = (8, 32, 64, 128)
TARGET_128_S = 30.0


def emit(n, emit_once):
    t0 = time.perf_counter()
    arr = SparseSystolicArray(rows=n, cols=n, act_bits=8, act_signed=True, weight_bits=8, acc_bits=32, keep=2,
                              block=4)
    text = convert(arr, f"ssa_{n}x{n}_2of4", emit_once=emit_once)
    return time.perf_counter() - t0, text


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="array sizes n (n×n), comma-separated")
    parser.add_argument("--old-max", type=int, default=32, help="largest n also emitted one module per PE")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'array':>9} {'PEs':>6} {'emit once: s':>13} {'MB':>7} {'modules':>8} {'per PE: s':>10} {'MB':>7}")
    ok = True
    for n in sizes:
        seconds, text = emit(n, True)
        if n == sizes[0]:
            assert emit(n, True)[1] == text, "emitted Verilog differs between two conversions"
        modules = text.count("\nmodule ") + text.startswith("module ")
        old = f"{'':>10} {'':>7}"
        if n <= args.old_max:
            old_s, old_text = emit(n, False)
            old = f"{old_s:>10.1f} {len(old_text) / 1e6:>7.2f}"
        print(f"{n:>4}x{n:<4} {n * n:>6} {seconds:>13.1f} {len(text) / 1e6:>7.2f} {modules:>8} {old}", flush=True)
        if n == 128 and seconds > TARGET_128_S:
            ok = False
            print(f"128x128 emission {seconds:.0f} s > {TARGET_128_S:.0f} s target")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
