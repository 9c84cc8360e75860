"""`make bench` section "rram_perf": the RRAM tile's cycles against the limit, RTL (Verilator) = model.

For the three workloads of :mod:`sim.rram.perf_workloads` (dense 128 × 32 on ``rram_128x128_c2_ou9x8_adc5``, the
kernel-reordered pattern-pruned conv2 of the toy CNN on the same preset, a dense 64 × 16 layer on 4 crossbars of
``rram_64x64_c1``), each with ``adcs_per_xbar = ou_cols`` and 1: the cycles of an isolated MVM and per vector of 8
back to back, measured under Verilator (``sim.rram.cocotb_tile.bench_cycles``, every output checked against the
golden), the model (``gen/rram/perf.py``), the limit L, the ratio, and the sequential v1 controller's cycles for
the same work. Targets: isolated ≤ 1.15 L, stream ≤ 1.10 L per vector, RTL = model. Then the controller's ECP5
area and fmax (``crossbar = "external"``) of every RRAM preset from the synthesis flow, exactly as ``python -m gen
synth --config PRESET`` runs it (:func:`gen.synth.flow.synthesize`, so a ``make synth`` result is reused from the
cache; a cold run is about 15 min for the 128 × 128 preset on 2 cores); target ≥ 100 MHz. ``--no-synth`` skips it.
"""

import dataclasses

import argparse
import json
import tempfile
from pathlib import Path

from gen.config import list_presets, load_config
from gen.paths import build_dir
from gen.rram import perf
from gen.synth.flow import format_table, synthesize, tools_available
from sim.common.runner import run_design, simulator_available, verilator_env
from sim.rram.perf_workloads import WORKLOADS, workload
from sim.rram.tables import save_mapping

MVM_TARGET, STREAM_TARGET, VECTORS = 1.15, 1.10, 8
FMAX_TARGET = 100.0     # MHz, issue #12


def synth_rows():
    """ECP5 figures of every RRAM preset's controller: ``[(preset, report), ...]``."""
    rows = []
    for name in [p for p in list_presets() if load_config(p).kind == "rram"]:
        cfg = dataclasses.replace(load_config(name), crossbar="external")
        rows.append((name, synthesize(cfg, target="ecp5", out_dir=build_dir() / "synth" / name)))
    return rows


def print_synth(rows) -> bool:
    """Print the synthesis table (:func:`gen.synth.flow.format_table`); True when every controller reaches
    :data:`FMAX_TARGET`."""
    print(f"\nRRAM controllers on ECP5 (crossbar = \"external\", as python -m gen synth --config PRESET), "
          f"target >= {FMAX_TARGET:.0f} MHz\n")
    print(format_table(rows))
    return all(rep.get("pnr", {}).get("fmax_mhz", 0) >= FMAX_TARGET for _, rep in rows)


def rtl(cfg, mapping, out_dir):
    """The measured cycles of ``mapping`` on ``cfg``'s tile under Verilator."""
    tag = cfg.top
    save_mapping(out_dir / f"{tag}.npz", mapping)
    report = out_dir / f"{tag}.json"
    run_design(cfg, "sim.rram.cocotb_tile", "verilator", seed=1, testcase="bench_cycles", waves=False,
               knobs={"bench": report, "bench_mapping": out_dir / f"{tag}.npz", "bench_vectors": VECTORS})
    return json.loads(report.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.rram_perf", description=__doc__.splitlines()[0])
    parser.add_argument("--no-rtl", action="store_true", help="cycle model only (skip the Verilator runs)")
    parser.add_argument("--no-synth", action="store_true", help="skip the controllers' synthesis")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not args.no_rtl:
        ok, reason = simulator_available("verilator")
        if not ok:
            raise SystemExit(f"bench: verilator unavailable: {reason}")
        verilator_env()
    ok, rows = True, []
    print(f"\nRRAM tile cycles: isolated MVM and per vector of {VECTORS} back to back (ideal host); "
          f"targets <= {MVM_TARGET} L and <= {STREAM_TARGET} L\n")
    print(f"{'workload':<22} {'ADCs':>4} {'RTL MVM':>8} {'model':>7} {'L':>7} {'ratio':>6} {'RTL/vec':>8} "
          f"{'model':>8} {'L/vec':>7} {'ratio':>6} {'v1 MVM':>8} {'ok':>4}")
    with tempfile.TemporaryDirectory(prefix="sparsegen-bench-rram-") as tmp:
        for name in WORKLOADS:
            for adcs in ("ou_cols", "1"):
                cfg, mapping = workload(name, adcs)
                r = perf.report(cfg, mapping, VECTORS)
                model_stream = r["stream_cycles_per_vector"] * VECTORS
                got = rtl(cfg, mapping, Path(tmp)) if not args.no_rtl else {"mvm_cycles": r["mvm_cycles"],
                                                                            "stream_cycles": model_stream}
                mvm, per_vector = got["mvm_cycles"], got["stream_cycles"] / VECTORS
                met = (mvm == r["mvm_cycles"] and got["stream_cycles"] == model_stream
                       and mvm <= MVM_TARGET * r["limit_cycles"]
                       and per_vector <= STREAM_TARGET * r["stream_limit_per_vector"])
                ok &= met
                rows.append({"workload": name, "adcs": cfg.adcs, "rtl": got, "model": r})
                print(f"{name:<22} {cfg.adcs:>4} {mvm:>8} {r['mvm_cycles']:>7} {r['limit_cycles']:>7} "
                      f"{mvm / r['limit_cycles']:>6.3f} {per_vector:>8.1f} {r['stream_cycles_per_vector']:>8.1f} "
                      f"{r['stream_limit_per_vector']:>7} {per_vector / r['stream_limit_per_vector']:>6.3f} "
                      f"{r['old_mvm_cycles']:>8} {'yes' if met else 'NO':>4}")
    print(f"\n(RTL columns {'from the model: --no-rtl' if args.no_rtl else 'measured under Verilator'}; "
          "v1 MVM: the sequential controller this tile replaced)")
    synth = []
    if not args.no_synth:
        available, reason = tools_available()
        if available:
            synth = synth_rows()
            ok &= print_synth(synth)
        else:
            print(f"\n(synthesis skipped: {reason})")
    if args.json:
        args.json.write_text(json.dumps({"cycles": rows, "synth": [
            {"preset": name, "resources": rep["resources"], "fmax_mhz": rep.get("pnr", {}).get("fmax_mhz")}
            for name, rep in synth]}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
