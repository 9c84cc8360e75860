"""`make bench` section "scale": Verilog emission time and size of large N:M arrays, and a Verilator build.

For square 2:4 int8 arrays (``SparseSystolicArray``, acc 32) of 8×8, 32×32, 64×64 and 128×128 PEs: the wall time of
:func:`gen.verilog.convert` emitting each array once (:mod:`hw.shared`: the PE and the PE row as one module each,
the grid of rows as hand-written Verilog, :mod:`hw.systolic.grid`; what ``make verilog`` does from
:data:`gen.verilog.EMIT_ONCE_MIN_PES` PEs on), the size of the one ``.v`` file and its module count, and, up to
``--old-max`` (default 8), the same with one module per PE instance (what smaller arrays keep). The emitted text is
checked to be identical on a second conversion of the smallest array (deterministic). ``--verilator N`` (default
32; 0: none) builds the N×N array's Verilog for cocotb on Verilator from scratch, as the tests do
(:func:`sim.common.runner.ensure_build`), and reports its wall and CPU time. The arrays are built from the component directly
(the same Verilog as ``python -m gen verilog --config ssa_16x16_2of4 --set rows=N --set cols=N``). Fails if 128×128 takes more than 30 s to emit
or the Verilator build more than 120 s of wall time.
"""

import argparse
import resource
import shutil
import time

from gen.paths import build_dir
from gen.verilog import convert
from hw.systolic.array import SparseSystolicArray
from sim.common.runner import build_dir_for, ensure_build, require_simulator

SIZES = (8, 32, 64, 128)
TARGET_128_S = 30.0
TARGET_BUILD_S = 120.0


def array(n):
    return SparseSystolicArray(rows=n, cols=n, act_bits=8, act_signed=True, weight_bits=8, acc_bits=32, keep=2,
                               block=4)


def emit(n, emit_once):
    """``(seconds, Verilog text)`` of the n×n array, elaboration and conversion included."""
    t0 = time.perf_counter()
    text = convert(array(n), f"ssa_{n}x{n}_2of4", emit_once=emit_once)
    return time.perf_counter() - t0, text


def modules(text):
    return text.count("\nmodule ") + text.startswith("module ")


def verilator_build(n):
    """``(wall s, CPU s, path)`` of a fresh cocotb Verilator build of the n×n array's emit-once Verilog."""
    require_simulator("verilator")
    top = f"ssa_{n}x{n}_2of4"
    path = build_dir() / "bench" / "scale" / f"{top}.v"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(emit(n, True)[1])
    shutil.rmtree(build_dir_for(path, top, "verilator", False), ignore_errors=True)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    _, seconds = ensure_build(path, top, "verilator", waves=False)
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return seconds, cpu, path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="array sizes n (n×n), comma-separated")
    parser.add_argument("--old-max", type=int, default=8, help="largest n also emitted one module per PE")
    parser.add_argument("--verilator", type=int, default=32, metavar="N",
                        help="build the N×N array in Verilator and time it (0: skip)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'array':>9} {'PEs':>6} {'emit once: s':>13} {'MB':>7} {'modules':>8} {'per PE: s':>10} {'MB':>7}")
    ok = True
    for n in sizes:
        seconds, text = emit(n, True)
        if n == sizes[0]:
            assert emit(n, True)[1] == text, "emitted Verilog differs between two conversions"
        old = f"{'':>10} {'':>7}"
        if n <= args.old_max:
            old_s, old_text = emit(n, False)
            old = f"{old_s:>10.1f} {len(old_text) / 1e6:>7.2f}"
        print(f"{n:>4}x{n:<4} {n * n:>6} {seconds:>13.1f} {len(text) / 1e6:>7.2f} {modules(text):>8} {old}",
              flush=True)
        if n == 128 and seconds > TARGET_128_S:
            ok = False
            print(f"128x128 emission {seconds:.0f} s > {TARGET_128_S:.0f} s target")
    if args.verilator:
        n = args.verilator
        wall, cpu, path = verilator_build(n)
        print(f"Verilator build (cocotb, {path}): {n}x{n} in {wall:.0f} s wall, {cpu:.0f} s CPU "
              f"(Verilator and the C++ compiler)")
        if wall > TARGET_BUILD_S:
            ok = False
            print(f"{n}x{n} Verilator build {wall:.0f} s > {TARGET_BUILD_S:.0f} s target")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
