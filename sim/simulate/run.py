"""``sparsegen simulate``, host side: the user's data on the emitted RTL, every output checked against the golden.

- :func:`simulate_gemm`: ``C = post(A · W)`` on a GEMM engine config. A GEMM larger than ``max_m``/``max_n`` is
  split into jobs (:func:`gen.gemm.traffic.split_jobs`; K must fit ``max_k``), all run back to back in one
  simulation from an ideal host; the result is the RTL's C, compared element by element with
  :func:`sim.gemm.golden.gemm_engine`.
- :func:`simulate_jobs`: the layer below: a list of ``(A, W, shift)`` jobs in one simulation.
- :func:`simulate_layer`: one layer of a user ``.npz`` mapped onto an RRAM tile by a mapping strategy
  (:func:`sim.compiler.compiled_layer.plan_user_layer`), input vectors run as MVMs, compared with the tile golden
  (:func:`hw.formats.mvm.mvm`) and with ``x @ Wq``.
- :func:`run_network`: an imported ONNX model (:mod:`gen.compiler.onnx_import`) layer by layer on the GEMM engine
  (see its docstring for the quantization rule).

Each simulation builds the design's Verilog and the simulator model (cached under ``<build>``), runs the cocotb
module :mod:`sim.simulate.cocotb_simulate` through :func:`sim.common.runner.run_design`, shows a tqdm progress bar
(result beats) on stderr and returns the RTL's outputs, its counters and, with ``waves``, the waveform path
(Verilator: ``dump.fst``, or ``dump.vcd`` without ``liblz4-dev``; Icarus: ``<top>.fst``).

A mismatch raises :class:`Mismatch` naming the first differing element; a failing testbench check (a counter or a
result cycle against the cycle model, a timeout) raises ``RuntimeError`` with the simulator's message.
"""

import contextlib
import dataclasses
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from hw import checks
from gen.paths import build_dir

__all__ = ["Mismatch", "SimRun", "check_simulator", "simulate_jobs", "simulate_gemm", "simulate_layer",
           "quantize_input", "auto_shift", "run_network", "RUNNER_OPS"]


class Mismatch(AssertionError):
    """The RTL's output differs from the golden model's (the message names the first differing element)."""


@dataclasses.dataclass
class SimRun:
    """One simulation: ``outputs`` (the RTL's arrays, one per job), ``report`` (counters or registers, cycles, wall
    time from the simulator), ``seconds`` (wall time of build + simulation), ``waveform`` (path or None)."""
    outputs: list
    report: dict
    seconds: float
    waveform: str | None = None


def check_simulator(sim):
    """``sim`` must be ``"verilator"`` or ``"icarus"`` and installed; ``ValueError`` with the fix otherwise."""
    from sim.common.runner import SIMULATORS, simulator_available

    sim = checks.check_choice("--sim", sim, SIMULATORS)
    ok, reason = simulator_available(sim)
    if not ok:
        raise ValueError(f"--sim = {sim!r} is not available: {reason}")
    return sim


def first_difference(name, got, want):
    """``None`` when equal, else a one-line description of the first differing element (row-major order)."""
    if got.shape != want.shape:
        return f"{name}: the RTL returned shape {got.shape}, the golden model {want.shape}"
    bad = np.argwhere(got != want)
    if not len(bad):
        return None
    at = tuple(int(i) for i in bad[0])
    return (f"{name}[{', '.join(map(str, at))}] = {int(got[at])} from the RTL, {int(want[at])} from the golden model "
            f"({len(bad)} of {got.size} elements differ)")


@contextlib.contextmanager
def _progress_bar(path, *, enabled, label, unit="beat"):
    """A tqdm bar fed from the ``"<done> <total>"`` file the cocotb side rewrites; the body runs the simulation."""
    stop = threading.Event()

    def poll():
        try:
            from tqdm import tqdm
        except ImportError:              # the onnx extra brings tqdm; without it, no bar
            return

        bar = None
        while not stop.wait(0.2):
            try:
                done, total = (int(v) for v in Path(path).read_text().split())
            except (OSError, ValueError):
                continue
            if bar is None:
                bar = tqdm(total=total, desc=label, unit=unit, leave=True)
            bar.update(done - bar.n)
        if bar is not None:
            with contextlib.suppress(OSError, ValueError):
                done, _ = (int(v) for v in Path(path).read_text().split())
                bar.update(done - bar.n)
            bar.close()

    thread = threading.Thread(target=poll, daemon=True) if enabled else None
    if thread:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread:
            thread.join()


def _run(design, testcase, sim, *, arrays, knobs, seed, waves, progress, label, unit="beat"):
    """Write ``arrays`` for the cocotb side, run ``testcase`` of :mod:`sim.simulate.cocotb_simulate`, read back."""
    from sim.common.runner import run_design, waveforms

    seed = checks.check_int("seed", seed, 0)
    waves, progress = checks.check_bool("waves", waves), checks.check_bool("progress", progress)
    scratch = build_dir() / "simulate" / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{design.top[:40]}-", dir=scratch))
    try:
        files = {name: work / name for name in ("jobs.npz", "out.npz", "report.json", "progress")}
        np.savez(files["jobs.npz"], **arrays)
        knobs = {"jobs": files["jobs.npz"], "out": files["out.npz"], "report": files["report.json"],
                 "progress": files["progress"], **knobs}
        t0 = time.perf_counter()
        waveforms()                                  # forget earlier runs' paths
        with _progress_bar(files["progress"], enabled=progress, label=label, unit=unit):
            run_design(design, "sim.simulate.cocotb_simulate", sim, seed=seed, knobs=knobs, testcase=testcase,
                       waves=waves)
        seconds = time.perf_counter() - t0
        with np.load(files["out.npz"]) as data:
            outputs = {key: data[key] for key in data.files}
        report = json.loads(files["report.json"].read_text())
        paths = waveforms()
        return outputs, report, seconds, (paths[-1] if paths else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def simulate_jobs(cfg, jobs, *, sim="verilator", seed=0, waves=False, progress=True) -> SimRun:
    """Run GEMM jobs ``[(A, W, shift), ...]`` back to back on the engine of ``cfg`` (one simulation).

    Every job is checked first as the engine's host driver checks it (:func:`gen.gemm.config.check_job`: shapes
    within the maxima, element ranges, keep:block sparsity of W, the shift); the RTL's C of every job is compared
    with :func:`sim.gemm.golden.gemm_engine` (:class:`Mismatch` naming the first differing element).

    Returns
    -------
    SimRun
        ``outputs``: the RTL's ``C_j [M_j × N_j]`` (int64); ``report``: ``counters`` (increments over the run:
        ``cycles``, ``busy_cycles``, ``stall_*``, ``macs``, ``zero_skips``, ``jobs_done``, ``jobs_rejected``),
        ``model_cycles`` (:func:`gen.gemm.perf.predict`, equal to ``rtl_cycles``: checked in the simulator).
    """
    from gen.gemm.config import GemmConfig, check_job
    from sim.gemm import golden

    checks.check_instance("cfg", cfg, GemmConfig)
    sim = check_simulator(sim)
    checked = [check_job(cfg, A, W, shift) for A, W, shift in jobs]
    if not checked:
        raise ValueError("no GEMM job to simulate")
    want = [golden.gemm_engine(cfg, A, W, shift) for A, W, shift in checked]
    arrays = {"shift": np.array([s for *_, s in checked], np.int64)}
    for i, (A, W, _) in enumerate(checked):
        arrays[f"a{i}"], arrays[f"w{i}"] = A, W
    outputs, report, seconds, wave = _run(cfg, "simulate_gemm", sim, arrays=arrays, knobs={}, seed=seed,
                                          waves=waves, progress=progress, label=f"{sim} {cfg.top[:32]}")
    got = [outputs[f"c{i}"] for i in range(len(checked))]
    for i, (g, w) in enumerate(zip(got, want)):
        problem = first_difference(f"job {i}: C" if len(got) > 1 else "C", g, w)
        if problem:
            raise Mismatch(problem)
    return SimRun(got, report, seconds, wave)


def auto_shift(cfg, A, W) -> int:
    """The requantization shift ``simulate`` uses by default: the smallest right shift that brings the largest
    (ReLU'd when ``cfg.relu``) exact sum of ``A · W`` into signed ``out_bits`` (0 without requantization)."""
    from sim.compiler.compiled_layer import requant_shift

    if cfg.out_bits is None:
        return 0
    acc = np.asarray(A, np.int64) @ np.asarray(W, np.int64)
    return min(requant_shift(acc if cfg.relu else np.abs(acc), cfg.out_bits), (1 << cfg.shift_bits) - 1,
               cfg.acc_bits - 1)


def simulate_gemm(cfg, A, W, *, shift=None, sim="verilator", seed=0, waves=False, progress=True) -> SimRun:
    """``C = post(A · W)`` on the engine of ``cfg``, split into jobs of at most ``max_m`` rows and ``max_n`` columns.

    Parameters
    ----------
    cfg : GemmConfig
    A : (M, K) integer array in the ``act_bits`` range; W : (K, N) keep:block sparse integer array in the
        ``weight_bits`` range.
    shift : int or None
        Requantization shift of every job; None: :func:`auto_shift`.

    Returns
    -------
    SimRun
        ``outputs = [C]`` (``M × N`` int64, the RTL's, equal to the golden model's) and the report of the run.
    """
    from gen.gemm.config import GemmConfig
    from gen.gemm.traffic import split_jobs

    checks.check_instance("cfg", cfg, GemmConfig)
    A = checks.check_int_array("A", A, ndim=2, whole_floats=False)
    W = checks.check_int_array("W", W, ndim=2, whole_floats=False)
    if A.shape[1] != W.shape[0]:
        raise ValueError(f"A has shape {A.shape} and W {W.shape}: allowed A [M × K] and W [K × N] with the same K")
    m, k = A.shape
    n = W.shape[1]
    shift = auto_shift(cfg, A, W) if shift is None else shift
    parts = split_jobs(cfg, m, k, n, name="A·W")
    run = simulate_jobs(cfg, [(A[m0:m0 + mj], W[:, n0:n0 + nj], shift) for m0, n0, mj, _, nj in parts], sim=sim,
                        seed=seed, waves=waves, progress=progress)
    C = np.zeros((m, n), np.int64)
    for (m0, n0, mj, _, nj), part in zip(parts, run.outputs):
        C[m0:m0 + mj, n0:n0 + nj] = part
    run.report.update(shift=shift, jobs=len(parts))
    return dataclasses.replace(run, outputs=[C])


def simulate_layer(*, path, strategy, X=None, vectors=4, name=None, prune="none", geometry=None, dac_bits=2,
                   config=None, sim="verilator", seed=0, waves=False, progress=True) -> SimRun:
    """One layer of a user ``.npz`` on an RRAM tile: mapped with ``strategy``, ``X [V × K]`` (int8) as MVMs.

    ``X`` None: ``vectors`` seeded random int8 vectors. The tile is the smallest that holds the mapping
    (:func:`sim.compiler.compiled_layer.tile_config`: lossless ADC, ``dac_bits`` DAC). The RTL's ``Y [V × N]`` is
    compared with the tile golden (:func:`hw.formats.mvm.mvm`) and with ``X @ Wq`` (:class:`Mismatch` naming the first
    differing element); the report holds every register (checked against the tile golden in the simulator).
    ``config`` (an :class:`~gen.rram.config.RramTileConfig` of the same geometry that holds the mapping) replaces
    the derived tile, e.g. to share a simulator build.
    """
    from hw.formats.mvm import mvm
    from sim.compiler.compiled_layer import plan_user_layer, tile_config

    sim = check_simulator(sim)
    geometry = dict(geometry or {"xbar_rows": 128, "xbar_cols": 128, "ou_rows": 9, "ou_cols": 8, "cell_bits": 2})
    spec = {"path": str(path), "name": name, "prune": prune, "strategy": strategy, "geometry": geometry}
    layer, q, plan = plan_user_layer(**spec)
    mapping = plan.mapping()
    k = mapping.n_inputs
    if X is None:
        vectors = checks.check_int("--vectors", vectors, 1, 4096)
        X = np.random.default_rng(seed).integers(-128, 128, size=(vectors, k))
    X = checks.check_int_array("--input", X, ndim=2, bits=8, signed=True, whole_floats=False)
    if X.shape[1] != k:
        raise ValueError(f"--input has shape {X.shape}: allowed [V × {k}] (K = {k} inputs of layer {layer.name!r})")
    cfg = config or tile_config([mapping], geometry, dac_bits=dac_bits, name=f"rram_sim_{layer.name}"[:48])
    outputs, report, seconds, wave = _run(cfg, "simulate_rram", sim, arrays={"x": X},
                                          knobs={"layer": json.dumps(spec)}, seed=seed, waves=waves,
                                          progress=progress, label=f"{sim} {layer.name}", unit="MVM")
    Y = outputs["y"]
    want = mvm(mapping, X, input_bits=cfg.input_bits, input_signed=cfg.input_signed, dac_bits=cfg.dac_bits,
               adc_bits=cfg.adc_bits)
    for label, ref in (("Y", want), ("Y (x @ Wq)", X @ plan.weights)):
        problem = first_difference(label, Y, np.asarray(ref, np.int64))
        if problem:
            raise Mismatch(problem)
    report.update(layer=layer.name, strategy=strategy, n_ous=mapping.n_ous, n_xbars=mapping.n_xbars, tile=cfg.top)
    return SimRun([Y], report, seconds, wave)


# ---- ONNX networks ---------------------------------------------------------------------------------------------

# operators the runner applies on the host between GEMM layers (integers, the engine's int8 activations)
RUNNER_OPS = ("Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Squeeze", "Unsqueeze",
              "Identity", "Dropout")


def quantize_input(x, act_bits=8):
    """A float input → signed ``act_bits`` integers: ``round(x / s)`` with ``s = max|x| / (2^(b−1) − 1)``; an
    integer input is taken as it is (it must fit)."""
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        return checks.check_int_array("--input", x, bits=act_bits, signed=True)
    checks.check_float_array("--input", x)
    top = (1 << (act_bits - 1)) - 1
    scale = float(np.abs(x).max()) / top or 1.0
    return np.clip(np.round(x / scale), -top, top).astype(np.int64)


def _pool(x, attrs, average):
    k = attrs.get("kernel_shape")
    s = attrs.get("strides", k)
    if any(attrs.get("pads", [0]) ) or len(set(k)) != 1 or len(set(s)) != 1:
        raise ValueError(f"pooling {attrs}: allowed square kernels and strides without padding")
    k, s = k[0], s[0]
    b, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    win = np.stack([x[:, :, i:i + s * ho:s, j:j + s * wo:s] for i in range(k) for j in range(k)])
    return (win.sum(0) + (k * k) // 2) // (k * k) if average else win.max(0)


def run_network(cfg, net, x, *, gemm, prune=True):
    """Run the Conv/Gemm/MatMul layers of an imported ONNX model (``net``, :class:`OnnxNetwork`) one after another
    as GEMM jobs on the engine of ``cfg``; ``gemm(name, jobs) -> [C_j]`` runs a layer's jobs (the RTL and its
    golden check: :func:`simulate_jobs`). The one function a real-network pipeline replaces.

    The rule: the input is quantized to signed ``act_bits`` (:func:`quantize_input`); each layer's float weights
    are pruned to the engine's ``keep:block`` along the im2col K order (magnitude, :func:`gen.compiler.prune.nm`;
    none when the engine is dense) and quantized to int8 per output channel (:func:`gen.compiler.quantize`:
    ``scale = max|w| / 127``); the bias is left out (the engine has no bias input). Each layer is one im2col GEMM
    (a depthwise conv one ``M × k² × 1`` job per channel, Gemm/MatMul one ``rows × in × out`` GEMM), split into
    jobs of at most ``max_m`` rows / ``max_n`` columns, with the engine's output stage: its ReLU (``cfg.relu``, on
    every layer) and the requantization shift :func:`auto_shift` of the layer, so that its int8 output feeds the
    next layer. Between layers the host applies the integer versions of :data:`RUNNER_OPS` (ReLU, max/average
    pooling rounding half up, reshapes); any other operator is refused before anything runs.

    Returns ``(output, layers)``: the last tensor (int64, the model output's shape) and per layer
    ``{"name", "op", "kind", "gemm", "jobs", "shift", "relu_in_model", "relu_on_engine", "output"}`` (the last two
    differ where the engine's config-wide ReLU does not match the model).
    """
    from gen.compiler.prune import as_matrix
    from gen.compiler.workloads import prepare_layer
    from gen.gemm.traffic import split_jobs
    from hw.formats.conv import im2col

    if cfg.out_bits is None or cfg.out_bits > cfg.act_bits or not cfg.act_signed:
        raise ValueError(f"--config {cfg.top}: a layer's output feeds the next layer, so the engine must requantize "
                         f"to signed activations: allowed out_bits ≤ act_bits = {cfg.act_bits} and act_signed")
    layers = {layer.output: layer for layer in net.layers}
    for node in net.nodes:
        if node.outputs and node.outputs[0] not in layers and node.op not in RUNNER_OPS:
            raise ValueError(f"--onnx {net.path}: node {node.name!r} ({node.op}) is not supported by the simulate "
                             f"runner: allowed Conv, Gemm, MatMul and {', '.join(RUNNER_OPS)} between them")
    spec = ("nm", {"keep": cfg.keep, "block": cfg.block}) if prune and cfg.sparse else ("none", {})
    plans = {}
    for layer in net.layers:                        # quantize and check every layer before running any
        q, _ = prepare_layer(layer.layer(), layer.weights, prune_name=spec[0], prune_params=spec[1], quant="int8")
        for name, (m, k, n) in layer.gemm_jobs()[:1]:
            split_jobs(cfg, m, k, n, name=f"layer {layer.name}")
        plans[layer.output] = (layer, q)
    tensors = {net.input: quantize_input(x, cfg.act_bits).reshape(net.input_shape or np.shape(x))}
    report = []
    for node in net.nodes:
        if node.outputs[0] in plans:
            layer, q = plans[node.outputs[0]]
            xin = tensors[layer.input]
            if layer.op == "Conv":
                kh = q.shape[2]
                if layer.kind == "dw":
                    As = [im2col(xin[:, c:c + 1], kh, kh, layer.stride, layer.padding) for c in range(q.shape[0])]
                    Ws = [q[c].reshape(-1, 1) for c in range(q.shape[0])]
                else:
                    As, Ws = [im2col(xin, kh, kh, layer.stride, layer.padding)], [as_matrix(q)]
            else:
                As, Ws = [xin.reshape(-1, layer.gemm[1])], [as_matrix(q)]
            shift = max(auto_shift(cfg, A, W) for A, W in zip(As, Ws))
            jobs, where = [], []
            for g, (A, W) in enumerate(zip(As, Ws)):
                for m0, n0, mj, _, nj in split_jobs(cfg, A.shape[0], A.shape[1], W.shape[1],
                                                    name=f"layer {layer.name}"):
                    jobs.append((A[m0:m0 + mj], W[:, n0:n0 + nj], shift))
                    where.append((g, m0, n0))
            parts = gemm(layer.name, jobs)
            Cs = [np.zeros((A.shape[0], W.shape[1]), np.int64) for A, W in zip(As, Ws)]
            for (g, m0, n0), part in zip(where, parts):
                Cs[g][m0:m0 + part.shape[0], n0:n0 + part.shape[1]] = part
            C = np.concatenate(Cs, axis=1)               # [M, N] (dw: one column per channel)
            if layer.op == "Conv":
                b, _, ho, wo = layer.out_shape
                out = C.reshape(b, ho, wo, -1).transpose(0, 3, 1, 2)
            else:
                out = C.reshape(layer.out_shape)
            tensors[layer.output] = out
            # the engine's ReLU is per config, not per layer: say where the model has none after the layer
            followed = any(n.op == "Relu" and n.inputs[:1] == (layer.output,) for n in net.nodes)
            report.append({"name": layer.name, "op": layer.op, "kind": layer.kind, "gemm": list(layer.gemm),
                           "jobs": len(jobs), "shift": shift, "relu_in_model": followed,
                           "relu_on_engine": bool(cfg.relu), "output": out})
            continue
        xin = tensors[node.inputs[0]]
        shape = net.shapes.get(node.outputs[0])
        if node.op == "Relu":
            out = np.maximum(xin, 0)
        elif node.op in ("MaxPool", "AveragePool"):
            out = _pool(xin, node.attrs, node.op == "AveragePool")
        elif node.op == "GlobalAveragePool":
            hw_ = xin.shape[2] * xin.shape[3]
            out = ((xin.sum(axis=(2, 3)) + hw_ // 2) // hw_).reshape(xin.shape[0], xin.shape[1], 1, 1)
        else:                                            # reshapes and no-ops
            out = xin.reshape(shape) if shape else xin
        tensors[node.outputs[0]] = out
    return tensors[net.output], report
