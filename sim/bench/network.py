"""Bench section ``network``: the digits CNN through every path: images per second, RTL cycles per image from
the cycle models, and the accuracy table (``python -m sim.bench --only network``).

Float, int8 golden and the ideal analog model run the 450 test images; the GEMM engine's RTL 20 and the RRAM
tile's RTL 20 (Verilator, one simulation each: the figure includes the simulator start and, for the tile,
programming every layer once). Fails when an RTL layer differs from the int8 golden.
"""

import time

import numpy as np

from gen.network.data import digits
from gen.network.spec import load
from sim.network.pipeline import evaluate
from sim.network.rtl import model_cycles

__all__ = ["main"]

RTL_IMAGES = {"gemm_rtl": 20, "rram_rtl": 20}


def main(argv=None) -> int:
    fnet, qnet = load("digits-float"), load("digits-int8")
    xt, yt = digits("test")
    rows, ok = [], True
    for path, net, n in (("float", fnet, 450), ("int8", qnet, 450), ("analog", qnet, 450),
                         ("gemm_rtl", qnet, RTL_IMAGES["gemm_rtl"]), ("rram_rtl", qnet, RTL_IMAGES["rram_rtl"])):
        t0 = time.perf_counter()
        r = evaluate(net, xt[:n], yt[:n], path)
        dt = time.perf_counter() - t0
        ok &= r.get("bit_exact", True)
        rows.append((path, n, r["accuracy"], n / dt, r.get("cycles", {}).get("total")))
    print("| path | images | accuracy | images/s | simulated cycles |")
    print("|---|---:|---:|---:|---:|")
    for path, n, acc, ips, cyc in rows:
        print(f"| {path} | {n} | {acc:.2%} | {ips:.3g} | {'' if cyc is None else cyc} |")
    print("\nRTL cycles per image from the cycle models (ideal host; RRAM: MVMs only):")
    print("| engine | " + " | ".join(l.name for l in qnet.weighted) + " | total |")
    print("|---|" + "---:|" * (len(qnet.weighted) + 1))
    for engine in ("gemm", "rram"):
        c = model_cycles(qnet, engine)
        print(f"| {engine} | " + " | ".join(str(c[l.name]) for l in qnet.weighted) + f" | {c['total']} |")
    print(f"\nbit-exact: {ok}")
    return 0 if ok and np.isfinite(rows[0][2]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
