"""`make synth` / `python -m sim.bench --only synth`: does the sparse PE pay for itself, and how fast is a dense array?

The three arrays of the comparison cover the same reduction per pass: 8 × 8 PEs, block 4, so
``k = rows · block = 32`` and every activation row makes one pass through the same ``rows · cols · block``
weight positions. The dense array multiplies all 4 positions of a block (256 multipliers); the 2:4 and 1:4
arrays only the kept ones (128 and 64), selecting their activations with the index muxes. Throughput is one
activation row per cycle in each, so at equal clock the sparse arrays do the same work with fewer multipliers.

Each design is synthesized for the ECP5 LFE5U-85F (:mod:`gen.synth.flow`; results cached), at ``pe_pipeline`` 0
(the presets as they are) and 4 (every register stage of :class:`hw.systolic.pe.SparsePE`). Area:

- fabric: ``LUT4 + 2·CCU2C + FF`` (a CCU2C holds two LUT4s), with DSPs listed separately;
- total: fabric ``+ E · MULT18X18D``, where ``E`` is the LUT-equivalent of one DSP multiplier, *measured* in
  the same run as the fabric cost (``LUT4 + 2·CCU2C``) of a lone act_bits × weight_bits signed multiplier
  synthesized with ``-nodsp`` (:func:`gen.synth.flow.multiplier_lut_equivalent`).

The dense array's 256 MULT18X18D exceed the device's 156, so its area comes from synthesis and its fmax from
the largest row slice that fits (4 × 8, 128 DSPs; ``pnr.from_slice``): every critical path lies inside a PE or a
column's adder chain, so the slice has the same ones. The 100 MHz fmax target is also measured on the
``dense_8x8`` preset: 8 × 8 PEs of one int8 MAC each (64 DSPs, ``pe_pipeline = 3``), placed whole.

Targets: the 2:4 array uses at most 0.6 × the dense array's total area (the Sparse Systolic Tensor Array
paper, Liu et al. 2020, reports 3.14× area efficiency at equal throughput), its fmax is within 10 % of
dense, and the dense 8 × 8 int8 array reaches 100 MHz. They are reported, not enforced: the section fails only
if the flow fails.
"""

import argparse
import concurrent.futures
import json
import os
from pathlib import Path

from gen.config import load_config
from gen.paths import build_dir
from gen.synth.flow import SynthError, multiplier_lut_equivalent, synthesize, tools_available

# (label, preset) of the equal-throughput comparison
DESIGNS = (("dense", "dense_8x8_4of4"), ("2:4", "ssa_8x8_2of4"), ("1:4", "ssa_8x8_1of4"))
FMAX_PRESET = "dense_8x8"
PIPELINES = (0, 4)
AREA_TARGET = 0.6
FMAX_TOLERANCE = 0.10
DENSE_FMAX_TARGET = 100.0


def _job(preset, overrides, freq):
    cfg = load_config(preset, overrides)
    name = preset + "".join(f"_{k}{v}" for k, v in overrides.items())
    return cfg, synthesize(cfg, target="ecp5", out_dir=build_dir() / "synth" / "bench" / name, freq_mhz=freq)


def measure(freq=100.0, pipelines=PIPELINES, jobs=1):
    """Reports of every (design, pipeline), of the dense_8x8 preset, and the DSP LUT-equivalent (cached flow)."""
    keys = [(label, preset, p) for p in pipelines for label, preset in DESIGNS]
    with concurrent.futures.ProcessPoolExecutor(max(1, jobs)) as pool:
        futures = {key: pool.submit(_job, key[1], {"pe_pipeline": key[2]}, freq) for key in keys}
        fmax = pool.submit(_job, FMAX_PRESET, {}, freq)
        rows = {key: future.result() for key, future in futures.items()}
        fmax = fmax.result()
    dense_cfg = rows[keys[0]][0]
    mul = multiplier_lut_equivalent(dense_cfg.act_bits, dense_cfg.weight_bits, signed=dense_cfg.act_signed,
                                    workdir=build_dir() / "synth" / "dsp_lut_equivalent")
    return rows, fmax, mul


def figures(rows, pipeline, mul):
    """Per-design area and fmax at one ``pipeline``, and the ratios to the dense design (the first row)."""
    out = []
    for label, preset in DESIGNS:
        cfg, r = rows[(label, preset, pipeline)]
        res, pnr = r["resources"], r["pnr"]
        fabric = res["lut4"] + 2 * res["carry"] + res["ff"]
        sliced = pnr.get("from_slice")
        out.append({"design": label, "preset": preset, "top": cfg.top, "multipliers": cfg.multipliers, "k": cfg.k,
                    "lut4": res["lut4"], "carry": res["carry"], "ff": res["ff"], "dsp": res["dsp"],
                    "bram": res["bram"], "fabric": fabric, "total": fabric + mul["lut_equivalent"] * res["dsp"],
                    "fmax_mhz": pnr.get("fmax_mhz"),
                    "fmax_from": f"{sliced['rows']} x {cfg.cols} slice ({sliced['why']})" if sliced else "whole design",
                    "critical_path": pnr.get("critical_path"), "dsp_packing": r.get("dsp_packing", {}).get("timing"),
                    "runtime_s": r["runtime_s"]["total"], "cached": r.get("cached", False)})
    dense = out[0]
    for row in out:
        row["fabric_ratio"] = row["fabric"] / dense["fabric"]
        row["total_ratio"] = row["total"] / dense["total"]
        row["fmax_ratio"] = (row["fmax_mhz"] / dense["fmax_mhz"]) if row["fmax_mhz"] and dense["fmax_mhz"] else None
    return out


def _print_table(table, pipeline):
    print(f"\npe_pipeline = {pipeline}")
    head = (f"{'design':<6} {'top':<28} {'mults':>5} {'LUT4':>6} {'CCU2C':>6} {'FF':>6} {'DSP':>4} {'fabric':>7} "
            f"{'total':>7} {'fabric/d':>8} {'total/d':>8} {'fmax':>6} {'fmax/d':>6}  runtime")
    print(head)
    print("-" * len(head))
    for row in table:
        fmax = f"{row['fmax_mhz']:.1f}" if row["fmax_mhz"] else "-"
        fr = f"{row['fmax_ratio']:.2f}" if row["fmax_ratio"] else "-"
        print(f"{row['design']:<6} {row['top']:<28} {row['multipliers']:>5} {row['lut4']:>6} {row['carry']:>6} "
              f"{row['ff']:>6} {row['dsp']:>4} {row['fabric']:>7} {row['total']:>7} {row['fabric_ratio']:>8.2f} "
              f"{row['total_ratio']:>8.2f} {fmax:>6} {fr:>6}  {row['runtime_s']:.0f} s{' (cached)' if row['cached'] else ''}")
    for row in table:
        cp = row["critical_path"] or {}
        print(f"  {row['design']}: fmax from the {row['fmax_from']}; DSPs {row['dsp_packing']}; critical path "
              f"{cp.get('from')} -> {cp.get('to')}, {cp.get('delay_ns')} ns of which {cp.get('logic_ns')} ns logic")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sim.bench.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--freq", type=float, default=100.0, help="clock constraint in MHz (default 100)")
    parser.add_argument("--pe-pipeline", type=int, action="append", choices=(0, 1, 2, 3, 4),
                        help="pe_pipeline of the three designs (repeatable; default 0 and 4)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="flows run at once")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    ok, reason = tools_available()
    if not ok:
        raise SystemExit(f"bench: synth: {reason}")
    pipelines = tuple(args.pe_pipeline or PIPELINES)
    try:
        rows, (fmax_cfg, fmax_report), mul = measure(args.freq, pipelines, args.jobs)
    except SynthError as error:
        print(f"bench: synth: {error}")
        return 1
    device = fmax_report["device"]["device"]
    print(f"Equal effective throughput: 8x8 PEs, block 4, k = 32 each; ECP5 {device}, out of context, clock "
          f"constrained to {args.freq:g} MHz; DSP registers packed (gen/synth/ecp5_dsp.py).")
    print(f"DSP LUT-equivalent E = {mul['lut_equivalent']} (a lone {mul['top']} in fabric: {mul['lut4']} LUT4 + "
          f"2 x {mul['carry']} CCU2C)")
    tables = {p: figures(rows, p, mul) for p in pipelines}
    for p, table in tables.items():
        _print_table(table, p)
    print("\nfabric = LUT4 + 2*CCU2C + FF; total = fabric + E*DSP; /d = ratio to dense.")
    fp = fmax_report["pnr"]
    cp = fp.get("critical_path", {})
    print(f"\n{FMAX_PRESET} ({fmax_cfg.top}: 8x8 PEs, one int8 MAC each, {fmax_cfg.multipliers} DSPs, pe_pipeline = "
          f"{fmax_cfg.pe_pipeline}): {fp.get('fmax_mhz')} MHz, LUT4 {fmax_report['resources']['lut4']}, FF "
          f"{fmax_report['resources']['ff']}; critical path {cp.get('from')} -> {cp.get('to')}")
    holds = {}
    for p, table in tables.items():
        half = table[1]
        holds[f"pe_pipeline={p}: 2:4 total area <= {AREA_TARGET} x dense ({half['total_ratio']:.2f})"] = (
            half["total_ratio"] <= AREA_TARGET)
        ratio = f"{half['fmax_ratio']:.2f}" if half["fmax_ratio"] else "-"
        holds[f"pe_pipeline={p}: 2:4 fmax within {FMAX_TOLERANCE:.0%} of dense ({ratio})"] = (
            half["fmax_ratio"] is not None and half["fmax_ratio"] >= 1 - FMAX_TOLERANCE)
    holds[f"dense 8x8 int8 ({FMAX_PRESET}) fmax >= {DENSE_FMAX_TARGET:g} MHz ({fp.get('fmax_mhz')})"] = (
        (fp.get("fmax_mhz") or 0) >= DENSE_FMAX_TARGET)
    best = max(pipelines)
    dense_best = tables[best][0]["fmax_mhz"] or 0
    holds[f"dense 8x8 4:4 at pe_pipeline={best} fmax >= {DENSE_FMAX_TARGET:g} MHz ({dense_best})"] = (
        dense_best >= DENSE_FMAX_TARGET)
    print("\ntargets:\n" + "\n".join(f"  {name}: {'holds' if ok else 'MISSED'}" for name, ok in holds.items()))
    if args.json:
        args.json.write_text(json.dumps({"dsp_lut_equivalent": mul, "pipelines": {str(p): t for p, t in tables.items()},
                                         "dense_8x8": fmax_report, "targets": holds}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
