"""``python -m gen map-report``: prune, quantize and map a network onto RRAM crossbars and report the figures."""

import json
import sys
from pathlib import Path

from hw import checks

from gen.compiler.energy import EnergyTable
from gen.compiler.networks import NETWORKS
from gen.compiler.sparse_map import SLOTS, STRATEGIES
from gen.compiler.workloads import QUANTIZERS, shipped_weights

__all__ = ["register"]


def _pair(text, option):
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{option} {text!r} is not ROWSxCOLS, e.g. 128x128")
    return int(parts[0]), int(parts[1])


def _run(args):
    from gen.compiler.report import format_report, map_report

    table = EnergyTable.from_json(args.energy) if args.energy else EnergyTable()
    checks.check_int("--round", args.round, 0)
    checks.check_choice("--slots", args.slots, SLOTS)
    result = map_report(net=args.net, weights=args.weights, onnx=args.onnx, prune=args.prune, quant=args.quant,
                        strategy=args.mapping, xbar=_pair(args.xbar, "--xbar"), ou=_pair(args.ou, "--ou"),
                        cell_bits=args.cell_bits, round_error=args.round, input_bits=args.input_bits,
                        dac_bits=args.dac_bits, adc_bits=args.adc_bits, seed=args.seed, table=table,
                        progress=not args.quiet, slots=args.slots)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(format_report(result))
    return 0


def register(commands):
    p = commands.add_parser("map-report", help="prune, quantize and map a network onto RRAM crossbars; report it",
                            description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--net", help=f"built-in network: {', '.join(NETWORKS)} (synthetic seeded weights)")
    source.add_argument("--weights", metavar="NPZ", help="weights, one array per layer: a .npz file or a shipped "
                        f"name ({', '.join(shipped_weights())})")
    source.add_argument("--onnx", type=Path, metavar="MODEL",
                        help="an ONNX model: its Conv/Gemm/MatMul weights, positions from shape inference, depthwise "
                             "convs detected, other operators skipped with a note (needs the onnx extra)")
    p.add_argument("--prune", default="none", metavar="SPEC",
                   help="none | magnitude:ratio=R | nm:KEEP:BLOCK | pattern:k=K,P=P[,connectivity=C,group=G] | "
                        "ou:ratio=R[,ou_rows=..,outputs_per_group=..] | "
                        "pe:ratio=R[,rows=..,block=..,cols=..,group=..] | sense (default none)")
    p.add_argument("--quant", default="int8", help=f"{' | '.join(QUANTIZERS)} (default int8)")
    p.add_argument("--mapping", "--strategy", default="dense", metavar="STRATEGY",
                   help=f"{' | '.join(STRATEGIES)}, or a '+' composition (default dense; --strategy is the same)")
    p.add_argument("--slots", default="shared", metavar="PACKING",
                   help=f"{' | '.join(SLOTS)}: compacted strategies let column groups share slots through the per-OU "
                        "routing where that saves crossbars (default shared), or keep one column group per slot "
                        "(single, the packing before mapping format v2)")
    p.add_argument("--xbar", default="128x128", help="crossbar ROWSxCOLS (default 128x128)")
    p.add_argument("--ou", default="9x8", help="operation unit ROWSxCOLS (default 9x8)")
    p.add_argument("--cell-bits", type=int, default=2, help="bits per cell: 1, 2 or 4 (default 2)")
    p.add_argument("--round", type=int, default=0, metavar="E",
                   help="bit-squeeze: round weights by at most E units toward fewer non-zero slices (default 0)")
    p.add_argument("--input-bits", type=int, default=8, help="signed input width (default 8)")
    p.add_argument("--dac-bits", type=int, default=1, help="DAC bits per input step (default 1)")
    p.add_argument("--adc-bits", type=int, default=None, help="ADC bits for the energy model (default lossless)")
    p.add_argument("--energy", type=Path, metavar="JSON", help="override entries of the energy table")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic weights (default 0)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(run=_run)
