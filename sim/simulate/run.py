"""``sparsegen simulate``, host side: the user's data on the emitted RTL, every output checked against the golden.

- :func:`simulate_gemm`: ``C = post(A · W)`` on a GEMM engine config. A GEMM larger than ``max_m``/``max_n`` is
  split into jobs (:func:`gen.gemm.traffic.split_jobs`; K must fit ``max_k``), all run back to back in one
  simulation from an ideal host; the result is the RTL's C, compared element by element with
  :func:`sim.gemm.golden.gemm_engine`.
- :func:`simulate_jobs`: the layer below: a list of ``(A, W, shift)`` jobs in one simulation.
- :func:`simulate_layer`: one layer of a user ``.npz`` mapped onto an RRAM tile by a mapping strategy
  (:func:`sim.compiler.compiled_layer.plan_user_layer`), input vectors run as MVMs, compared with the tile golden
  (:func:`hw.formats.mvm.mvm`) and with ``x @ Wq``.
- :func:`run_onnx`: an imported ONNX model (:mod:`gen.compiler.onnx_import`) through the real-network pipeline:
  converted to a :class:`gen.network.spec.Network`, quantized and calibrated as :func:`sim.network.golden.quantize`
  does, every layer on the GEMM engine's RTL (:func:`sim.network.rtl.run_rtl`) against the int8 golden.

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

__all__ = ["Mismatch", "SimRun", "NetworkRun", "check_simulator", "simulate_jobs", "simulate_gemm", "simulate_layer",
           "auto_shift", "network_images", "run_onnx"]


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

@dataclasses.dataclass
class NetworkRun:
    """:func:`run_onnx`'s result: ``float_net`` (the converted float network), ``net`` (its int8 quantization),
    ``golden`` (every layer's int8 golden output, :func:`sim.network.golden.int8_forward`), ``rtl`` (the
    :class:`sim.network.rtl.RtlResult`: every layer's output from the RTL, predictions, cycles, waveform) and
    ``model_cycles`` (per image, :func:`sim.network.rtl.model_cycles` on the default engine)."""
    float_net: object
    net: object
    golden: list
    rtl: object
    model_cycles: dict


def network_images(net, x):
    """``x`` as float images ``(n, C, H, W)`` of the float ``net``: ``(n, C, H, W)`` or one ``(C, H, W)`` image;
    an integer array is taken as image values. ``ValueError`` naming the allowed shapes otherwise."""
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise TypeError(f"--input has dtype {x.dtype}: allowed an integer or float array")
    shape = tuple(net.input_shape)
    if x.shape == shape:
        x = x[None]
    if x.ndim != 4 or x.shape[1:] != shape or not len(x):
        raise ValueError(f"--input has shape {x.shape}: allowed [n, {', '.join(map(str, shape))}] or "
                         f"[{', '.join(map(str, shape))}] (the model's input)")
    return checks.check_float_array("--input", x.astype(np.float64))


def run_onnx(onnx_net, x, *, config=None, sim="verilator", seed=0, waves=False, progress=True) -> NetworkRun:
    """An imported ONNX model through the real-network pipeline on the GEMM engine's RTL.

    The model becomes a float :class:`gen.network.spec.Network` (:func:`gen.network.onnx_import.network_from_onnx`:
    nodes it cannot express are refused, named), quantized as the pipeline quantizes
    (:func:`sim.network.golden.quantize`: one int8 scale per layer, the input scale ``max|x| / 127`` and each
    layer's shift calibrated on the images ``x``) and run on the engine by :func:`sim.network.rtl.run_rtl` (every
    layer checked against the int8 golden inside the simulation; a layer without ReLU, the logits, runs as
    ``[W, −W]``). ``config``: the GEMM engine (:func:`sim.network.rtl.check_gemm_config`), None for the pipeline's
    (:func:`sim.network.rtl.gemm_config`).

    Raises
    ------
    ValueError
        A node the spec cannot express, an input of the wrong shape, a config the network does not fit.
    Mismatch
        A layer's RTL output differs from the int8 golden (first differing element named).
    RuntimeError
        A check inside the simulation failed (a layer against the int8 golden, a beat against the engine's golden).
    """
    from gen.network.onnx_import import network_from_onnx
    from sim.network.golden import int8_forward, quantize
    from sim.network.rtl import check_gemm_config, model_cycles, run_rtl

    float_net = network_from_onnx(onnx_net)
    images = network_images(float_net, x)
    net = quantize(float_net, images)
    if config is not None:
        check_gemm_config(net, config)
    sim = check_simulator(sim)
    golden = int8_forward(net, images)
    rtl = run_rtl(net, images, sim=sim, seed=seed, progress=progress, config=config, waves=waves)
    for layer, got, want in zip(net.layers, rtl.outputs, golden):
        problem = first_difference(f"layer {layer.name}", got, want)
        if problem:
            raise Mismatch(problem)
    return NetworkRun(float_net, net, golden, rtl, model_cycles(net))
