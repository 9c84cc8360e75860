"""Float physics model of the RRAM tile: conductances, programming (with write-verify), read noise, stuck-at faults,
IR drop and a Gmin-referenced ADC, evaluated over a :class:`~hw.formats.mapping.TileMapping`.

For accuracy studies, not for bit-exact mirroring of the hardware (the integer golden model is
:mod:`hw.formats.mvm`). It follows the same order of operations (input planes × scheduled OUs × ADC × shift-add,
see :mod:`hw.formats.mapping`), replacing the integer column sum by a column current. With every non-ideality off
and Gmin subtracted it reduces to :func:`hw.formats.mvm.mvm` exactly (bit-identical int64 outputs).

Model (units: conductance µS, voltage V, current µA)::

    ΔG        = (Gmax - Gmin) / (2**cell_bits - 1),  Gmin = Gmax / on_off
    G_target  = Gmin + level · ΔG
    G_prog    = max(0, G_target + σ_p(G_target) · N(0, 1))                  programming (once per chip)
                write-verify: re-draw while |G_prog - G_target| > tol · (Gmax - Gmin), at most max_iters draws
    G_prog    = Gmin (SA0) or Gmax (SA1) for stuck cells, whatever the target
    G_eff     = G_prog / (1 + G_prog · R_wire · n_seg(r, c))                 IR drop (series wire, first order)
    V_r       = drive_r · v_step                                              DAC: drive 0 … 2**dac_bits - 1
    I_c       = Σ_r V_r · G_eff[r, c] + σ_read · sqrt(Σ_r (V_r · G_eff[r, c])²) · N(0, 1)   per read
    s_c       = (I_c - Gmin · Σ_r V_r) / (ΔG · v_step)                        Gmin reference; LSB = ΔG · v_step
    ADC(s_c)  = clip(rint(s_c), 0, 2**adc_bits - 1)                          (no upper clip when adc_bits is None)

The read-noise term is the sum of independent per-cell Gaussian read noises ``σ_read · G · N(0, 1)`` on every
driven cell, drawn as one Gaussian per column current (the same distribution, far fewer draws).

Sources of the defaults: 2-bit cells (ISAAC, PUMA);
on/off ratio 10 (NeuroSim's Python default; NeuroSim C++ uses 100 kΩ / 1.7 MΩ, i.e. 17); Gmax 10 µS (a 100 kΩ
on-state, NeuroSim); programming noise 1–5 % of the conductance range, 3 % by default; read noise about 1 % of G
per read (aihwkit's recommendation for ReRAM, ``forward.w_noise ≈ 0.01`` in ``ReRamWan2022NoiseModel`` /
``ReRamCMONoiseModel``); the polynomial form of σ_p is aihwkit's (``Σ c_i (G/Gmax)^i`` µS, clamped at 0);
write-verify's acceptance band as a fraction of the range follows aihwkit's CMO model, whose 0.2 % band gives
σ ≈ 0.1 % of G. ADC resolutions of 5 b (NeuroSim) to 8 b (ISAAC, PUMA) and 128×128 crossbars are typical.
"""

from dataclasses import dataclass, field, replace

import numpy as np

from hw.checks import check_bool, check_float, check_int, fail
from hw.formats.mapping import TileMapping, input_planes

__all__ = ["PhysicsParams", "ProgrammedTile", "program", "analog_mvm", "physics_mvm", "ir_segments"]


def _check_number(name, value, lo, hi, *, lo_open=False, integer=False):
    """``PhysicsParams.<name>`` checked by :mod:`hw.checks` (``lo_open``: ``lo`` itself is excluded); returns it as
    a plain ``int``/``float``."""
    bounds = f"{'(' if lo_open else '['}{lo} … {hi}]"
    value = (check_int if integer else check_float)(f"PhysicsParams.{name}", value, lo, hi, allowed=bounds)
    if lo_open and value == lo:
        fail(f"PhysicsParams.{name}", value, "is out of range", bounds)
    return value


@dataclass(frozen=True)
class PhysicsParams:
    """Device and periphery parameters of the float model (defaults: typical ReRAM figures, see the module).

    Parameters
    ----------
    g_max_us : float
        Highest-level conductance Gmax in µS; (0 … 1000]. Default 10 µS (100 kΩ on-state, NeuroSim).
    on_off : float
        On/off ratio Gmax/Gmin; (1 … 1e6]. Default 10 (NeuroSim Python default; 17 in NeuroSim C++, 100 in MNSIM).
    v_step : float
        Wordline voltage per DAC unit, in V; (0 … 2]. A drive ``d`` applies ``d · v_step``. Default 0.1 V.
        It scales currents only: the ADC's LSB (``ΔG · v_step``) scales with it, so errors do not depend on it.
    prog_sigma : float
        Programming noise σ_p as a fraction of the conductance range ``Gmax − Gmin``; [0 … 1]. Default 0.03
        (typical 1–5 %).
    prog_poly : tuple of float
        When non-empty, σ_p in µS as aihwkit's polynomial ``max(0, Σ_i prog_poly[i] · (G_target/Gmax)^i)``,
        replacing ``prog_sigma`` (which must then be 0). Each coefficient in [-1e3 … 1e3], at most 8.
    write_verify : bool
        Iterative program-and-verify: a cell whose programmed conductance is off target by more than
        ``verify_tolerance · (Gmax − Gmin)`` is re-programmed (a fresh draw around the target), at most
        ``verify_max_iters`` draws in all; a cell still outside keeps its last draw. Default off.
    verify_tolerance : float
        Acceptance band of write-verify as a fraction of the range; (0 … 1]. Default 0.01 (aihwkit's CMO model
        characterises 0.2 % and 2 % bands of G).
    verify_max_iters : int
        Most programming draws per cell under write-verify, the first included; 1 … 1000. Default 20. A draw
        lands in the band with probability ``q = erf(tol / (σ_p·√2))`` (σ_p as a fraction of the range), so a
        cell stays outside with probability ``(1 − q)**verify_max_iters``: 0.24 % for the defaults (q = 0.26).
    read_sigma : float
        Read noise σ relative to G, fresh for every read (every input plane of every OU activation); [0 … 1].
        Default 0.01 (aihwkit's recommendation for ReRAM).
    sa0_rate, sa1_rate : float
        Fractions of cells stuck at Gmin (SA0) and at Gmax (SA1), drawn per cell at programming; each [0 … 1],
        their sum at most 1. Default 0 (faults are a property of one chip; typical: a fraction of a percent).
    wire_r_ohm : float
        Wire resistance of one cell pitch of wordline or bitline, in Ω, for the first-order IR-drop model
        (:func:`ir_segments`); [0 … 1e4]. Default 0 (off).
    subtract_gmin : bool
        The ADC reference subtracts the Gmin contribution ``Gmin · Σ V_r`` of the driven rows (default True);
        when False the ADC converts the raw current and every driven row adds ``Gmin / ΔG`` levels.
    """

    g_max_us: float = 10.0
    on_off: float = 10.0
    v_step: float = 0.1
    prog_sigma: float = 0.03
    prog_poly: tuple = field(default=())
    write_verify: bool = False
    verify_tolerance: float = 0.01
    verify_max_iters: int = 20
    read_sigma: float = 0.01
    sa0_rate: float = 0.0
    sa1_rate: float = 0.0
    wire_r_ohm: float = 0.0
    subtract_gmin: bool = True

    def __post_init__(self):
        def number(name, lo, hi, **kind):
            object.__setattr__(self, name, _check_number(name, getattr(self, name), lo, hi, **kind))

        number("g_max_us", 0, 1000, lo_open=True)
        number("on_off", 1, 1e6, lo_open=True)
        number("v_step", 0, 2, lo_open=True)
        number("prog_sigma", 0, 1)
        poly = "a tuple of at most 8 coefficients"
        if not isinstance(self.prog_poly, tuple):
            fail("PhysicsParams.prog_poly", self.prog_poly, f"is a {type(self.prog_poly).__name__}, not a tuple", poly,
                 exc=TypeError)
        if len(self.prog_poly) > 8:
            fail("PhysicsParams.prog_poly", self.prog_poly, f"has {len(self.prog_poly)} coefficients", poly)
        object.__setattr__(self, "prog_poly", tuple(_check_number(f"prog_poly[{i}]", c, -1e3, 1e3)
                                                    for i, c in enumerate(self.prog_poly)))
        if self.prog_poly and self.prog_sigma:
            fail("PhysicsParams.prog_sigma", self.prog_sigma, f"is set with prog_poly = {self.prog_poly!r}",
                 "one of the two (set prog_sigma = 0 to use the polynomial)")
        for name in ("write_verify", "subtract_gmin"):
            object.__setattr__(self, name, check_bool(f"PhysicsParams.{name}", getattr(self, name)))
        number("verify_tolerance", 0, 1, lo_open=True)
        number("verify_max_iters", 1, 1000, integer=True)
        number("read_sigma", 0, 1)
        number("sa0_rate", 0, 1)
        number("sa1_rate", 0, 1)
        if self.sa0_rate + self.sa1_rate > 1:
            fail("PhysicsParams.sa0_rate + sa1_rate", self.sa0_rate + self.sa1_rate, "is out of range", "[0 … 1]")
        number("wire_r_ohm", 0, 1e4)

    @classmethod
    def ideal(cls, **changes) -> "PhysicsParams":
        """No programming or read noise, no faults, no IR drop, Gmin subtracted (then :func:`physics_mvm` equals
        the integer golden model); ``changes`` override fields."""
        return cls(**{"prog_sigma": 0.0, "read_sigma": 0.0, **changes})

    def replace(self, **changes) -> "PhysicsParams":
        return replace(self, **changes)

    @property
    def g_min_us(self) -> float:
        """Lowest-level conductance Gmin = Gmax / on_off, in µS."""
        return self.g_max_us / self.on_off

    def delta_g_us(self, cell_bits: int) -> float:
        """Conductance step between adjacent levels, ``(Gmax − Gmin) / (2**cell_bits − 1)``, in µS."""
        return (self.g_max_us - self.g_min_us) / ((1 << cell_bits) - 1)

    def target_us(self, levels, cell_bits: int) -> np.ndarray:
        """Target conductances ``Gmin + level · ΔG`` in µS (float64, the shape of ``levels``)."""
        return self.g_min_us + np.asarray(levels, dtype=np.float64) * self.delta_g_us(cell_bits)

    def prog_sigma_us(self, g_target) -> np.ndarray:
        """Programming-noise σ_p in µS for target conductances ``g_target`` (µS)."""
        g_target = np.asarray(g_target, dtype=np.float64)
        if not self.prog_poly:
            return np.full_like(g_target, self.prog_sigma * (self.g_max_us - self.g_min_us))
        u = g_target / self.g_max_us
        return np.maximum(0.0, sum(c * u**i for i, c in enumerate(self.prog_poly)))


@dataclass(frozen=True, eq=False)
class ProgrammedTile:
    """A mapping after programming: the conductance each cell actually holds (one simulated chip).

    Attributes
    ----------
    mapping : TileMapping
    params : PhysicsParams
    g_us : ndarray of float64, shape (n_xbars, xbar_rows, xbar_cols)
        Programmed conductance of every cell in µS (before IR drop and read noise, which act at read time).
    stuck : ndarray of int8, same shape
        0 for a working cell, 1 for stuck-at-Gmin (SA0), 2 for stuck-at-Gmax (SA1).
    draws : ndarray of int16, same shape
        Programming draws each working cell took (1 without write-verify; 0 for stuck cells).
    """

    mapping: TileMapping
    params: PhysicsParams
    g_us: np.ndarray
    stuck: np.ndarray
    draws: np.ndarray

    def __repr__(self):
        return (f"ProgrammedTile({self.mapping!r}, cells={self.g_us.size}, stuck={int(np.count_nonzero(self.stuck))}, "
                f"draws={int(self.draws.sum())})")

    def within_tolerance(self) -> np.ndarray:
        """Working cells whose programmed conductance is inside the write-verify band around the target."""
        p, g = self.params, self.mapping.geometry
        band = p.verify_tolerance * (p.g_max_us - p.g_min_us)
        return (self.stuck == 0) & (np.abs(self.g_us - p.target_us(self.mapping.levels, g.cell_bits)) <= band)

    def read_conductance(self) -> np.ndarray:
        """Conductance every cell presents to a read, in µS: :attr:`g_us` after the IR-drop attenuation
        ``G / (1 + G · R_wire · n_seg)`` (:func:`ir_segments`); :attr:`g_us` itself when ``wire_r_ohm`` is 0."""
        p, g = self.params, self.mapping.geometry
        if not p.wire_r_ohm:
            return self.g_us
        return self.g_us / (1.0 + self.g_us * (p.wire_r_ohm * 1e-6) * ir_segments(g.xbar_rows, g.xbar_cols))


def program(mapping: TileMapping, params: PhysicsParams, seed=None) -> ProgrammedTile:
    """Program every cell of ``mapping`` once: stuck-at faults, then programming noise with optional write-verify.

    Parameters
    ----------
    mapping : TileMapping
        Validated here.
    params : PhysicsParams
    seed : int, numpy Generator or None
        Seeds the fault map and the programming draws (``numpy.random.default_rng(seed)``); faults are drawn
        first, from one uniform per cell, so the fault map of a seed does not depend on the noise settings.

    Returns
    -------
    ProgrammedTile
        Write-verify model: draw ``G = max(0, G_target + σ_p · N(0, 1))``; while ``|G − G_target|`` exceeds the
        band and fewer than ``verify_max_iters`` draws were made, draw again (each verify read is ideal). This is
        the iterative program-and-verify loop that aihwkit summarises as a narrower programming distribution
        (``ReRamCMONoiseModel``'s acceptance ranges); here the narrowing follows from σ_p, the band and the
        iteration budget.
    """
    mapping.validate()
    rng = np.random.default_rng(seed)
    p, g = params, mapping.geometry
    target = p.target_us(mapping.levels, g.cell_bits)
    u = rng.random(target.shape)
    stuck = np.where(u < p.sa0_rate, 1, np.where(u < p.sa0_rate + p.sa1_rate, 2, 0)).astype(np.int8)
    sigma = p.prog_sigma_us(target)
    g_us = target.copy()
    draws = np.zeros(target.shape, dtype=np.int16)
    pending = (stuck == 0) & (sigma > 0)
    draws[stuck == 0] = 1
    band = p.verify_tolerance * (p.g_max_us - p.g_min_us)
    for attempt in range(p.verify_max_iters if p.write_verify else 1):
        if not pending.any():
            break
        g_us[pending] = np.maximum(0.0, target[pending] + sigma[pending] * rng.standard_normal(int(pending.sum())))
        draws[pending] = attempt + 1
        pending &= np.abs(g_us - target) > band
    g_us[stuck == 1] = p.g_min_us
    g_us[stuck == 2] = p.g_max_us
    draws[stuck != 0] = 0
    return ProgrammedTile(mapping=mapping, params=p, g_us=g_us, stuck=stuck, draws=draws)


def ir_segments(xbar_rows: int, xbar_cols: int) -> np.ndarray:
    """Wire segments between a cell and its driver plus its ADC, shape (xbar_rows, xbar_cols).

    First-order IR-drop geometry: wordline drivers on the column-0 side, ADCs below the last row, so cell
    ``(r, c)`` is reached through ``c + 1`` wordline segments and ``xbar_rows − r`` bitline segments. The model
    puts that wire resistance in series with the cell only (``G_eff = G / (1 + G · R_wire · n_seg)``) and ignores
    the current the line shares with the other active cells, so it underestimates the drop of a fully active
    crossbar; with OUs of a few rows the sharing term is small.
    """
    return (np.arange(xbar_cols)[None, :] + 1) + (xbar_rows - np.arange(xbar_rows)[:, None])


def _check_x(mapping, x, input_bits, input_signed):
    x = np.asarray(x)
    single = x.ndim == 1
    x = np.atleast_2d(x)
    if x.dtype.kind not in "iu":
        raise ValueError(f"x must be integers, not {x.dtype}")
    x = x.astype(np.int64)
    if x.ndim != 2 or x.shape[1] != mapping.n_inputs:
        raise ValueError(f"x has shape {x.shape}: the mapping expects (K,) or (batch, K) with K = {mapping.n_inputs}")
    lo, hi = (-(1 << (input_bits - 1)), (1 << (input_bits - 1)) - 1) if input_signed else (0, (1 << input_bits) - 1)
    if x.size and (x.min() < lo or x.max() > hi):
        bad = tuple(int(i) for i in np.argwhere((x < lo) | (x > hi))[0])
        raise ValueError(f"x{list(bad)} = {int(x[bad])} does not fit {input_bits}-bit "
                         f"{'signed' if input_signed else 'unsigned'} inputs: allowed {lo} … {hi}")
    return x, single


def analog_mvm(tile: ProgrammedTile, x, *, input_bits: int = 8, input_signed: bool = True, dac_bits: int = 1,
               adc_bits: int | None = None, seed=None) -> np.ndarray:
    """``y ≈ x · W`` through the physics of a programmed tile: planes × scheduled OUs × analog sum × ADC × shift-add.

    Parameters
    ----------
    tile : ProgrammedTile
    x : array_like of int, shape (K,) or (batch, K)
        Inputs, ``input_bits`` wide, two's complement when ``input_signed``; out-of-range values raise.
    input_bits, input_signed, dac_bits
        As in :func:`hw.formats.mapping.input_planes`.
    adc_bits : int or None
        ADC resolution, 1 … 32: a conversion is ``clip(rint(s), 0, 2**adc_bits − 1)`` of the referenced current
        in LSBs (module docstring); ``None`` only clips at 0 (an unbounded ideal ADC).
    seed : int, numpy Generator or None
        Read noise (fresh for every plane, OU, column and input vector).

    Returns
    -------
    ndarray of int64, shape (N,) or (batch, N)
        The digital result: ADC codes shifted and added exactly as :func:`hw.formats.mvm.mvm` does.
    """
    mapping, p = tile.mapping, tile.params
    if adc_bits is not None and (isinstance(adc_bits, bool) or not isinstance(adc_bits, (int, np.integer))
                                 or not 1 <= adc_bits <= 32):
        raise ValueError(f"adc_bits = {adc_bits!r} is out of range: allowed 1 … 32 or None (unbounded)")
    x, single = _check_x(mapping, x, input_bits, input_signed)
    planes = input_planes(input_bits, input_signed, dac_bits)
    rng = np.random.default_rng(seed)
    g = mapping.geometry
    rows, cols = mapping.ou_rows_of(), mapping.ou_cols_of()
    present = (rows < g.xbar_rows)[:, :, None] & (cols < g.xbar_cols)[:, None, :]
    safe_rows, safe_cols = np.minimum(rows, g.xbar_rows - 1), np.minimum(cols, g.xbar_cols - 1)
    g_eff = tile.read_conductance()
    # Conductances under every OU (µS); absent rows/columns carry none.
    g_ou = np.where(present, g_eff[mapping.ou_xbar[:, None, None], safe_rows[:, :, None], safe_cols[:, None, :]], 0.0)
    g_ou_sq = g_ou**2 if p.read_sigma else None
    idx = mapping.ou_inputs
    converted = mapping.ou_col_mask & (cols < g.xbar_cols)
    outputs = mapping.ou_col_output[converted]
    scale = (mapping.ou_col_sign.astype(np.int64) << mapping.ou_col_shift.astype(np.int64))[converted]
    lsb_ua = p.delta_g_us(g.cell_bits) * p.v_step
    top = None if adc_bits is None else float((1 << adc_bits) - 1)
    raw = x & ((1 << input_bits) - 1)
    # Raw input bits on every OU wordline, (n_ous, batch, ou_rows); undriven wordlines hold 0.
    wordline_raw = np.ascontiguousarray(np.where(idx >= 0, raw[:, np.maximum(idx, 0)], 0).transpose(1, 0, 2))
    # Codes of each converted column, weighted by their plane and summed over planes (exact in int64), then
    # scaled and scattered into the outputs once: the same integer sum as shift-adding plane by plane.
    acc = np.zeros((mapping.n_ous, x.shape[0], g.ou_cols), dtype=np.int64)
    for shift, width, negative in planes:
        volts = ((wordline_raw >> shift) & ((1 << width) - 1)) * p.v_step                 # (ous, b, rows)
        current = volts @ g_ou                                                          # µA, (ous, b, cols)
        if p.read_sigma:
            spread = np.sqrt(volts**2 @ g_ou_sq)
            current += p.read_sigma * spread * rng.standard_normal(current.shape)
        if p.subtract_gmin:
            current -= p.g_min_us * volts.sum(axis=2)[:, :, None]
        codes = np.clip(np.rint(current / lsb_ua), 0.0, top).astype(np.int64)
        acc += codes * ((-1 if negative else 1) << shift)
    y = np.zeros((x.shape[0], mapping.n_outputs), dtype=np.int64)
    np.add.at(y, (slice(None), outputs), acc.transpose(1, 0, 2)[:, converted] * scale)
    return y[0] if single else y


def physics_mvm(mapping: TileMapping, x, params: PhysicsParams, *, seed=0, input_bits: int = 8,
                input_signed: bool = True, dac_bits: int = 1, adc_bits: int | None = None) -> np.ndarray:
    """Program ``mapping`` (one chip) and run ``x`` through it: :func:`program` then :func:`analog_mvm`.

    ``seed`` (int) makes both reproducible: it is split into independent programming and read streams.
    """
    program_seed, read_seed = np.random.SeedSequence(seed).spawn(2)
    tile = program(mapping, params, np.random.default_rng(program_seed))
    return analog_mvm(tile, x, input_bits=input_bits, input_signed=input_signed, dac_bits=dac_bits,
                      adc_bits=adc_bits, seed=np.random.default_rng(read_seed))
