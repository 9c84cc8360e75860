"""``sparsegen simulate``: the user's data on the emitted RTL (a plugin of :mod:`gen.cli` via
:mod:`sparsegen.commands`, since it runs ``sim``).

Three sources, one each run:

- ``--config PRESET --a A.npy --w W.npy [--shift S]``: a GEMM on a GEMM engine (:func:`sim.simulate.run.simulate_gemm`);
- ``--layer layer.npz --mapping STRATEGY [--input X.npy | --vectors V]``: a layer on an RRAM tile
  (:func:`sim.simulate.run.simulate_layer`);
- ``[--config PRESET] --onnx model.onnx --input x.npy``: a network through the real-network pipeline, quantized and
  calibrated on the input images, every layer on a GEMM engine (:func:`sim.simulate.run.run_onnx`).

Everything (config, paths, array shapes and dtypes, the output directory) is checked before the simulator starts;
the outputs (``.npy``) and ``report.json`` are written only after every output equalled the golden model. Exit
status 0: all equal; 1: a mismatch (the first differing element is named) or a failed testbench check; 2: bad input.
"""

import json
import sys
from pathlib import Path

from hw import checks

__all__ = ["register"]

GEMM_COUNTERS = ("cycles", "busy_cycles", "stall_input", "stall_weight", "stall_output", "macs", "zero_skips",
                 "jobs_done", "jobs_rejected")


def _load_npy(option, path, *, ndim=None, integer=True):
    """An array from a ``.npy`` file, checked: readable, no pickles, integer (or any number) dtype, ``ndim``."""
    import numpy as np

    path = checks.check_readable_file(option, path)
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{option} {path}: cannot read as .npy ({' '.join(str(error).split())[:160]})") from None
    if not isinstance(value, np.ndarray):
        value.close()
        raise ValueError(f"{option} {path} is an .npz archive: allowed one array (numpy.save)")
    kinds = "iub" if integer else "iuf"
    if value.dtype.kind not in kinds:
        raise ValueError(f"{option} {path} has dtype {value.dtype}: allowed "
                         f"{'an integer' if integer else 'an integer or float'} array")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{option} {path} has shape {value.shape}: allowed a {ndim}-D array")
    return value.astype(np.int64) if value.dtype.kind in "iub" else value


def _save(out, arrays: dict, report: dict):
    """Write every array and ``report.json`` through temporary names, then rename: never a partial set."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    staged = []
    for name, value in [*arrays.items(), ("report.json", report)]:
        path = out / name
        tmp = path.with_name(f".{path.name}.tmp")
        if name.endswith(".json"):
            tmp.write_text(json.dumps(value, indent=1, default=lambda v: v.tolist()) + "\n")
        else:
            with open(tmp, "wb") as f:
                np.save(f, value)
        staged.append((tmp, path))
    for tmp, path in staged:
        tmp.replace(path)
        print(f"wrote {path}")


def _pair(text, option):
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{option} {text!r} is not ROWSxCOLS, e.g. 128x128")
    return int(parts[0]), int(parts[1])


def _run(args):
    from gen.config import load_config
    from gen.paths import build_dir
    from sim.simulate import run

    sources = [name for name, given in (("--a/--w", args.a is not None or args.w is not None),
                                        ("--layer", args.layer is not None), ("--onnx", args.onnx is not None))
               if given]
    if len(sources) != 1:
        raise ValueError(f"give one source: --a A.npy --w W.npy, --layer NPZ --mapping STRATEGY or --onnx MODEL "
                         f"--input X.npy (got {', '.join(sources) or 'none'})")
    sim = run.check_simulator(args.sim)
    seed = checks.check_int("--seed", args.seed, 0)
    out = checks.check_writable_dir("--out", args.out or build_dir() / "simulate")
    common = dict(sim=sim, seed=seed, waves=args.waves, progress=not args.quiet)
    if args.layer is None and (args.onnx is None or args.config is not None or args.set):
        cfg = load_config(args.config or "", args.set) if args.config else None
        if cfg is None or cfg.kind != "gemm":
            raise ValueError(f"--config {args.config!r}: {sources[0]} runs on a GEMM engine: allowed a \"gemm\" "
                             "preset or .toml file")
    try:
        if args.onnx is not None:
            return _onnx(args, cfg if args.config is not None or args.set else None, out, common)
        if args.layer is not None:
            return _layer(args, out, common)
        return _gemm(args, cfg, out, common)
    except run.Mismatch as error:
        print(f"sparsegen: simulate: mismatch: {error}", file=sys.stderr)
    except RuntimeError as error:        # a testbench check failed in the simulator (counters, cycles, timeout)
        print(f"sparsegen: simulate: the RTL failed a check: {error}", file=sys.stderr)
    return 1


def _print_counters(report, model=True):
    counters = report["counters"]
    print("counters: " + ", ".join(f"{name} {counters[name]}" for name in GEMM_COUNTERS if name in counters))
    if model:
        print(f"cycles: {report['rtl_cycles']} from the first descriptor to the last result (cycle model "
              f"{report['model_cycles']}: equal), {report['sim_cycles']} simulated in {report['wall_s']:.1f} s")


def _gemm(args, cfg, out, common):
    from sim.simulate import run

    if args.a is None or args.w is None:
        raise ValueError("a GEMM needs both --a A.npy and --w W.npy")
    if args.input is not None or args.mapping is not None:
        raise ValueError("--input and --mapping belong to --onnx and --layer, not to --a/--w")
    A, W = _load_npy("--a", args.a, ndim=2), _load_npy("--w", args.w, ndim=2)
    result = run.simulate_gemm(cfg, A, W, shift=args.shift, **common)
    C = result.outputs[0]
    print(f"C = post(A·W): {A.shape[0]}×{A.shape[1]}×{W.shape[1]} on {cfg.top} in {result.report['jobs']} job(s), "
          f"shift {result.report['shift']}: all {C.size} elements equal to the golden model")
    _print_counters(result.report)        # the runner has printed the waveform's path (--waves)
    print(f"wall time {result.seconds:.1f} s (build, if not cached, and simulation)")
    _save(out, {"C.npy": C}, {"source": "gemm", "config": cfg.to_dict(), "top": cfg.top, **result.report,
                               "waveform": result.waveform})
    return 0


def _layer(args, out, common):
    from sim.simulate import run

    if args.mapping is None:
        raise ValueError("--layer needs --mapping STRATEGY (dense, ou-sparse, kernel-reorder, bit-squeeze or a "
                         "'+' composition)")
    if args.config is not None or args.set:
        raise ValueError("--layer derives its RRAM tile from the mapping: --config/--set do not apply")
    layer = checks.check_readable_file("--layer", args.layer)
    X = _load_npy("--input", args.input, ndim=2) if args.input is not None else None
    xr, xc = _pair(args.xbar, "--xbar")
    orows, ocols = _pair(args.ou, "--ou")
    geometry = {"xbar_rows": xr, "xbar_cols": xc, "ou_rows": orows, "ou_cols": ocols, "cell_bits": args.cell_bits}
    try:
        result = run.simulate_layer(path=layer, strategy=args.mapping, X=X, vectors=args.vectors, name=args.name,
                                    prune=args.prune, geometry=geometry, dac_bits=args.dac_bits, **common)
    except ValueError as error:         # the compiler's messages name its own option, --weights
        raise ValueError(str(error).replace("--weights ", "--layer ", 1)) from None
    Y, rep = result.outputs[0], result.report
    regs = rep["registers"]
    print(f"layer {rep['layer']} mapped {rep['strategy']}: {rep['n_xbars']} crossbar(s), {rep['n_ous']} OUs on "
          f"{rep['tile']}; {Y.shape[0]} MVM(s): all {Y.size} outputs equal to the tile golden and to x @ Wq")
    print("registers: " + ", ".join(f"{k} {v}" for k, v in regs.items() if k not in ("at",)))
    print(f"cycles: {rep['sim_cycles']} simulated in {rep['wall_s']:.1f} s")
    _save(out, {"Y.npy": Y}, {"source": "rram", **rep, "waveform": result.waveform})
    return 0


def _onnx(args, cfg, out, common):
    import numpy as np

    from gen.compiler.onnx_import import import_onnx
    from sim.simulate import run

    if args.input is None:
        raise ValueError("--onnx needs --input x.npy (the network's input images)")
    if args.shift is not None:
        raise ValueError(f"--shift {args.shift} belongs to --a/--w: --onnx calibrates every layer's shift")
    net = import_onnx(args.onnx)
    x = _load_npy("--input", args.input, integer=False)
    try:
        result = run.run_onnx(net, x, config=cfg, sim=common["sim"], seed=common["seed"], waves=common["waves"],
                              progress=common["progress"])
    except ValueError as error:          # the input's checks name the option, with the file
        raise ValueError(str(error).replace("--input ", f"--input {args.input} ", 1)) from None
    qnet, rtl = result.net, result.rtl
    n = len(rtl.predictions)
    layers = []
    for layer, shape, output in zip(qnet.layers, qnet.shapes[1:], rtl.outputs):
        entry = {"name": layer.name, "kind": layer.kind}
        if layer.has_weights:
            c, h, w = qnet.shapes[len(layers)]
            k = c * h * w if layer.kind == "fc" else int(np.prod(layer.weight.shape[1:])) * (
                c if layer.kind == "depthwise" else 1)
            entry.update(gemm=[shape[1] * shape[2], k, shape[0]], relu=layer.relu, shift=layer.shift,
                         cycles=rtl.cycles[layer.name], model_cycles_per_image=result.model_cycles[layer.name])
            print(f"layer {layer.name} ({layer.kind}{'' if layer.relu else ', no ReLU: [W, −W]'}): "
                  f"{entry['gemm'][0]}×{k}×{shape[0]} per image, shift {layer.shift}, {rtl.cycles[layer.name]} "
                  f"cycles for {n} image(s), every output equal to the int8 golden")
        layers.append(entry)
    classes = ", ".join(map(str, rtl.predictions.tolist()))
    print(f"network {Path(args.onnx).name}: {len(qnet.weighted)} weighted layers on {rtl.top}, {n} image(s), "
          f"{rtl.cycles['total']} engine cycles in all (cycle model {result.model_cycles['total']} per image); "
          f"predicted classes {classes} (the int8 golden's)")
    report = {"source": "onnx", "model": str(args.onnx), "top": rtl.top, "input_scale": qnet.input_scale,
              "layers": layers, "cycles": rtl.cycles["total"], "predictions": rtl.predictions,
              "wall_s": rtl.seconds, "waveform": rtl.waveform}
    arrays = {"output.npy": rtl.outputs[-1].reshape(n, -1),
              **{f"layer_{layer.name}.npy": output for layer, output in zip(qnet.layers, rtl.outputs)}}
    _save(out, arrays, report)
    return 0


def register(commands):
    p = commands.add_parser("simulate", help="run your GEMM, RRAM layer or ONNX network on the emitted RTL, checked "
                            "against the golden model", description=__doc__.splitlines()[0])
    p.add_argument("--config", metavar="PRESET_OR_PATH", help="a gemm preset or .toml file (--a/--w; --onnx: "
                   "default the pipeline's engine sized for the network)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override one config field")
    p.add_argument("--a", type=Path, metavar="A.npy", help="activations [M × K], integers in the act_bits range")
    p.add_argument("--w", type=Path, metavar="W.npy", help="weights [K × N], keep:block sparse integers")
    p.add_argument("--shift", type=int, default=None,
                   help="requantization shift (default: the smallest that brings the largest sum into out_bits)")
    p.add_argument("--layer", type=Path, metavar="NPZ", help="an RRAM layer: weights as map-report --weights takes")
    p.add_argument("--name", help="the layer of --layer to run when the file holds several")
    p.add_argument("--mapping", metavar="STRATEGY", help="crossbar mapping of --layer (as map-report --mapping)")
    p.add_argument("--prune", default="none", metavar="SPEC", help="pruning of --layer (as map-report; default none)")
    p.add_argument("--xbar", default="128x128", help="--layer: crossbar ROWSxCOLS (default 128x128)")
    p.add_argument("--ou", default="9x8", help="--layer: OU ROWSxCOLS (default 9x8)")
    p.add_argument("--cell-bits", type=int, default=2, help="--layer: bits per cell (default 2)")
    p.add_argument("--dac-bits", type=int, default=2, help="--layer: DAC bits per input step (default 2)")
    p.add_argument("--vectors", type=int, default=4, help="--layer without --input: seeded random vectors (default 4)")
    p.add_argument("--onnx", type=Path, metavar="MODEL", help="an ONNX model: its layers on the GEMM engine")
    p.add_argument("--input", type=Path, metavar="X.npy",
                   help="--onnx: the input images [n, C, H, W] (float, image units); --layer: vectors [V × K]")
    p.add_argument("--sim", default="verilator", help="verilator (default) or icarus")
    p.add_argument("--waves", action="store_true", help="dump a waveform (its path is printed)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory (default <build>/simulate)")
    p.add_argument("--seed", type=int, default=0, help="seed of generated stimulus (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run)
