"""``python -m gen perf``: predicted cycles, utilization and sparse speedup of GEMMs on a GEMM engine config.

The figures come from the exact cycle model :mod:`gen.gemm.perf` (ideal host: no input gaps, no backpressure).
The dense baseline is the dense engine with the same multiplier count (:func:`dense_twin`) unless ``--dense``
names another config.

``--gemm M,K,N`` is one engine job (M, K, N within the config's maxima). ``--layers CSV``, ``--net NAME`` (the
built-in networks of :mod:`gen.compiler.networks`) and ``--onnx MODEL`` (:mod:`gen.compiler.onnx_import`) are
layers: each is split into jobs of at most ``max_m`` rows and ``max_n`` columns (:func:`gen.gemm.traffic.split_jobs`;
a depthwise conv is one ``M × k² × 1`` GEMM per channel), run back to back, and reported per layer with its
DRAM/buffer traffic (:func:`gen.gemm.traffic.job_traffic`) and totals per network (:func:`network_table`).
"""

import csv
import dataclasses
from pathlib import Path

from hw import checks

from gen.config import BLOCKS, load_config

__all__ = ["register", "dense_twin", "weight_only_twin", "parse_gemm", "perf_table", "network_layers", "network_table", "synthetic_acts",
           "act_perf"]


def _widened(cfg):
    """``cfg`` without activation sparsity, weights along K, with ``cols`` widened by ``act_keep`` when its weights
    are along N (an outer-product PE has ``keep·act_keep`` multipliers): the same multiplier count."""
    if getattr(cfg, "weight_axis", "k") == "n":
        return dataclasses.replace(cfg, cols=cfg.cols * cfg.act_keep, act_keep=0, weight_axis="k", name=None)
    return cfg


def dense_twin(cfg):
    """The dense engine with ``cfg``'s multiplier count: ``keep == block == cfg.keep`` (k = rows·keep), or, when
    ``keep`` is not an allowed block size, 1:1 with ``cols·keep`` columns; weights along N: the same with ``cols``
    widened by ``act_keep`` first. Overflow ``"wrap"``: only timing matters."""
    cfg = _widened(cfg)
    if cfg.keep in BLOCKS:
        return dataclasses.replace(cfg, block=cfg.keep, overflow="wrap", out_bits=None, name=None, act_keep=0)
    return dataclasses.replace(cfg, keep=1, block=1, cols=cfg.cols * cfg.keep, overflow="wrap", out_bits=None,
                               name=None, act_keep=0)


def weight_only_twin(cfg):
    """The weight-only engine with ``cfg``'s multiplier count: ``act_keep = 0`` (weights along N: ``keep:block``
    along K, ``cols`` widened by ``act_keep``)."""
    return dataclasses.replace(_widened(cfg), act_keep=0, name=None)


def synthetic_acts(cfg, m, k, density, seed=0):
    """A seeded random ``M × K`` activation matrix in ``cfg``'s range with a share ``density`` of non-zeros
    (each element non-zero with that probability; non-zero values uniform over the range without 0)."""
    import numpy as np

    density = checks.check_float("--act-density", density, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1) if cfg.act_signed else (0, (1 << cfg.act_bits) - 1)
    values = rng.integers(lo, hi, size=(m, k), endpoint=True)
    values = np.where(values == 0, 1, values)
    return np.where(rng.random((m, k)) < density, values, 0)


def act_perf(cfg, shape, density, seed=0):
    """One GEMM on an activation-sparse engine (or any WS engine) with synthetic activations of ``density``:
    ``cycles`` (for that data), ``dense_cycles`` (the dense engine with equal multipliers, :func:`dense_twin`),
    ``weight_only_cycles`` (:func:`weight_only_twin`) and ``speedup = dense_cycles / cycles``."""
    from hw.formats.actsparse import row_steps
    from gen.gemm import perf

    m, k, n = shape
    A = synthetic_acts(cfg, m, k, density, seed)
    steps = None
    if cfg.act_keep and cfg.act_mode == "lossless":
        steps = [row_steps(A, act_keep=cfg.act_keep, block=cfg.block, k_tile=cfg.k, mode="lossless")]
    cycles = perf.predict(cfg, [shape], steps=steps).cycles
    dense = perf.job_cycles(dense_twin(cfg), m, k, n)
    weight_only = perf.job_cycles(weight_only_twin(cfg), m, k, n)
    return {"config": cfg.top, "m": m, "k": k, "n": n, "act_density": density, "act_keep": cfg.act_keep,
            "act_mode": cfg.act_mode if cfg.act_keep else None, "seed": seed, "multipliers": cfg.multipliers,
            "cycles": cycles, "dense_cycles": dense, "weight_only_cycles": weight_only, "speedup": dense / cycles,
            "speedup_vs_weight_only": weight_only / cycles}


def parse_gemm(text):
    """``"M,K,N"`` → ``(M, K, N)``; ValueError naming the text otherwise."""
    checks.check_str("--gemm", text, "M,K,N (three integers)")
    parts = text.replace("x", ",").split(",")
    try:
        m, k, n = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--gemm {text!r} is not of the form M,K,N (three integers)") from None
    return m, k, n


def _layers(path):
    """A layer list: CSV lines ``name,M,K,N`` (a header line and ``#`` comments are skipped)."""
    path = checks.check_readable_file("--layers", path)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"--layers {path} is not UTF-8 text: allowed CSV lines name,M,K,N") from None
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = next(csv.reader([line]))
        if row[0].strip().lower() == "name":
            continue
        if len(row) != 4:
            raise ValueError(f"{path}: line {number} {row!r} is not name,M,K,N")
        try:
            out.append((row[0].strip(), parse_gemm(",".join(row[1:]))))
        except ValueError:
            raise ValueError(f"{path}: line {number} {row!r}: M, K, N are not three integers") from None
    return out


def perf_table(cfg, dense, shapes):
    """One dict per ``(name, (M, K, N))``: tiles, cycles, ideal cycles, utilization, dense cycles, speedup.

    ``dense`` must be a dense engine (``keep == block``) with ``cfg``'s multiplier count: otherwise the speedup
    would compare unequal hardware (:func:`dense_twin` is one).
    """
    from gen.gemm import perf

    _check_dense(cfg, dense)
    rows = []
    for name, (m, k, n) in shapes:
        for c in (cfg, dense):
            for field, value in (("max_m", m), ("max_k", k), ("max_n", n)):
                if value > getattr(c, field) or value < 1:
                    raise ValueError(f"GEMM {name} = {m},{k},{n}: {field[-1].upper()} = {value} is out of range for "
                                     f"{c.top}: allowed 1 … {getattr(c, field)} ({field})")
        # tiles: K-tiles × N-tiles (WS) or M-tiles × N-tiles (OS, each ⌈K/block⌉ steps)
        kt, nt = perf.os_tiles(cfg, m, k, n)[1:] if cfg.dataflow == "os" else perf.tiles(cfg, k, n)
        cycles, dense_cycles = perf.job_cycles(cfg, m, k, n), perf.job_cycles(dense, m, k, n)
        rows.append({"name": name, "m": m, "k": k, "n": n, "k_tiles": kt, "n_tiles": nt, "cycles": cycles,
                     "ideal": perf.ideal_cycles(cfg, m, k, n), "utilization": perf.utilization(cfg, m, k, n),
                     "dense_cycles": dense_cycles, "speedup": dense_cycles / cycles})
    return rows


def network_layers(*, net=None, onnx=None, layers=None) -> tuple[str, list]:
    """``(title, [(layer name, (M, K, N), count), ...])`` of one workload: a built-in network (``net``), an ONNX
    model (``onnx``) or a CSV layer list (``layers``). ``count`` is the number of such GEMMs (the channels of a
    depthwise conv, else 1)."""
    if sum(x is not None for x in (net, onnx, layers)) != 1:
        raise ValueError("give exactly one of net, onnx and layers")
    if net is not None:
        from gen.compiler.networks import network

        out = []
        for layer in network(net):
            if layer.kind == "fc":
                out.append((layer.name, (1, layer.cin, layer.cout), 1))
            elif layer.kind == "dw":
                out.append((layer.name, (layer.positions, layer.k * layer.k, 1), layer.cout))
            else:
                out.append((layer.name, (layer.positions, layer.cin * layer.k * layer.k, layer.cout), 1))
        return f"--net {net}", out
    if onnx is not None:
        from gen.compiler.onnx_import import import_onnx

        model = import_onnx(onnx)
        notes = ", ".join(f"{name} ({op})" for name, op, _ in model.skipped)
        return f"--onnx {onnx}" + (f" (skipped, no GEMM: {notes})" if notes else ""), [(layer.name, layer.gemm, layer.channels) for layer in model.layers]
    return f"--layers {layers}", [(name, shape, 1) for name, shape in _layers(layers)]


def network_table(cfg, dense, layers) -> dict:
    """Per-layer rows and totals of a workload (:func:`network_layers`) on ``cfg`` and its dense baseline.

    Each layer's GEMM (``count`` times) is split into jobs (:func:`gen.gemm.traffic.split_jobs`) that run back to
    back (:func:`gen.gemm.perf.predict`); a row holds ``jobs``, ``cycles``, ``ideal``, ``utilization``,
    ``dense_cycles``, ``speedup`` and the traffic ``a_bytes``, ``w_bytes``, ``c_bytes`` summed over the jobs.
    ``totals`` sums the layers (layers run one after another: cycles add).
    """
    from gen.gemm import perf
    from gen.gemm.traffic import TRAFFIC_KEYS, job_traffic, split_jobs

    _check_dense(cfg, dense)
    rows = []
    for name, (m, k, n), count in layers:
        jobs = [(mj, kj, nj) for _, _, mj, kj, nj in split_jobs(cfg, m, k, n, name=f"layer {name}",
                                                                 split_k=True)] * count
        if [j for _, _, *j in split_jobs(dense, m, k, n, split_k=True)] * count != [list(j) for j in jobs]:
            raise ValueError(f"dense baseline {dense.top} splits layer {name} differently from {cfg.top}: allowed a "
                             "baseline with the same max_m, max_k and max_n")
        cycles, dense_cycles = perf.predict(cfg, jobs).cycles, perf.predict(dense, jobs).cycles
        ideal = sum(perf.ideal_cycles(cfg, *job) for job in jobs)
        traffic = dict.fromkeys(TRAFFIC_KEYS, 0.0)
        for job in jobs:
            for key, value in job_traffic(cfg, *job).items():
                traffic[key] += value
        rows.append({"name": name, "m": m, "k": k, "n": n, "count": count, "jobs": len(jobs),
                     "k_parts": -(-k // cfg.max_k), "cycles": cycles,
                     "ideal": ideal, "utilization": ideal / cycles, "dense_cycles": dense_cycles,
                     "speedup": dense_cycles / cycles, **traffic})
    totals = {key: sum(r[key] for r in rows) for key in ("jobs", "cycles", "ideal", "dense_cycles", *TRAFFIC_KEYS)}
    totals["utilization"] = totals["ideal"] / totals["cycles"]
    totals["speedup"] = totals["dense_cycles"] / totals["cycles"]
    return {"layers": rows, "totals": totals}


def _check_dense(cfg, dense):
    if dense.sparse:
        raise ValueError(f"dense baseline {dense.top} is sparse ({dense.keep}:{dense.block}): allowed a dense gemm "
                         f"config (keep == block) with {cfg.multipliers} multipliers")
    if dense.multipliers != cfg.multipliers:
        raise ValueError(f"dense baseline {dense.top} has {dense.multipliers} multipliers: allowed "
                         f"{cfg.multipliers} (the engine's rows·cols·keep, ·act_keep with weights along N), so that the speedup compares equal "
                         f"hardware")


def _print_network(title, table):
    kb = 1024
    print(f"\n{title}")
    print(f"{'layer':<24} {'M':>6} {'K':>5} {'N':>5} {'jobs':>5} {'cycles':>11} {'util':>6} {'dense cyc':>11} "
          f"{'speedup':>8} {'A KiB':>9} {'W KiB':>8} {'C KiB':>8}")
    for r in [*table["layers"], {"name": "total", "m": "", "k": "", "n": "", **table["totals"]}]:
        name = str(r["name"]) + ("*" if r.get("k_parts", 1) > 1 else "")
        print(f"{name[:24]:<24} {r['m']:>6} {r['k']:>5} {r['n']:>5} {r['jobs']:>5} {r['cycles']:>11} "
              f"{r['utilization']:>6.1%} {r['dense_cycles']:>11} {r['speedup']:>7.3f}x {r['a_bytes'] / kb:>9.1f} "
              f"{r['w_bytes'] / kb:>8.1f} {r['c_bytes'] / kb:>8.1f}")


def _run(args):
    cfg = load_config(args.config, args.set)
    if cfg.kind != "gemm":
        raise ValueError(f"--config {args.config!r} is a {cfg.kind!r} config: perf needs a \"gemm\" config")
    dense = load_config(args.dense) if args.dense else dense_twin(cfg)
    if dense.kind != "gemm":
        raise ValueError(f"--dense {args.dense!r} is a {dense.kind!r} config: allowed a \"gemm\" config")
    shapes = [(f"gemm{i}", parse_gemm(text)) for i, text in enumerate(args.gemm)]
    if args.skip_zero_tiles is not None:
        return _skip_zero_tiles(cfg, args, shapes)
    workloads = [network_layers(net=name) for name in args.net]
    workloads += [network_layers(onnx=path) for path in args.onnx]
    if args.layers:
        workloads.append(network_layers(layers=args.layers))
    if not shapes and not workloads:
        raise ValueError("give at least one --gemm M,K,N, --layers file, --net NAME or --onnx MODEL")
    if args.act_density is not None or args.json:
        if workloads:
            raise ValueError("--act-density/--json take --gemm jobs: allowed without --layers, --net and --onnx")
        if cfg.dataflow != "ws":
            raise ValueError("--act-density/--json need a weight-stationary gemm config (dataflow = \"ws\")")
        density = 1.0 if args.act_density is None else args.act_density
        objs = [act_perf(cfg, shape, density, args.seed) for _, shape in shapes]
        if args.json:
            import json

            print(json.dumps(objs[0] if len(objs) == 1 else objs, indent=2))
        else:
            for o in objs:
                print(f"{o['config']} {o['m']},{o['k']},{o['n']} density {o['act_density']:g}: cycles {o['cycles']}, "
                      f"dense {o['dense_cycles']}, weight-only {o['weight_only_cycles']}, "
                      f"speedup {o['speedup']:.3f}x")
        return 0
    networks = [(title, network_table(cfg, dense, layers)) for title, layers in workloads]   # all checked first
    table = perf_table(cfg, dense, shapes)
    print(f"engine {cfg.top}: {cfg.rows}x{cfg.cols} {cfg.keep}:{cfg.block}, tile k={cfg.k} n={cfg.n_tile}, "
          f"{cfg.multipliers} multipliers")
    print(f"dense baseline {dense.top}: {dense.keep}:{dense.block}, tile k={dense.k} n={dense.cols}, "
          f"{dense.multipliers} multipliers\n")
    for title, net_table in networks:
        _print_network(title, net_table)
    if networks:
        print(f"\nlayers: split into jobs of at most max_m = {cfg.max_m} rows and max_n = {cfg.max_n} columns, run "
              f"back to back; a depthwise conv is one M x k² x 1 GEMM per channel; total = the layers in sequence. "
              f"A/W/C KiB: bytes crossing the engine's ports (gen/gemm/traffic.py: A re-streamed once per N-tile"
              f"{', W once per M-tile' if cfg.dataflow == 'os' else ''}, W compressed with its indices)")
        if any(r["k_parts"] > 1 for _, t in networks for r in t["layers"]):
            print(f"* K > max_k = {cfg.max_k}: K split into parts whose partial sums the host adds (an estimate: "
                  "exact only without ReLU/requantization; each part moves its C)")
    if not table:
        return 0
    print(f"\n{'gemm':<12} {'M':>6} {'K':>6} {'N':>6} {'tiles':>9} {'cycles':>10} {'ideal':>10} {'util':>7} "
          f"{'dense cyc':>10} {'speedup':>8}")
    for r in table:
        print(f"{r['name']:<12} {r['m']:>6} {r['k']:>6} {r['n']:>6} {r['k_tiles']:>4}x{r['n_tiles']:<4} "
              f"{r['cycles']:>10} {r['ideal']:>10} {r['utilization']:>6.1%} {r['dense_cycles']:>10} "
              f"{r['speedup']:>7.3f}x")
    if len(table) > 1:
        from gen.gemm import perf

        jobs = [(r["m"], r["k"], r["n"]) for r in table]
        total, dense_total = perf.predict(cfg, jobs).cycles, perf.predict(dense, jobs).cycles
        ideal = sum(r["ideal"] for r in table)
        print(f"{'back2back':<12} {'':>6} {'':>6} {'':>6} {'':>9} {total:>10} {ideal:>10} {ideal / total:>6.1%} "
              f"{dense_total:>10} {dense_total / total:>7.3f}x")
    ideal_text = ("M·k_tiles·n_tiles" if cfg.dataflow == "ws" else
                  "m_tiles·n_tiles·ceil(K/block) steps (tiles column: m_tiles x n_tiles)")
    print(f"\ncycles: descriptor to last result (gen/gemm/perf.py, {cfg.dataflow} dataflow, ideal host); ideal = "
          f"{ideal_text} (ceil-tiled MACs / multipliers); back2back: all GEMMs as one job sequence; "
          f"block/keep = {cfg.block / cfg.keep:g}")
    return 0


def _skip_zero_tiles(cfg, args, shapes):
    """``--skip-zero-tiles W.npy`` with one ``--gemm M,K,N``: the jobs with W's all-zero tiles compiled away
    (:func:`gen.compiler.pe_prune.skip_perf`)."""
    import numpy as np

    from gen.compiler.pe_prune import skip_perf

    if len(shapes) != 1 or args.net or args.onnx or args.layers or args.act_density is not None:
        raise ValueError("--skip-zero-tiles takes exactly one --gemm M,K,N (K × N = the matrix's shape): allowed "
                         "without --layers, --net, --onnx and --act-density")
    path = checks.check_readable_file("--skip-zero-tiles", args.skip_zero_tiles)
    try:
        W = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"--skip-zero-tiles {path} is not a .npy array: allowed a K × N integer matrix "
                         f"({str(error).splitlines()[0]})") from None
    if not isinstance(W, np.ndarray):
        raise ValueError(f"--skip-zero-tiles {path} is an .npz archive: allowed one .npy K × N integer matrix")
    m, k, n = shapes[0][1]
    if W.shape != (k, n):
        raise ValueError(f"--skip-zero-tiles {path} has shape {W.shape}: allowed ({k}, {n}), the K × N of --gemm")
    r = skip_perf(cfg, m, W)
    if args.json:
        import json

        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['config']} {m},{k},{n}: tiles kept {r['tiles_kept']}/{r['tiles']} (k={cfg.k} x n={cfg.cols}), "
          f"{len(r['jobs'])} jobs sent {r['jobs']}")
    print(f"cycles {r['cycles']}, dense {r['dense_cycles']} (the layer sent whole), cycles saved "
          f"{r['cycles_saved']:.3f}x (gen/gemm/perf.py, ideal host)")
    return 0


def register(commands):
    perf = commands.add_parser("perf", help="predicted cycles, utilization and speedup of GEMMs on a gemm config")
    perf.add_argument("--config", required=True, metavar="PRESET_OR_PATH", help="a gemm preset or .toml file")
    perf.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override one field")
    perf.add_argument("--gemm", action="append", default=[], metavar="M,K,N", help="one GEMM (repeatable)")
    perf.add_argument("--layers", type=Path, metavar="CSV", help="layer list: lines name,M,K,N (split into jobs)")
    perf.add_argument("--net", action="append", default=[], metavar="NAME",
                      help="a built-in network (tiny, vgg16, resnet18, resnet50, mobilenetv2; repeatable)")
    perf.add_argument("--onnx", action="append", default=[], type=Path, metavar="MODEL",
                      help="an ONNX model: every Conv/Gemm/MatMul as GEMM jobs (repeatable; needs the onnx extra)")
    perf.add_argument("--dense", metavar="PRESET_OR_PATH",
                      help="dense baseline config (default: the dense engine with the same multiplier count)")
    perf.add_argument("--act-density", type=float, metavar="D",
                      help="share of non-zero activations (0 … 1) of seeded synthetic activations: cycles for that "
                           "data (lossless activation sparsity depends on it)")
    perf.add_argument("--skip-zero-tiles", type=Path, metavar="W.npy",
                      help="a K×N integer weight matrix (.npy) for the one --gemm M,K,N: its all-zero k×cols tiles "
                           "compiled away (PE-wise pruning: gen/compiler/pe_prune.py); cycles vs the layer sent whole")
    perf.add_argument("--seed", type=int, default=0, help="seed of the synthetic activations (default 0)")
    perf.add_argument("--json", action="store_true",
                      help="print one JSON object per GEMM (cycles, dense_cycles, speedup, ...) instead of the table")
    perf.set_defaults(run=_run)
