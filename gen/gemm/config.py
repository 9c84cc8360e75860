"""``GemmConfig``: parameters of the sparse GEMM engine (kind ``"gemm"``), see README "GEMM engine"."""

from dataclasses import dataclass
from typing import ClassVar

from hw import checks

from hw.formats.actsparse import ACT_MODES

from gen.config import MAX_K_LIMIT, ArrayConfig, param
from gen.systolic.config import SystolicConfig

__all__ = ["GemmConfig", "DATAFLOWS", "WEIGHT_AXES", "check_config", "check_dims", "check_job"]

DATAFLOWS = ("ws", "os")
WEIGHT_AXES = ("k", "n")
_MAX_DIM = 1 << 16


@dataclass(frozen=True, kw_only=True)
class GemmConfig(ArrayConfig, fields_after="counter_bits"):
    """The GEMM engine: a ``rows × cols`` keep:block array core plus job control, accumulator buffer and
    output stage, computing ``C[M × N] = A[M × K] · W[K × N]`` for any ``1 ≤ M ≤ max_m``, ``1 ≤ K ≤ max_k``,
    ``1 ≤ N ≤ max_n``.

    Parameters
    ----------
    rows, cols, act_bits, act_signed, weight_bits, acc_bits, keep, block, overflow, counter_bits
        As in :class:`gen.systolic.config.SystolicConfig` (same ranges). ``acc_bits`` is also the width of the
        accumulator buffer; with ``overflow = "check"`` it must hold the worst-case sum of ``max_k`` products.
        ``"saturate"`` clamps after each PE row's add and after each K-tile's add into the buffer.
    max_m : int
        Largest M of a job, 1 … 65536; also the accumulator buffer depth (one row of ``cols`` sums per m).
    max_k, max_n : int
        Largest K and N of a job, 1 … 2**20 and 1 … 65536.
    dataflow : str
        The strategy :class:`hw.gemm.engine.GemmEngine` is built with. ``"ws"``: weight-stationary array core
        (:class:`hw.gemm.ws_dataflow.WeightStationary`: weight tiles preloaded into shadow registers, K-tiles summed
        in an accumulator buffer). ``"os"``: output-stationary core (:class:`hw.gemm.os_dataflow.OutputStationary`:
        each ``rows × cols`` tile of C accumulates over the whole K inside the PEs while activations and weights
        stream in together, one K-block per step; no accumulator buffer).
        With ``overflow = "saturate"`` the OS core clamps after every K-block of the whole K (one chain), the WS
        engine also at each K-tile boundary; :func:`sim.gemm.golden.gemm_engine` follows ``dataflow``.
    relu : bool
        Fused ReLU on the final sums (before requantization).
    pe_pipeline : int
        Pipeline registers in every PE, 0 … 4, as in :class:`gen.systolic.config.SystolicConfig` (each adds a cycle
        to :attr:`latency`); WS: :class:`hw.systolic.pe.SparsePE`, OS: :class:`hw.gemm.os_pe.SparseOSPE` (the same
        stages in front of the output-stationary accumulator); with ``act_keep > 0`` the same stages in
        :class:`hw.gemm.act_pe.ActPE` (weights along K) or :class:`hw.gemm.outer_pe.OuterPE` (weights along N).
    out_bits : int or None
        ``None``: results are the ``acc_bits`` sums. Otherwise 2 … ``acc_bits``: each job's descriptor carries a
        right shift ``s`` (0 … ``acc_bits − 1``) and results are ``clamp((x + 2**(s−1)) >> s)`` (round half up,
        no rounding term for ``s = 0``) saturated to signed ``out_bits``.
    act_keep : int
        Dynamic activation sparsity (docs/gemm-actsparse.md): 0 (default) off; otherwise 1 … ``keep``, a divisor of
        ``keep`` (weights along N: 1 … ``block``), WS only, ``overflow`` not
        ``"saturate"``, ``block ≥ 2``. With weights along K every PE then covers
        ``group = keep / act_keep`` K-blocks (``k = rows·group·block``) and its ``keep`` multipliers take
        ``act_keep`` (value, position) activation slots of each of its blocks, looking the weight up by position.
    act_mode : str
        ``"adbb"``: activations pruned on the fly to the ``act_keep`` of largest magnitude per block (lossy, one step
        per row); ``"lossless"``: denser blocks take more steps (:mod:`hw.formats.actsparse`).
    weight_axis : str
        The axis of the weights' ``keep:block`` sparsity. ``"k"`` (default): along K, as above. ``"n"`` (needs
        ``act_keep > 0``): along the output axis N (:mod:`hw.formats.nm_n`): every PE
        (:class:`hw.gemm.outer_pe.OuterPE`) covers one K-block × one N-block with ``act_keep·keep`` multipliers,
        ``act_keep`` 1 … ``block`` (no divisor rule); the N-tile is ``cols·block`` columns wide
        (:attr:`n_tile`) and every step is ``block²/(keep·act_keep)`` times the dense multiplier-cycles.
    name : str or None
        Verilog top-module name; ``None`` derives one from the parameters (see :attr:`top`).

    Raises
    ------
    TypeError
        If a field has the wrong type (numpy scalars count as their Python types and are stored as them).
    ValueError
        If a field is invalid; the message names ``GemmConfig.<field>``, the value and what is allowed.
    """

    max_m: int = param(64, 1, _MAX_DIM)
    max_k: int = param(64, 1, MAX_K_LIMIT)
    max_n: int = param(64, 1, _MAX_DIM)
    dataflow: str = param("ws", choices=DATAFLOWS)
    relu: bool = param(False)
    out_bits: int | None = param(None, 2, "acc_bits")
    act_keep: int = param(0, 0, "block")
    act_mode: str = param("adbb", choices=ACT_MODES)
    weight_axis: str = param("k", choices=WEIGHT_AXES)

    kind: ClassVar[str] = "gemm"
    DERIVED: ClassVar[tuple[str, ...]] = ("k", "sparse", "index_bits", "multipliers", "weight_entry_bits",
                                          "acc_depth", "result_bits", "latency", "load_beats", "group", "n_tile")
    FIELD_RULES: ClassVar[dict[str, str]] = {
        "act_keep": ('0 (off), or (weight_axis = "k") a divisor of keep; > 0 needs dataflow = "ws", '
                     'overflow other than "saturate" and block ≥ 2'),
        "weight_axis": '"n" needs act_keep > 0'}

    def __post_init__(self):
        super().__post_init__()
        if self.weight_axis == "n" and not self.act_keep:
            self._fail("weight_axis", "needs act_keep > 0 (an activation-sparse engine)", '"k"')
        if self.act_keep:
            if self.weight_axis == "k" and self.keep % self.act_keep:
                self._fail("act_keep", f"does not divide keep = {self.keep}", "0 or a divisor of keep")
            for bad, why in ((self.dataflow != "ws", 'needs dataflow = "ws"'),
                             (self.overflow == "saturate", 'is not allowed with overflow = "saturate"'),
                             (self.block < 2, "needs block ≥ 2")):
                if bad:
                    self._fail("act_keep", why, "0 (off)")
        if self.overflow == "check":
            # weights along N: a column gets one product per kept activation (act_keep per K-block; lossless: all)
            self._check_accumulator(self.max_k, None if self.weight_axis == "k" else
                                    self.act_keep if self.act_mode == "adbb" else self.block)

    @property
    def systolic(self) -> SystolicConfig:
        """The equivalent :class:`SystolicConfig` of the array core (beat formats of activations and weights):
        the shared array fields but ``name``, ``overflow`` as the core's adders run it, ``max_k`` at least ``k``."""
        return SystolicConfig(**self.array_params(), max_k=max(self.max_k, self.k))

    @property
    def group(self) -> int:
        """K-blocks per PE: ``keep / act_keep`` with activation sparsity along K, else 1."""
        return self.keep // self.act_keep if self.act_keep and self.weight_axis == "k" else 1

    @property
    def n_tile(self) -> int:
        """Output columns of one tile (and of a result beat): ``cols``, or ``cols·block`` with ``weight_axis =
        "n"`` (a PE column covers an N-block)."""
        return self.cols * self.block if self.weight_axis == "n" else self.cols

    @property
    def multipliers(self) -> int:
        """Number of multipliers: ``rows·cols·keep``, or ``rows·cols·keep·act_keep`` with ``weight_axis = "n"``."""
        return self.rows * self.cols * self.keep * (self.act_keep if self.weight_axis == "n" else 1)

    @property
    def k(self) -> int:
        """Reduction length of one WS tile: ``rows · group · block``."""
        return self.rows * self.group * self.block

    @property
    def acc_depth(self) -> int:
        """Accumulator buffer rows: ``max_m`` for WS (one N-tile of ``cols`` sums per row of A is live at a time);
        0 for OS (the sums stay in the PEs)."""
        return self.max_m if self.dataflow == "ws" else 0

    @property
    def result_bits(self) -> int:
        """Width of one result element: ``out_bits``, or ``acc_bits`` without requantization."""
        return self.acc_bits if self.out_bits is None else self.out_bits

    @property
    def shift_bits(self) -> int:
        """Width of the descriptor's shift field (0 without requantization)."""
        return 0 if self.out_bits is None else (self.acc_bits - 1).bit_length()

    @property
    def latency(self) -> int:
        """WS: cycles from an activation row's transfer to its result's first possible transfer,
        ``rows + cols + pe_pipeline``. OS: cycles from a tile's last step to its last result row's first possible
        transfer, ``rows + cols + pe_pipeline``."""
        return self.rows + self.cols + self.pe_pipeline

    @property
    def load_beats(self) -> int:
        """WS: weight beats per tile, ``rows``. OS: 0 (weights stream with the activations, nothing is preloaded)."""
        return self.rows if self.dataflow == "ws" else 0

    @property
    def top(self) -> str:
        if self.name is not None:
            return self.name
        suffix = {"check": "", "wrap": "_wrap", "saturate": "_sat"}[self.overflow]
        post = ("_relu" if self.relu else "") + (f"_o{self.out_bits}" if self.out_bits is not None else "")
        return (f"gemm_{self.dataflow}_{self.rows}x{self.cols}_{self.keep}of{self.block}_"
                f"{'s' if self.act_signed else 'u'}{self.act_bits}w{self.weight_bits}acc{self.acc_bits}"
                f"_m{self.max_m}k{self.max_k}n{self.max_n}{post}{suffix}"
                + (f"_p{self.pe_pipeline}" if self.pe_pipeline else "")
                + (f"_a{self.act_keep}{'l' if self.act_mode == 'lossless' else ''}" if self.act_keep else "")
                + ("_wn" if self.weight_axis == "n" else ""))

    def summary(self) -> str:
        return (f"{self.rows}x{self.cols}  {self.keep}:{self.block}  "
                f"{'signed' if self.act_signed else 'unsigned':<8}  {self.dataflow}  M,K,N <= "
                f"{self.max_m},{self.max_k},{self.max_n}")


# What a job must satisfy on an engine of a config: one check shared by the golden model, the host driver and
# the cycle model (the engine rejects a descriptor that fails check_dims).
_JOB_FIELDS = ("rows", "cols", "keep", "block", "act_bits", "act_signed", "weight_bits", "acc_bits", "overflow", "relu",
           "out_bits", "max_m", "max_k", "max_n")


def check_config(cfg):
    """``cfg`` must be a :class:`gen.gemm.config.GemmConfig` (or an object with its fields); returns it."""
    return checks.check_attrs("cfg", cfg, _JOB_FIELDS, "a GemmConfig (or an object with its fields)")


def check_dims(cfg, m, k, n, shift=0):
    """The checks the engine applies to a descriptor: ``1 ≤ M, K, N ≤ max_m, max_k, max_n`` and a shift the output
    stage takes. Returns ``(M, K, N, shift)`` as ints; ``TypeError``/``ValueError`` naming the first bad one."""
    check_config(cfg)
    top = getattr(cfg, "top", "the engine")
    dims = []
    for name, value, limit in (("M", m, cfg.max_m), ("K", k, cfg.max_k), ("N", n, cfg.max_n)):
        value = checks.check_int(name, value, allowed=f"1 … {limit} (max_{name.lower()})")
        if not 1 <= value <= limit:
            checks.fail(name, value, f"is out of range for {top}", f"1 … {limit} (max_{name.lower()})")
        dims.append(value)
    shift = checks.check_int("shift", shift)
    if cfg.out_bits is None and shift != 0:
        raise ValueError(f"shift = {shift}: {top} has no requantization (out_bits = None): allowed 0")
    if cfg.out_bits is not None and not 0 <= shift < cfg.acc_bits:
        checks.fail("shift", shift, "is out of range", f"0 … {cfg.acc_bits - 1} (acc_bits − 1)")
    return (*dims, shift)


def check_job(cfg, A, W, shift=0):
    """Everything the engine and its host require of one job ``C = post(A · W)``, checked in one place (the golden
    model, the driver and the cycle model share it): A and W 2-D integer arrays in the ``act_bits``/``weight_bits``
    ranges (the first bad element named by position), A's columns = W's rows, then :func:`check_dims`.

    Returns ``(A, W, shift)`` (int64 arrays, int). W's keep:block sparsity is checked by :func:`padded_weights`.
    """
    check_config(cfg)
    A = checks.check_int_array("A", A, ndim=2, bits=cfg.act_bits, signed=cfg.act_signed, whole_floats=False)
    W = checks.check_int_array("W", W, ndim=2, bits=cfg.weight_bits, signed=True, whole_floats=False)
    (M, K), (K2, N) = A.shape, W.shape
    if K != K2:
        checks.fail("W", checks.Text(f"array of shape {W.shape}"), f"has {K2} rows",
                    f"{K} (A is {M}×{K}: A's columns must equal W's rows)")
    shift = check_dims(cfg, M, K, N, shift)[3]
    return A, W, shift
