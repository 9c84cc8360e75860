"""Parameters of one RRAM compute-in-memory tile: crossbars, cells, OUs, converters, tables, non-idealities.

:class:`RramTileConfig` is the config kind ``"rram"`` (presets in ``gen/configs/rram_*.toml`` say
``kind = "rram"``). Importing this module does not import Amaranth.
"""

from dataclasses import dataclass
from typing import ClassVar

from hw.formats import mvm
from hw.formats.mapping import CELL_BITS, ENCODINGS, CrossbarGeometry, CrossbarShape, input_planes

from gen.compiler import rram_map
from gen.config import ConfigBase, param

__all__ = ["RramTileConfig"]

_DAC_BITS = (1, 2)
_CROSSBARS = ("model", "external")


def _bits_for(value: int) -> int:
    """Unsigned bits that hold ``0 … value`` (at least 1)."""
    return max(1, int(value).bit_length())


@dataclass(frozen=True, kw_only=True)
class RramTileConfig(ConfigBase, CrossbarShape):
    """One RRAM tile: ``n_xbars`` crossbars of ``xbar_rows × xbar_cols`` cells, its controller and its tables.

    The tile computes ``y[N] = x[K] · W[K × N]`` for a weight matrix mapped onto its crossbars
    (:class:`hw.formats.mapping.TileMapping`): bit-serial (or 2-bit DAC) input planes × scheduled OUs × ADC ×
    shift-and-add. Every field is validated on construction, in field order (``max_ous`` after the fields its
    range names), then the rules between fields; the first violation is reported.

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
    adcs_per_xbar : int or None
        ADCs each crossbar shares among its OU's columns; 1 … ``ou_cols``. An OU activation converts its columns
        ``adcs_per_xbar`` per cycle. ``None``: ``ou_cols`` (one ADC per OU column).
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
    TypeError
        If a field has the wrong type (numpy scalars count as their Python types and are stored as them).
    ValueError
        If a field is out of range or contradicts another (the message names the field, its value and what is
        allowed).
    """

    xbar_rows: int = param(128, 2, 1024)
    xbar_cols: int = param(128, 2, 1024)
    n_xbars: int = param(1, 1, 64)
    cell_bits: int = param(2, choices=CELL_BITS)
    weight_bits: int = param(8, 2, 16)
    input_bits: int = param(8, 1, 16)
    input_signed: bool = param(True)
    dac_bits: int = param(1, choices=_DAC_BITS)
    adc_bits: int = param(5, 1, 16)
    ou_rows: int = param(9, 1, "min(64, xbar_rows)")
    ou_cols: int = param(8, 1, "min(64, xbar_cols)")
    adcs_per_xbar: int | None = param(None, 1, "ou_cols")
    encoding: str = param("differential", choices=ENCODINGS)
    max_ous: int | None = param(None, 1, "n_xbars·row_groups·col_groups")
    max_inputs: int | None = param(None, 1, 65536)
    max_outputs: int | None = param(None, 1, 65536)
    max_iters: int = param(4, 1, 255)
    fault_depth: int = param(16, 1, 4096)
    pulse_error: int = param(0, 0, 65536)
    read_noise: int = param(0, 0, 255)
    stuck_sa0: float = param(0.0, 0.0, 1.0)
    stuck_sa1: float = param(0.0, 0.0, "1.0 - stuck_sa0")
    fault_seed: int = param(1, 0, 2**32 - 1)
    seed: int = param(1, 0, 2**31 - 2)
    counter_bits: int = param(32, 16, 64)
    crossbar: str = param("model", choices=_CROSSBARS)
    name: str | None = param(None, identifier=True)

    kind: ClassVar[str] = "rram"
    DERIVED: ClassVar[tuple[str, ...]] = (
        "row_groups", "col_groups", "columns_per_output", "adcs", "ou_table_depth", "lane_depth", "input_capacity", "output_capacity",
        "n_planes", "lossless_adc_bits", "adc_clips", "acc_bits", "max_level")
    FIELD_RULES: ClassVar[dict[str, str]] = {"input_bits": "2 … 16 when input_signed"}

    def __post_init__(self):
        super().__post_init__()
        if self.input_signed and self.input_bits < 2:
            self._fail("input_bits", "is out of range", "2 (signed inputs need a sign bit) … 16")

    # ---- derived values -------------------------------------------------------------------------------------

    @property
    def columns_per_output(self) -> int:
        """Bitlines one output needs under :attr:`encoding` (:func:`gen.compiler.rram_map.columns_per_output`)."""
        return rram_map.columns_per_output(weight_bits=self.weight_bits, cell_bits=self.cell_bits, encoding=self.encoding)

    @property
    def adcs(self) -> int:
        """ADCs per crossbar: ``adcs_per_xbar``, or ``ou_cols`` when unset."""
        return self.ou_cols if self.adcs_per_xbar is None else self.adcs_per_xbar

    @property
    def lane_depth(self) -> int:
        """Entries of one crossbar's OU queue: ``min(ou_table_depth, row_groups·col_groups)``."""
        return min(self.ou_table_depth, self.row_groups * self.col_groups)

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
        return len(input_planes(self.input_bits, self.input_signed, self.dac_bits))

    @property
    def lossless_adc_bits(self) -> int:
        """ADC bits that never clip (:func:`hw.formats.mvm.lossless_adc_bits`)."""
        return mvm.lossless_adc_bits(self.ou_rows, self.cell_bits, self.dac_bits)

    @property
    def adc_clips(self) -> bool:
        """``adc_bits < lossless_adc_bits``: column sums above ``2**adc_bits - 1`` clip (part of the design)."""
        return self.adc_bits < self.lossless_adc_bits

    @property
    def acc_bits(self) -> int:
        """Output accumulator width (two's complement, wraps): holds ``±input_capacity · 2**input_bits ·
        2**weight_bits``, the bound of a dense mapping's partial sums (G+ and G− columns, or biased weights and
        reference, each at most ``K · x_max · (2**weight_bits - 1)``)."""
        return _bits_for(self.input_capacity << (self.input_bits + self.weight_bits)) + 1

    @property
    def geometry(self) -> CrossbarGeometry:
        """The crossbar and OU shape as a :class:`hw.formats.mapping.CrossbarGeometry`."""
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
