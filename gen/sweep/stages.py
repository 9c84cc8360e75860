"""The stages of a sweep point that need only ``gen``: ``validate``, ``perf``, ``synth`` and ``map``.

Each stage is ``function(config, workloads, options, *, work_dir) -> dict of metrics`` and calls the existing
code: the cycle models (:mod:`gen.gemm.perf` for both GEMM dataflows, :mod:`gen.systolic.perf`), the synthesis
flow (:func:`gen.synth.flow.synthesize`, its own cache included) and the compiler's report
(:func:`gen.compiler.report.map_report`). A stage raises to say it failed; the engine records the message.
:data:`PERF_MODELS` maps a config kind to its perf function (GEMM engines, systolic arrays, RRAM tiles); a kind
without one fails its ``perf`` stage with a message saying so.
"""

import hashlib
import math
from pathlib import Path

__all__ = ["STAGE_FUNCTIONS", "PERF_MODELS", "validate", "perf", "synth", "map_stage", "stage_inputs"]


def validate(config, workloads, options, *, work_dir=None) -> dict:
    """The config's numeric derived values (``multipliers``, ``latency``, …): the config itself was validated
    when the point was built."""
    fields = set(config.field_names())
    return {name: value for name, value in config.derived().items()
            if name not in fields and isinstance(value, (int, float)) and not isinstance(value, bool)}


def _gemm_perf(config, shapes):
    from gen.gemm import perf
    from gen.gemm.cli import dense_twin, perf_table

    table = perf_table(config, dense_twin(config), shapes)
    cycles = sum(r["cycles"] for r in table)
    ideal = sum(r["ideal"] for r in table)
    dense = sum(r["dense_cycles"] for r in table)
    out = {"cycles": cycles, "ideal_cycles": ideal, "utilization": ideal / cycles, "dense_cycles": dense,
           "speedup": dense / cycles}
    if len(table) > 1:
        out["back2back_cycles"] = perf.predict(config, [(r["m"], r["k"], r["n"]) for r in table]).cycles
        out.update({f"cycles.{r['name']}": r["cycles"] for r in table})
    return out


def _systolic_perf(config, shapes):
    from gen.systolic import perf

    # the array holds one rows·block × cols weight tile: a GEMM is its K- and N-tiles one after the other,
    # each a weight load and M activation rows (gen.systolic.perf.job_cycles)
    cycles = ideal = 0
    per = {}
    for name, (m, k, n) in shapes:
        tiles = math.ceil(k / config.k) * math.ceil(n / config.cols)
        per[name] = tiles * perf.job_cycles(config, m)
        cycles += per[name]
        ideal += tiles * m
    out = {"cycles": cycles, "ideal_cycles": ideal, "utilization": ideal / cycles}
    if len(shapes) > 1:
        out.update({f"cycles.{name}": c for name, c in per.items()})
    return out


def _rram_perf(config, shapes):
    from gen.rram import perf
    from gen.rram.layer import dense_layer_weights, map_layer

    # a GEMM workload M × K × N is M input vectors streamed back to back through a dense K × N layer that the
    # tile holds whole (gen.rram.perf.stream_schedule); the limit: L for the first vector, the busiest lane's
    # conversions for each further one
    cycles = ideal = 0
    per = {}
    for name, (m, k, n) in shapes:
        mapping = map_layer(config, dense_layer_weights(config, k, n), what=f"gemm workload {name!r}: {k}×{n}")
        sched = perf.stream_schedule(config, mapping, m)
        per[name] = sched[-1][1] - sched[0][0] + 1
        cycles += per[name]
        ideal += perf.limit_cycles(config, mapping) + (m - 1) * perf.stream_limit_per_vector(config, mapping)
    out = {"cycles": cycles, "ideal_cycles": ideal, "utilization": ideal / cycles}
    if len(shapes) > 1:
        out.update({f"cycles.{name}": c for name, c in per.items()})
    return out


PERF_MODELS = {"gemm": _gemm_perf, "systolic": _systolic_perf, "rram": _rram_perf}
"""Config kind → ``perf(config, [(name, (M, K, N)), …]) -> metrics``; a new cycle model registers here."""


def _network_perf(config, nets):
    """``perf --net`` / ``--onnx`` totals of each network workload on a GEMM engine (jobs split by ``max_m``,
    ``max_k``, ``max_n``), summed, with the DRAM/port traffic in bytes."""
    from gen.gemm.cli import dense_twin, network_layers, network_table
    from gen.gemm.traffic import TRAFFIC_KEYS

    dense = dense_twin(config)
    out = dict.fromkeys(("cycles", "ideal_cycles", "dense_cycles", *TRAFFIC_KEYS), 0)
    for w in nets:
        totals = network_table(config, dense, network_layers(**{w.kind: w.value})[1])["totals"]
        for key in ("cycles", "dense_cycles", *TRAFFIC_KEYS):
            out[key] += totals[key]
        out["ideal_cycles"] += totals["ideal"]
        out[f"cycles.{w.name}"] = totals["cycles"]
    return out


NETWORK_KINDS = ("net", "onnx")
"""Workload kinds ``perf`` runs as whole networks (GEMM engines only)."""


def perf(config, workloads, options, *, work_dir=None) -> dict:
    """Cycles, ideal cycles and utilization of the GEMM workloads (summed), and for GEMM engines the dense twin's
    cycles and the speedup (``python -m gen perf``'s figures); with the option ``networks`` (GEMM engines) the
    ``net`` and ``onnx`` workloads too, as ``perf --net`` / ``--onnx`` run them (their cycles, ``cycles.<name>``
    and traffic bytes added in)."""
    if config.kind not in PERF_MODELS:
        raise ValueError(f"no cycle model for {config.kind!r} configs in the sweep: allowed "
                         f"{', '.join(PERF_MODELS)}")
    shapes = [(w.name, tuple(w.value)) for w in workloads if w.kind == "gemm"]
    nets = [w for w in workloads if w.kind in NETWORK_KINDS] if options.get("networks") else []
    if not shapes and not nets:
        raise ValueError(f"perf of a {config.kind} config needs a gemm workload"
                         + (" or a net/onnx one" if config.kind == "gemm" else ""))
    out = PERF_MODELS[config.kind](config, shapes) if shapes else {}
    if nets:
        net = _network_perf(config, nets)
        for key, value in net.items():
            out[key] = out.get(key, 0) + value
        out["utilization"] = out["ideal_cycles"] / out["cycles"]
        out["speedup"] = out["dense_cycles"] / out["cycles"]
        out.pop("back2back_cycles", None)   # of the GEMM shapes alone: no longer the sum's
    return out


def synth(config, workloads, options, *, work_dir) -> dict:
    """Area (LUT4 + 2·CCU2C, and each cell type), flip-flops, DSPs and, with place and route, fmax: the
    synthesis flow (:func:`gen.synth.flow.synthesize`); an RRAM tile without its crossbar model, as ``synth``
    does."""
    import dataclasses

    from gen.synth.flow import synthesize

    if config.kind == "rram" and config.crossbar == "model":
        config = dataclasses.replace(config, crossbar="external")
    report = synthesize(config, target=options["target"], out_dir=work_dir, freq_mhz=options["freq_mhz"],
                        dsp=options["dsp"], seed=options["seed"], timeout=options["timeout"], pnr=options["pnr"])
    if options["target"] == "generic":
        return {"gates": report["generic"]["gates"], "ff": report["generic"]["ff_cells"]}
    res = report["resources"]
    out = {"area": res["lut4"] + 2 * res["carry"], "lut4": res["lut4"], "carry": res["carry"], "ff": res["ff"],
           "dsp": res["dsp"], "bram": res["bram"]}
    pnr = report.get("pnr", {})
    if "fmax_mhz" in pnr:
        out["fmax_mhz"] = pnr["fmax_mhz"]
    return out


def map_stage(config, workloads, options, *, work_dir=None) -> dict:
    """The compiler's report (``map-report``) of every network workload, summed: crossbars, OU cycles, energy,
    utilization, fill and the ratios over the dense mapping. An RRAM tile's crossbar, OU, cell, input, DAC and ADC
    settings come from the config; other kinds use the ``[map]`` options."""
    from gen.compiler.report import map_report

    kw = map_arguments(config, options)
    totals = {}
    for w in workloads:
        if w.kind not in ("net", "npz", "onnx"):
            continue
        source = {"net": w.value, "npz": w.value, "onnx": w.value}[w.kind]
        source = {{"net": "net", "npz": "weights", "onnx": "onnx"}[w.kind]: source}
        result = map_report(**source, **kw)["totals"]
        for key, value in result.items():
            if isinstance(value, (int, float)):
                totals[key] = totals.get(key, 0) + value
    ratio = lambda a, b: a / b if b else float("nan")     # noqa: E731
    return {"map_crossbars": totals["crossbars"], "map_cycles": totals["cycles"],
            "map_energy_pj": totals["energy_pj"], "map_utilization": ratio(totals["cells_used"],
                                                                          totals["capacity_cells"]),
            "map_fill": ratio(totals["mapped_cells"], totals["capacity_cells"]),
            "map_speedup": ratio(totals["dense_cycles"], totals["cycles"]),
            "map_area_efficiency": ratio(totals["dense_crossbars"], totals["crossbars"]),
            "map_energy_efficiency": ratio(totals["dense_energy_pj"], totals["energy_pj"])}


def map_arguments(config, options) -> dict:
    """The arguments of :func:`gen.compiler.report.map_report` for ``config`` under the ``[map]`` options."""
    kw = {"prune": options["prune"], "quant": options["quant"], "strategy": options["mapping"],
          "xbar": tuple(options["xbar"]), "ou": tuple(options["ou"]), "cell_bits": options["cell_bits"],
          "seed": options["seed"]}
    if config.kind == "rram":
        kw.update(xbar=(config.xbar_rows, config.xbar_cols), ou=(config.ou_rows, config.ou_cols),
                  cell_bits=config.cell_bits, input_bits=max(2, config.input_bits), dac_bits=config.dac_bits,
                  adc_bits=config.adc_bits)
    return kw


STAGE_FUNCTIONS = {"validate": validate, "perf": perf, "synth": synth, "map": map_stage}
"""Stage name → function; the ``rtl`` stage (cocotb) is added by :mod:`sim.sweep`."""


def _with_digest(workload):
    """A workload as its cache key sees it: a weights file by its contents, not by its name."""
    out = workload.to_dict()
    if workload.kind in ("npz", "onnx") and Path(str(workload.value)).is_file():
        out["sha256"] = hashlib.sha256(Path(workload.value).read_bytes()).hexdigest()
    return out


def stage_inputs(stage, config, workloads, options) -> dict:
    """What a stage's result depends on, for its cache key: the config (for ``map`` of a non-RRAM config only the
    map arguments: the same network maps the same whatever the array), the workloads it reads and its options."""
    opts = {k: v for k, v in options.items() if k not in ("where", "timeout")}
    if stage == "map":
        kw = map_arguments(config, options)
        return {"map": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
                "workloads": [_with_digest(w) for w in workloads if w.kind in ("net", "npz", "onnx")]}
    used = {"perf": ("gemm", *NETWORK_KINDS) if options.get("networks") else ("gemm",), "validate": (), "synth": (), "rtl": ()}.get(stage)
    return {"kind": config.kind, "config": config.to_dict(), "options": opts,
            "workloads": [_with_digest(w) for w in workloads if used is None or w.kind in used]}

