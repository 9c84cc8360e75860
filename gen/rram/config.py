"""Parameters of one RRAM compute-in-memory tile: crossbars, cells, OUs, converters, tables, non-idealities.

:class:`RramTileConfig` is the config kind ``"rram"`` (presets in ``gen/configs/rram_*.toml`` say
``kind = "rram"``). Importing this module does not import Amaranth.
"""

from dataclasses import dataclass
from typing import ClassVar

from gen.config import ConfigBase

__all__ = ["RramTileConfig"]

_CELL_BITS = (1, 2, 4)
_DAC_BITS = (1, 2)
_ENCODINGS = ("differential", "offset")


def _bits_for(value: int) -> int:
    """Unsigned bits that hold ``0 … value`` (at least 1)."""
    return max(1, int(value).bit_length())


@dataclass(frozen=True)
class RramTileConfig(ConfigBase):
    """One RRAM tile: ``n_xbars`` crossbars of ``xbar_rows × xbar_cols`` cells, its controller and its tables.

    The tile computes ``y[N] = x[K] · W[K × N]`` for a weight matrix mapped onto its crossbars
    (:class:`hw.formats.mapping.TileMapping`): bit-serial (or 2-bit DAC) input planes × scheduled OUs × ADC ×
    shift-and-add. Every field is validated on construction, in field order; the first violation is reported.

    Parameters
    ----------
    xbar_rows, xbar_cols : int
        Wordlines and bitlines of one crossbar; 2 … 1024.
    n_xbars : int
        Crossbars in the tile; 1 … 64.
    cell_bits : int
        Bits per cell: 1, 2 or 4 (levels ``0 … 2**cell_bits - 1``).
    weight_bits : int
        Weight width (two's complement); 2 … 16. Sets the column slice shifts (``0 … weight_bits - 1``).
    input_bits : int
        Input width; 1 … 16 (2 … 16 when signed).
    input_signed : bool
        Inputs are two's complement (the MSB plane is subtracted) or unsigned.
    dac_bits : int
        Input bits driven onto a wordline per step: 1 (bit-serial) or 2.
    adc_bits : int
        ADC resolution; 1 … 16. Below :attr:`lossless_adc_bits` the ADC clips column sums (by design).
    ou_rows, ou_cols : int
        Wordlines and bitlines of one Operation Unit; 1 … ``xbar_rows`` (at most 64) / 1 … ``xbar_cols`` (at most 64).
    encoding : str
        How the host maps signed weights: ``"differential"`` (G+/G− bitline pairs) or ``"offset"`` (biased
        weights plus a reference bitline). The hardware reads polarity from the column table; this sets the
        default output count and the driver's mapping.
    max_ous : int or None
        Index-table depth: OUs one schedule may hold; 1 … ``n_xbars · row_groups · col_groups``. ``None``: every OU of every crossbar
        (``n_xbars · row_groups · col_groups``), i.e. a dense schedule.
    max_inputs, max_outputs : int or None
        Longest input vector K and output vector N the buffers hold; 1 … 65536. ``None``: ``n_xbars · xbar_rows``
        inputs; ``n_xbars · xbar_cols / columns_per_output`` outputs (a dense mapping's count).
    max_iters : int
        Write-verify: writes per cell before it is logged as faulty; 1 … 255.
    fault_depth : int
        Entries of the fault-log FIFO; 1 … 4096 (further faults are counted, flagged, not stored).
    pulse_error : int
        Crossbar model: a write lands one level off with probability ``pulse_error / 65536``; 0 … 65536.
    read_noise : int
        Crossbar model: largest ``|noise|`` (levels) added to each converted OU column sum; 0 … 255.
    stuck_sa0, stuck_sa1 : float
        Fractions of cells stuck at level 0 and at the top level (drawn from ``fault_seed``, see
        :meth:`stuck_cells`); each 0 … 1, their sum at most 1.
    fault_seed : int
        Seed of the stuck-cell map; 0 … 2**32 - 1.
    seed : int
        Seed of the crossbar model's LFSRs (pulse errors and read noise); 0 … 2**31 - 2.
    counter_bits : int
        Width of the (wrapping) performance counters; 16 … 64.
    crossbar : str
        ``"model"`` (default): the tile contains the behavioral crossbar model (simulation). ``"external"``: the
        tile is the digital part only (controller, tables, fault log, registers) and the crossbar's command
        and response streams are ports (``xbar_cmd``, ``xbar_rsp``), where an analog macro would connect; the
        synthesis reports (``make synth``) use this, since a behavioral model of analog cells is no hardware
        to cost.
    name : str or None
        Verilog top-module name; ``None`` derives one from the parameters, e.g. ``rram_128x128x2_c2_ou9x8_adc5``;
        ``"external"`` appends ``_ctl``.

    Raises
    ------
    ValueError
        If a field has the wrong type, is out of range, or contradicts another (the message names the field, its
        value and what is allowed).
    """

    xbar_rows: int = 128
    xbar_cols: int = 128
    n_xbars: int = 1
    cell_bits: int = 2
    weight_bits: int = 8
    input_bits: int = 8
    input_signed: bool = True
    dac_bits: int = 1
    adc_bits: int = 5
    ou_rows: int = 9
    ou_cols: int = 8
    encoding: str = "differential"
    max_ous: int | None = None
    max_inputs: int | None = None
    max_outputs: int | None = None
    max_iters: int = 4
    fault_depth: int = 16
    pulse_error: int = 0
    read_noise: int = 0
    stuck_sa0: float = 0.0
    stuck_sa1: float = 0.0
    fault_seed: int = 1
    seed: int = 1
    counter_bits: int = 32
    crossbar: str = "model"
    name: str | None = None

    kind: ClassVar[str] = "rram"
    DERIVED: ClassVar[tuple[str, ...]] = (
        "row_groups", "col_groups", "columns_per_output", "ou_table_depth", "input_capacity", "output_capacity",
        "n_planes", "lossless_adc_bits", "adc_clips", "acc_bits", "max_level")

    def __post_init__(self):
        self._check_int("xbar_rows", 2, 1024)
        self._check_int("xbar_cols", 2, 1024)
        self._check_int("n_xbars", 1, 64)
        self._check_choice("cell_bits", _CELL_BITS)
        self._check_int("weight_bits", 2, 16)
        self._check_bool("input_signed")
        self._check_int("input_bits", 2 if self.input_signed else 1, 16,
                        low="2 (signed inputs need a sign bit)" if self.input_signed else None)
        self._check_choice("dac_bits", _DAC_BITS)
        self._check_int("adc_bits", 1, 16)
        self._check_int("ou_rows", 1, min(64, self.xbar_rows), high=f"min(64, xbar_rows = {self.xbar_rows})")
        self._check_int("ou_cols", 1, min(64, self.xbar_cols), high=f"min(64, xbar_cols = {self.xbar_cols})")
        self._check_choice("encoding", _ENCODINGS)
        dense = self.n_xbars * self.row_groups * self.col_groups
        if self.max_ous is not None:
            self._check_int("max_ous", 1, dense, high=f"{dense} (n_xbars·row_groups·col_groups, a dense schedule)")
        for field in ("max_inputs", "max_outputs"):
            if getattr(self, field) is not None:
                self._check_int(field, 1, 65536)
        self._check_int("max_iters", 1, 255)
        self._check_int("fault_depth", 1, 4096)
        self._check_int("pulse_error", 0, 65536)
        self._check_int("read_noise", 0, 255)
        self._check_float("stuck_sa0", 0.0, 1.0)
        self._check_float("stuck_sa1", 0.0, 1.0 - self.stuck_sa0)
        self._check_int("fault_seed", 0, 2**32 - 1)
        self._check_int("seed", 0, 2**31 - 2)
        self._check_int("counter_bits", 16, 64)
        self._check_choice("crossbar", ("model", "external"))
        if self.name is not None:
            self._check_name()

    # ---- derived values -------------------------------------------------------------------------------------

    @property
    def row_groups(self) -> int:
        """OU wordline groups per crossbar: ``ceil(xbar_rows / ou_rows)``."""
        return -(-self.xbar_rows // self.ou_rows)

    @property
    def col_groups(self) -> int:
        """OU bitline groups per crossbar: ``ceil(xbar_cols / ou_cols)``."""
        return -(-self.xbar_cols // self.ou_cols)

    @property
    def columns_per_output(self) -> int:
        """Bitlines one output needs under :attr:`encoding` (``gen.compiler.rram_map.columns_per_output``)."""
        slices = -(-self.weight_bits // self.cell_bits)
        return 2 * slices if self.encoding == "differential" else slices + 1

    @property
    def ou_table_depth(self) -> int:
        """Entries of the OU index table: ``max_ous``, or every OU of the tile when unset."""
        return self.n_xbars * self.row_groups * self.col_groups if self.max_ous is None else self.max_ous

    @property
    def input_capacity(self) -> int:
        """Longest input vector K: ``max_inputs``, or ``n_xbars · xbar_rows`` when unset."""
        return self.n_xbars * self.xbar_rows if self.max_inputs is None else self.max_inputs

    @property
    def output_capacity(self) -> int:
        """Longest output vector N: ``max_outputs``, or ``n_xbars · xbar_cols / columns_per_output`` when unset."""
        if self.max_outputs is not None:
            return self.max_outputs
        return max(1, self.n_xbars * self.xbar_cols // self.columns_per_output)

    @property
    def n_planes(self) -> int:
        """Input planes (DAC steps) per MVM (``hw.formats.mapping.input_planes``)."""
        from hw.formats.mapping import input_planes

        return len(input_planes(self.input_bits, self.input_signed, self.dac_bits))

    @property
    def lossless_adc_bits(self) -> int:
        """ADC bits that never clip: ``ceil(log2(ou_rows · (2**cell_bits - 1) · (2**dac_bits - 1) + 1))``."""
        return (self.ou_rows * ((1 << self.cell_bits) - 1) * ((1 << self.dac_bits) - 1)).bit_length()

    @property
    def adc_clips(self) -> bool:
        """``adc_bits < lossless_adc_bits``: column sums above ``2**adc_bits - 1`` clip (part of the design)."""
        return self.adc_bits < self.lossless_adc_bits

    @property
    def max_level(self) -> int:
        """Highest cell level: ``2**cell_bits - 1``."""
        return (1 << self.cell_bits) - 1

    @property
    def acc_bits(self) -> int:
        """Output accumulator width (two's complement, wraps): holds ``±input_capacity · 2**input_bits ·
        2**weight_bits``, the bound of a dense mapping's partial sums (G+ and G− columns, or biased weights and
        reference, each at most ``K · x_max · (2**weight_bits - 1)``)."""
        return _bits_for(self.input_capacity << (self.input_bits + self.weight_bits)) + 1

    @property
    def geometry(self):
        """The crossbar and OU shape as a :class:`hw.formats.mapping.CrossbarGeometry`."""
        from hw.formats.mapping import CrossbarGeometry

        return CrossbarGeometry(xbar_rows=self.xbar_rows, xbar_cols=self.xbar_cols, ou_rows=self.ou_rows,
                                ou_cols=self.ou_cols, cell_bits=self.cell_bits)

    @property
    def top(self) -> str:
        suffix = "_ctl" if self.crossbar == "external" else ""
        if self.name is not None:
            return self.name + suffix
        return (f"rram_{self.xbar_rows}x{self.xbar_cols}x{self.n_xbars}_c{self.cell_bits}_ou{self.ou_rows}x"
                f"{self.ou_cols}_adc{self.adc_bits}_{'s' if self.input_signed else 'u'}{self.input_bits}"
                f"d{self.dac_bits}{suffix}")

    def stuck_cells(self) -> tuple[tuple[int, int, int, int], ...]:
        """The stuck-at cells, ``(xbar, row, col, level)`` sorted, as ``CrossbarModel(stuck=...)`` takes them: drawn
        by ``hw.formats.faults.fault_map(fault_seed, stuck_sa0, stuck_sa1, …)`` (empty when both rates are 0)."""
        if not (self.stuck_sa0 or self.stuck_sa1):
            return ()
        from hw.formats.faults import fault_map

        return tuple(fault_map(self.fault_seed, self.stuck_sa0, self.stuck_sa1,
                               (self.n_xbars, self.xbar_rows, self.xbar_cols), cell_bits=self.cell_bits))

    def summary(self) -> str:
        lossy = f"clips (lossless {self.lossless_adc_bits})" if self.adc_clips else "lossless"
        return (f"{self.n_xbars}×{self.xbar_rows}x{self.xbar_cols} c{self.cell_bits} OU {self.ou_rows}x{self.ou_cols} "
                f"ADC {self.adc_bits} {lossy}")
