"""`make bench` section: traffic per job (A, W, C bytes) of our GEMM engine next to SCALE-Sim's DRAM traffic.

Ours is :func:`gen.gemm.traffic.job_traffic`: the bytes crossing the engine's ports, given its buffers (one weight
tile plus a two-tile weight buffer, ``max_m × cols`` partial sums, no activation buffer: A is re-streamed once per
N-tile in WS, W once per M-tile in OS). SCALE-Sim's (:func:`sim.ref.scalesim.run_scalesim`, full memory model) are
the DRAM words its memory model reads and writes with its IFMAP, filter and OFMAP SRAMs of ``SRAM_KB`` each (1 MiB:
every operand here fits, so it fetches each one once), one byte per word (int8). Both engines are dense, one MAC
per PE, the same ``rows × cols`` array and dataflow (:func:`sim.bench.scalesim.ours_config`). Our C is the result
beats (``result_bits`` = 32 here, no requantization); SCALE-Sim writes one word per output.

The section fails if SCALE-Sim's reads are not the compulsory ``M·K`` / ``K·N`` words (its SRAMs hold everything)
or ours differ from the hand-derived formula of the module above on the 64×64×64 GEMM.
"""

import argparse

from gen.gemm.traffic import job_traffic
from sim.bench.scalesim import ours_config
from sim.ref.scalesim import ScaleSimUnavailable, conv_to_gemm, run_scalesim

SHAPES = {"GEMM 64x64x64": (64, 64, 64),
          "resnet18 layer2.0.downsample": conv_to_gemm(56, 56, 64, 128, 1, 1, 2, 0)}
ARRAY = (8, 8)


def rows_for(dataflow, name, shape):
    m, k, n = shape
    cfg = ours_config(dataflow, *ARRAY, None, m, k, n)
    ours = job_traffic(cfg, m, k, n)
    ref, = run_scalesim(dataflow, *ARRAY, [shape], memory=True)
    return {"name": name, "dataflow": dataflow, "shape": shape, "ours": ours, "scalesim": ref["dram"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.bench.traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 64x64x64 GEMM")
    args = parser.parse_args(argv)
    shapes = dict(list(SHAPES.items())[:1]) if args.quick else SHAPES
    try:
        rows = [rows_for(df, name, shape) for name, shape in shapes.items() for df in ("ws", "os")]
    except ScaleSimUnavailable as error:
        print(f"traffic: SCALE-Sim unavailable ({error}); skipped")
        return 0
    print(f"{'shape (M×K×N)':<34} {'df':<3} {'ours A':>9} {'ours W':>8} {'ours C':>9} {'SS ifmap':>9} "
          f"{'SS filter':>9} {'SS ofmap':>9}   (bytes; {ARRAY[0]}x{ARRAY[1]} dense, int8, SCALE-Sim SRAMs 1 MiB)")
    ok = True
    for r in rows:
        m, k, n = r["shape"]
        o, s = r["ours"], r["scalesim"]
        print(f"{r['name'] + f' {m}×{k}×{n}':<34} {r['dataflow']:<3} {o['a_bytes']:>9.0f} {o['w_bytes']:>8.0f} "
              f"{o['c_bytes']:>9.0f} {s['ifmap_reads']:>9} {s['filter_reads']:>9} {s['ofmap_writes']:>9}")
        ok &= s["ifmap_reads"] >= m * k and s["filter_reads"] >= k * n
    m, k, n = 64, 64, 64
    ws = rows[0]["ours"]
    ok &= ws == {"a_bytes": 8 * m * k, "w_bytes": k * n, "c_bytes": m * n * 4}     # nt = 8 N-tiles of A
    print("ours: bytes over the engine's ports (gen/gemm/traffic.py); SS: SCALE-Sim DRAM words (1 byte each)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
