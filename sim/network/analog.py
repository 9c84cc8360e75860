"""An int8 network on the float analog physics model of the RRAM tile (:mod:`gen.rram.analog`), layer by layer.

Each weighted layer's ``K × N`` int8 matrix is mapped by the compiler (:func:`gen.compiler.sparse_map.map_layer`,
:data:`ANALOG_GEOMETRY` by default), programmed once per chip (programming noise, write-verify, stuck-at faults,
:func:`gen.rram.analog.program`), optionally aged by conductance drift (:func:`drift`), and every im2col vector
is read through :func:`gen.rram.analog.analog_mvm` (read noise, IR drop, ADC); the host applies the GEMM
engine's output stage between layers (:func:`sim.network.golden.int8_forward`). With every non-ideality off and a
lossless ADC the result is the int8 golden, bit for bit.

Drift: ``G(t) = G(t0) · (t / t0)^(−ν)`` per cell, ``ν ~ N(ν_mean, ν_std)`` drawn per cell and per chip, the
power law aihwkit uses (``PCMLikeNoiseModel``, after Nandakumar et al. 2019 / Le Gallo et al. 2018, ``t0 = 20 s``,
ν ≈ 0.05 for PCM). Filamentary RRAM drifts far less; :data:`DRIFT_NU` takes ν = 0.01 ± 0.005 as an assumed
RRAM-like value (the same law at a smaller exponent), and the study also runs the PCM value. The ADC
reference is not re-calibrated after programming (that would cancel a uniform drift).
"""

from dataclasses import replace

import numpy as np

from hw import checks
from hw.formats.mapping import CrossbarGeometry
from hw.formats.mvm import lossless_adc_bits
from gen.compiler.sparse_map import map_layer
from gen.rram.analog import PhysicsParams, analog_mvm, program
from sim.network.golden import classes_of, int8_forward

__all__ = ["ANALOG_GEOMETRY", "ANALOG_DAC_BITS", "DRIFT_T0", "DRIFT_NU", "PCM_DRIFT_NU", "drift", "analog_forward",
           "analog_predict", "lossless_bits"]

# ISAAC-like: 128×128 crossbars of 2-bit cells, 9×8 OUs, 1-bit DAC → 5-bit lossless ADC (rram-sweep's baseline)
ANALOG_GEOMETRY = {"xbar_rows": 128, "xbar_cols": 128, "ou_rows": 9, "ou_cols": 8, "cell_bits": 2}
ANALOG_DAC_BITS = 1
DRIFT_T0 = 20.0                   # s, aihwkit's reference time after programming
DRIFT_NU = (0.01, 0.005)          # (mean, std) of ν: assumed RRAM-like
PCM_DRIFT_NU = (0.05, 0.01)       # aihwkit's PCM order of magnitude, for comparison


def lossless_bits(geometry=None) -> int:
    """The lossless ADC resolution of ``geometry`` with :data:`ANALOG_DAC_BITS`."""
    g = geometry or ANALOG_GEOMETRY
    return lossless_adc_bits(g["ou_rows"], g["cell_bits"], ANALOG_DAC_BITS)


def drift(tile, t_seconds: float, *, nu=DRIFT_NU, t0: float = DRIFT_T0, seed=None):
    """``tile`` (a :class:`gen.rram.analog.ProgrammedTile`) after ``t_seconds`` of power-law drift since ``t0``.

    ``G ← G · (t / t0)^(−ν)`` for working cells, ``ν ~ N(nu[0], nu[1])`` clipped at 0 per cell; stuck cells keep
    their conductance. ``t_seconds ≤ t0`` returns ``tile`` unchanged.
    """
    t = checks.check_float("t_seconds", t_seconds, 0.0)
    if t <= t0:
        return tile
    rng = np.random.default_rng(seed)
    v = np.maximum(0.0, rng.normal(nu[0], nu[1], tile.g_us.shape))
    g = np.where(tile.stuck == 0, tile.g_us * (t / t0) ** (-v), tile.g_us)
    return replace(tile, g_us=g)


def analog_forward(network, images, params: PhysicsParams, *, seed: int = 0, adc_bits=None, geometry=None,
                   strategy: str = "dense", drift_s: float = 0.0, drift_nu=DRIFT_NU, mappings=None) -> list:
    """Every layer's int output of ``network`` on one simulated chip (see the module); like
    :func:`sim.network.golden.int8_forward`.

    Parameters
    ----------
    params : PhysicsParams
        The non-idealities (``PhysicsParams.ideal()``: none).
    seed : int
        The chip: programming, faults, drift and read noise all derive from it.
    adc_bits : int or None
        ADC resolution; ``None`` = lossless for the geometry.
    geometry : dict, optional
        Crossbar geometry (:data:`ANALOG_GEOMETRY`).
    strategy : str
        Mapping strategy (``dense``, ``ou-sparse``, ...).
    drift_s : float
        Seconds since programming (0: no drift).
    mappings : dict, optional
        ``{layer name: TileMapping}`` already mapped (saves the mapping time in sweeps).
    """
    checks.check_instance("params", params, PhysicsParams)
    g = geometry or ANALOG_GEOMETRY
    bits = lossless_bits(g) if adc_bits is None else checks.check_int("adc_bits", adc_bits, 1, 32)
    geo = CrossbarGeometry(**g)
    streams = iter(np.random.SeedSequence(seed).spawn(3 * len(network.weighted)))
    maps = mappings or {}

    def gemm(layer, A, W):
        mapping = maps.get(layer.name) or map_layer(W, geo, strategy=strategy, weight_bits=8)
        tile = program(mapping, params, np.random.default_rng(next(streams)))
        tile = drift(tile, drift_s, nu=drift_nu, seed=np.random.default_rng(next(streams)))
        return analog_mvm(tile, A, input_bits=8, input_signed=True, dac_bits=ANALOG_DAC_BITS, adc_bits=bits,
                          seed=np.random.default_rng(next(streams)))
    return int8_forward(network, images, gemm=gemm)


def analog_predict(network, images, params: PhysicsParams, **options) -> np.ndarray:
    """``(n,)`` classes on one simulated chip (:func:`analog_forward`'s options)."""
    return classes_of(network, analog_forward(network, images, params, **options)[-1])
