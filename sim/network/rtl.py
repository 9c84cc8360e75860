"""A whole int8 network on the RTL: every layer through the GEMM engine's or the RRAM tile's Verilog.

:func:`run_rtl` writes a *job* (the network, the int8 inputs, the options) into the build directory, runs the
cocotb module :mod:`sim.network.cocotb_network` on the engine's Verilog (Verilator or Icarus, through
:func:`sim.common.runner.run_design`) and reads back every layer's output as the RTL produced it, the
predictions and the simulated cycles. Inside the simulator the layers run one after the other on the same DUT,
batch-wise (every image's im2col rows of a layer, then the next layer):

- GEMM engine (:func:`gemm_config`): each layer is im2col GEMM jobs of at most ``max_m`` rows through
  :class:`sim.gemm.tb.GemmEngineTB` (driver :mod:`sim.gemm.driver`); the engine's own ReLU/requantization
  produces the int8 activations; a layer without ReLU runs as ``[W, −W]`` and the host subtracts the halves;
- RRAM tile (:func:`rram_config`): each layer is mapped by the compiler (:func:`gen.compiler.sparse_map.map_layer`,
  ``dense`` or a sparse strategy), programmed with write-verify (only the cells it reads that do not already hold
  their level), its tables loaded, and every im2col vector run through :class:`sim.rram.tb.RramTileTB`
  (driver :mod:`sim.rram.driver`); the host applies the output stage to the tile's sums;
- ``maxpool`` is a host operation in both.

Every output beat is scored against the engine's golden model as it leaves, and every layer's output against
:func:`sim.network.golden.int8_forward`, inside the simulation.
"""

import dataclasses
import itertools
import os
import shutil
import time
from pathlib import Path

import numpy as np

from hw import checks
from hw.formats.conv import K_ORDERS
from hw.formats.mapping import CrossbarGeometry
from hw.formats.mvm import lossless_adc_bits
from gen.compiler.sparse_map import map_layer
from gen.config import load_config
from gen.network.spec import Network, save
from gen.paths import build_dir
from sim.network.golden import classes_of, input_ints, layer_gemm

__all__ = ["ENGINES", "RRAM_GEOMETRY", "RRAM_DAC_BITS", "RtlResult", "gemm_config", "gemm_matrix_of",
           "rram_config", "rram_mappings", "check_gemm_config", "run_rtl", "model_cycles", "job_paths"]

ENGINES = ("gemm", "rram")
# 128×128 crossbars of 4-bit cells (PRIME's), 16×16 OUs, 2-bit DAC (5 input planes with the sign's): a 10-bit
# lossless ADC. Chosen for simulation speed: a lane's conversion cycles grow with the converted bitlines per plane,
# so 4 bitlines per weight instead of 8 halve them.
RRAM_GEOMETRY = {"xbar_rows": 128, "xbar_cols": 128, "ou_rows": 16, "ou_cols": 16, "cell_bits": 4}
RRAM_DAC_BITS = 2
_COUNTER = itertools.count()


def gemm_matrix_of(layer, k_order: str = "cij") -> np.ndarray:
    """The ``K × N`` weight matrix a layer runs as on the GEMM engine: ``[W, −W]`` for a layer without ReLU; K in
    ``k_order`` (:data:`hw.formats.conv.K_ORDERS`, :func:`sim.network.golden.layer_gemm`)."""
    W = layer_gemm(layer, _zeros_input(layer), k_order=k_order)[1]
    return W if layer.relu else np.concatenate([W, -W], axis=1)


def _nm_ok(W, keep, block):
    k = -(-W.shape[0] // block) * block
    padded = np.zeros((k, W.shape[1]), np.int64)
    padded[:W.shape[0]] = W
    return bool((np.count_nonzero(padded.reshape(-1, block, W.shape[1]), axis=1) <= keep).all())


def gemm_config(network: Network, *, max_m: int = 256, rows: int = 4, cols: int = 4, k_order: str = "cij"):
    """The GEMM engine for ``network``: the ``gemm_4x4_2of4`` preset (ReLU, int8 output, 24-bit sums) with 2:4
    sparsity when every layer's matrix (in ``k_order``) is 2:4, else dense 4:4, and maxima set to the network's
    largest layer."""
    mats = [gemm_matrix_of(l, k_order) for l in network.weighted]
    keep = 2 if all(_nm_ok(W, 2, 4) for W in mats) else 4
    return load_config("gemm_4x4_2of4", {"rows": rows, "cols": cols, "keep": keep, "max_m": max_m,
                                         "max_k": max(W.shape[0] for W in mats),
                                         "max_n": max(W.shape[1] for W in mats)})


def rram_mappings(network: Network, strategy: str = "dense", geometry=None) -> dict:
    """``{layer name: TileMapping}``: every weighted layer's ``K × N`` int8 matrix mapped by the compiler."""
    g = CrossbarGeometry(**(geometry or RRAM_GEOMETRY))
    return {l.name: map_layer(layer_gemm(l, _zeros_input(l))[1], g, strategy=strategy, weight_bits=8)
            for l in network.weighted}


def _zeros_input(layer):
    if layer.kind == "fc":
        return np.zeros((1, layer.weight.shape[1], 1, 1), np.int64)
    c = layer.weight.shape[1] if layer.kind == "conv" else layer.weight.shape[0]
    return np.zeros((1, c) + tuple(layer.weight.shape[2:]), np.int64)


def rram_config(network: Network, strategies=("dense",), *, adc_bits=None):
    """The RRAM tile for ``network``: a ``replace`` of ``rram_128x128_c2_ou9x8_adc5`` with :data:`RRAM_GEOMETRY`,
    8-bit signed inputs through a :data:`RRAM_DAC_BITS`-bit DAC, a lossless ADC (or ``adc_bits``), sized to hold
    every layer's mapping under every strategy of ``strategies``."""
    maps = [m for s in strategies for m in rram_mappings(network, s).values()]
    g = RRAM_GEOMETRY
    lossless = lossless_adc_bits(g["ou_rows"], g["cell_bits"], RRAM_DAC_BITS)
    return dataclasses.replace(
        load_config("rram_128x128_c2_ou9x8_adc5"), **g, dac_bits=RRAM_DAC_BITS, input_bits=8, input_signed=True,
        adc_bits=lossless if adc_bits is None else adc_bits,
        n_xbars=max(m.n_xbars for m in maps), max_ous=max(m.n_ous for m in maps),
        max_inputs=max(m.n_inputs for m in maps), max_outputs=max(m.n_outputs for m in maps), name="rram_network")


@dataclasses.dataclass
class RtlResult:
    """What :func:`run_rtl` returns.

    Attributes
    ----------
    outputs : list of ndarray
        Every layer's output as the RTL produced it, ``(n, C, H, W)`` int64 (after the output stage / pool).
    predictions : ndarray of int64, shape (n,)
        Argmax of the last layer.
    cycles : dict
        Simulated clock cycles per weighted layer (all images), and ``"total"``.
    bit_exact : bool
        Every layer equal to :func:`sim.network.golden.int8_forward` (checked inside the simulation too; on an
        A-DBB engine with its activation pruning, :func:`sim.network.actsparse.adbb_gemm`).
    seconds : float
        Wall time of the simulation (build excluded when cached).
    top : str
        The engine's top-level name.
    waveform : str or None
        The waveform's path (``waves``).
    """

    outputs: list
    predictions: np.ndarray
    cycles: dict
    bit_exact: bool
    seconds: float
    top: str = ""
    waveform: str | None = None


def check_gemm_config(network: Network, cfg, k_order: str = "cij"):
    """``cfg`` (a :class:`~gen.gemm.config.GemmConfig`) must run every layer of the int8 ``network`` as
    :func:`run_rtl` runs it: ReLU and requantization to signed int8, every layer's matrix
    (:func:`gemm_matrix_of` in ``k_order``) within ``max_k`` × ``max_n`` with the shifts in range
    (:func:`gen.gemm.config.check_job` on one row of each layer) and in keep:block
    (:func:`sim.gemm.golden.padded_weights`); ``ValueError`` naming the layer and what does not fit."""
    from gen.gemm.config import GemmConfig, check_job
    from sim.gemm.golden import padded_weights

    checks.check_instance("config", cfg, GemmConfig)
    if not cfg.relu or cfg.out_bits != 8 or cfg.act_bits != 8 or not cfg.act_signed:
        raise ValueError(f"config {cfg.top}: relu = {cfg.relu}, out_bits = {cfg.out_bits}, act_bits = "
                         f"{cfg.act_bits}, act_signed = {cfg.act_signed}: allowed relu, out_bits = act_bits = 8, "
                         "signed activations (a layer's int8 output is the next layer's input)")
    for layer in network.weighted:
        W = gemm_matrix_of(layer, k_order)
        try:
            check_job(cfg, np.zeros((1, W.shape[0]), np.int64), W, layer.shift)
            padded_weights(cfg, W)
        except ValueError as error:
            raise ValueError(f"layer {layer.name!r} ({W.shape[0]} × {W.shape[1]} matrix): {error}") from None
    return cfg


def run_rtl(network: Network, images, *, engine: str = "gemm", sim: str = "verilator", strategy: str = "dense",
            seed: int = 0, progress: bool = False, config=None, waves: bool = False,
            k_order: str = "cij") -> RtlResult:
    """Run ``images`` (float ``(n, C, H, W)``) through ``network`` on the RTL of ``engine``.

    Parameters
    ----------
    network : Network
        An int8 network.
    engine : ``"gemm"`` or ``"rram"``
    sim : ``"verilator"`` or ``"icarus"``
    strategy : str
        RRAM mapping strategy of :mod:`gen.compiler.sparse_map` (``dense``, ``ou-sparse``, ...).
    seed : int
        Stimulus seed (the testbenches' gap/backpressure generators; the network runs without gaps).
    progress : bool
        Print a progress line per layer from inside the simulation.
    config : GemmConfig or None
        ``engine="gemm"``: the engine to run on (checked by :func:`check_gemm_config`); None: :func:`gemm_config`.
    waves : bool
        Dump a waveform (its path is in ``RtlResult.waveform``).
    k_order : ``"cij"`` or ``"ijc"``
        ``engine="gemm"``: the K order the host lays every layer's im2col rows and weights out in
        (:data:`hw.formats.conv.K_ORDERS`; it decides an A-DBB engine's activation blocks, nothing else).

    Raises
    ------
    ValueError
        A float network, images of the wrong shape, an unknown engine or strategy.
    """
    from sim.common.runner import run_design, waveforms

    checks.check_instance("network", network, Network)
    checks.check_choice("engine", engine, ENGINES)
    k_order = checks.check_choice("k_order", k_order, K_ORDERS)
    if engine != "gemm" and k_order != "cij":
        raise ValueError(f"k_order = {k_order!r} applies to engine 'gemm' only: allowed 'cij' for {engine!r}")
    if not network.quantized:
        raise ValueError(f"network {network.name!r} has float weights: allowed an int8 network")
    inputs = input_ints(network, images)
    if config is not None and engine != "gemm":
        raise ValueError(f"config = {config!r} applies to engine 'gemm' only: allowed None for {engine!r}")
    if engine == "gemm":
        cfg = gemm_config(network, k_order=k_order) if config is None else check_gemm_config(network, config, k_order)
    else:
        cfg = rram_config(network, (strategy,))
    job_dir = build_dir() / "network" / "jobs" / f"{os.getpid()}-{next(_COUNTER)}"
    job_dir.mkdir(parents=True, exist_ok=True)
    save(network, job_dir / "network.npz")
    np.savez(job_dir / "job.npz", inputs=inputs, strategy=np.array(strategy), progress=np.array(int(progress)),
             k_order=np.array(k_order))
    out = job_dir / "result.npz"
    out.unlink(missing_ok=True)
    start = time.monotonic()
    waveforms()                                     # forget earlier runs' paths
    run_design(cfg, "sim.network.cocotb_network", sim, seed=seed, knobs={"job": str(job_dir)},
               testcase=f"{engine}_network", waves=checks.check_bool("waves", waves) or None)
    waves_written = waveforms()
    seconds = time.monotonic() - start
    with np.load(out) as r:
        outputs = [r[f"out.{l.name}"] for l in network.layers]
        cycles = {k[len("cycles."):]: int(r[k]) for k in r.files if k.startswith("cycles.")}
        bit_exact = bool(r["bit_exact"])
    shutil.rmtree(job_dir, ignore_errors=True)      # the simulator's run directory keeps its log and results
    cycles["total"] = sum(cycles.values())
    return RtlResult(outputs, classes_of(network, outputs[-1]), cycles, bit_exact, seconds,
                     cfg.top, waves_written[-1] if waves_written else None)


def model_cycles(network: Network, engine: str = "gemm", strategy: str = "dense") -> dict:
    """Cycles per image from the cycle models (ideal host), per weighted layer and ``"total"``.

    GEMM: :func:`gen.gemm.perf.job_cycles` of each layer's job (``M`` = output positions, the ``[W, −W]``
    matrix of a layer without ReLU); RRAM: :func:`gen.rram.perf.mvm_cycles` of the layer's mapping × its
    positions (MVMs only: programming and table loads are paid once per batch and not included).
    """
    from gen.gemm.perf import job_cycles
    from gen.rram.perf import mvm_cycles

    checks.check_choice("engine", engine, ENGINES)
    out = {}
    if engine == "gemm":
        cfg = gemm_config(network)
    else:
        cfg = rram_config(network, (strategy,))
        maps = rram_mappings(network, strategy)
    for layer, shape in zip(network.layers, network.shapes[1:]):
        if not layer.has_weights:
            continue
        positions = shape[1] * shape[2]
        if engine == "gemm":
            W = gemm_matrix_of(layer)
            out[layer.name] = job_cycles(cfg, positions, *W.shape)
        else:
            out[layer.name] = positions * mvm_cycles(cfg, maps[layer.name])
    out["total"] = sum(out.values())
    return out


def job_paths(job_dir) -> tuple:
    """``(network, job, result)`` paths of a job directory (the cocotb side reads the first two)."""
    job_dir = Path(job_dir)
    return job_dir / "network.npz", job_dir / "job.npz", job_dir / "result.npz"
