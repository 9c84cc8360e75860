"""``make demo`` (``python -m sim.network.demo``): the digits CNN end to end, on the models and on the RTL.

Runs the test split through the float and int8 models, ``--images`` test images (default 100, ``IMAGES=n`` in
make) through the GEMM engine's and the RRAM tile's Verilog under Verilator (progress bars), the pruned networks
on a few images (2:4 on the GEMM engine, 50 % unstructured with the ``ou-sparse`` mapping on the tile), the
pruning study and the analog sweeps (``--chips`` chips each, ``--analog-images`` images); prints the accuracy
table, bit-exactness and the time it took, and writes the plots (PNG and PDF) into ``<build>/network/plots``.
Exit status 1 if any RTL layer differed from the int8 golden.
"""

import argparse
import json
import time

from sim.network.accuracy import default_out_dir, run_study, table

__all__ = ["main"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.network.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="test images through each RTL (default 100)")
    parser.add_argument("--rram-images", type=int, default=None,
                        help="test images through the RRAM tile's RTL (default: --images)")
    parser.add_argument("--sparse-images", type=int, default=10, help="images of the pruned networks on the RTL")
    parser.add_argument("--chips", type=int, default=10, help="chips per analog point (default 10)")
    parser.add_argument("--analog-images", type=int, default=150, help="test images per analog point (default 150)")
    parser.add_argument("--json", default=None, help="also write the result as JSON to this file")
    args = parser.parse_args(argv)
    start = time.monotonic()
    out = default_out_dir()
    res = run_study(rtl_images=args.images, rram_images=args.rram_images, chips=args.chips, analog_images=args.analog_images,
                    rram_sparse_images=args.sparse_images, out_dir=out)
    print(table(res))
    for path, r in res.get("rtl", {}).items():
        print(f"{path}: {r['images']} images, {r['cycles']['total']} cycles "
              f"({r['cycles']['total'] // max(1, r['images'])} per image), {r['seconds']:.0f} s, "
              f"bit-exact {r['bit_exact']}")
    print(f"\nbit-exact (every RTL layer = int8 golden): {res['bit_exact']}")
    print(f"plots ({len(res['plots'])} files): {out}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    print(f"demo took {time.monotonic() - start:.0f} s")
    return 0 if res["bit_exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
