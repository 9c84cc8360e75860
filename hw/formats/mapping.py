"""The one definition of what a mapped RRAM tile holds: cell images, OU schedule, input index and per-OU routing.

Every mapping strategy of the compiler (``gen/compiler/rram_map.py``) emits a :class:`TileMapping`; the golden
MVM (``hw/formats/mvm.py``) evaluates one; the tile controller's driver loads one into the hardware tables.
Pure numpy: importing this module does not import Amaranth.

Semantics (what the controller computes for an input vector ``x[K]``; see :func:`input_planes`)::

    for each input plane (shift p, width w, negative?) of x, LSB plane first:
        for each scheduled OU o, in schedule order:
            drive wordline r of the OU with chunk_p(x[ou_inputs[o, r]]), or 0 when ou_inputs[o, r] == -1
            for each column c of the OU's bitline group with ou_col_mask[o, c]:
                s = sum_r drive[r] * levels[xbar, row, col]          # column current, in level units
                v = ADC(s)                                           # clip/quantize (lossless: v = s)
                y[ou_col_output[o, c]] += (-1 if negative else 1) * 2**p * ou_col_sign[o, c]
                                          * 2**ou_col_shift[o, c] * v

Mapping format v2: the routing (output, slice shift, sign) belongs to each OU column, not to the physical
bitline, so one bitline can serve different outputs in different row groups (a compacted mapping's shared slots).
A mapping placed per bitline is built with :meth:`TileMapping.from_column_tables`.

OU ``o`` covers wordlines ``ou_row_group[o]·ou_rows …`` and bitlines ``ou_col_group[o]·ou_cols …`` of crossbar
``ou_xbar[o]``; a group at the crossbar's edge may be partial (its missing rows/columns are never driven or
converted). Empty OUs are simply absent from the schedule.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hw.checks import check_choice, check_int, fail

__all__ = ["CrossbarGeometry", "CrossbarShape", "TileMapping", "input_planes", "ou_groups", "max_level", "CELL_BITS",
           "ENCODINGS", "accumulator_banks", "conversion_cycles"]

CELL_BITS = (1, 2, 4)
"""Bits per cell a crossbar supports."""
ENCODINGS = ("differential", "offset")
"""How signed weights map onto non-negative cells: G+/G− bitline pairs, or a bias plus a reference bitline."""


def ou_groups(lines: int, ou_lines: int) -> int:
    """OU groups along one crossbar dimension: ``ceil(lines / ou_lines)`` (the last group may be partial)."""
    return -(-lines // ou_lines)


def accumulator_banks(adcs: int) -> int:
    """Accumulator banks of one crossbar lane of the RRAM tile: the least power of two ``>= adcs``. Output j lives
    in bank ``j mod banks``; one conversion cycle adds to one output per bank."""
    return 1 << max(0, int(adcs) - 1).bit_length()


def conversion_cycles(mask, outputs, adcs: int) -> int:
    """Conversion cycles of one OU activation on the RRAM tile: its converted columns, in column order, form groups
    of ``adcs`` (one conversion each); a group takes as many cycles as the most distinct outputs it routes to in one
    accumulator bank (:func:`accumulator_banks`; at least 1); an OU converting nothing takes 1 cycle (its read)."""
    mask = np.asarray(mask, dtype=bool)
    routed = np.asarray(outputs, dtype=np.int64)[mask]
    if not routed.size:
        return 1
    banks = accumulator_banks(adcs)
    total = 0
    for start in range(0, routed.size, adcs):
        group = np.unique(routed[start:start + adcs])
        total += int(np.bincount(group % banks, minlength=banks).max())
    return total


def max_level(cell_bits: int) -> int:
    """Highest conductance level of a ``cell_bits`` cell: ``2**cell_bits - 1``."""
    return (1 << cell_bits) - 1


class CrossbarShape:
    """The values every holder of a crossbar shape derives the same way: a mixin for classes with ``xbar_rows``,
    ``xbar_cols``, ``ou_rows``, ``ou_cols`` and ``cell_bits`` (the geometry, the crossbar model and its mirror,
    the tile's config)."""

    @property
    def max_level(self) -> int:
        """Highest conductance level: ``2**cell_bits - 1``."""
        return max_level(self.cell_bits)

    @property
    def row_groups(self) -> int:
        """OU wordline groups per crossbar: ``ceil(xbar_rows / ou_rows)`` (the last may be partial)."""
        return ou_groups(self.xbar_rows, self.ou_rows)

    @property
    def col_groups(self) -> int:
        """OU bitline groups per crossbar: ``ceil(xbar_cols / ou_cols)`` (the last may be partial)."""
        return ou_groups(self.xbar_cols, self.ou_cols)


@dataclass(frozen=True)
class CrossbarGeometry(CrossbarShape):
    """Crossbar and Operation-Unit shape, and the bits each cell stores.

    Parameters
    ----------
    xbar_rows, xbar_cols : int
        Wordlines and bitlines of one crossbar; 1 … 4096.
    ou_rows, ou_cols : int
        Wordlines and bitlines activated together (one OU); 1 … ``xbar_rows`` / ``xbar_cols``.
    cell_bits : int
        Bits per cell (1, 2 or 4): a cell holds a conductance level ``0 … 2**cell_bits - 1``.
    """

    xbar_rows: int = 128
    xbar_cols: int = 128
    ou_rows: int = 9
    ou_cols: int = 8
    cell_bits: int = 2

    def __post_init__(self):
        # Stored as plain ints, so a geometry built from numpy scalars compares and hashes like any other.
        checked = {"xbar_rows": check_int("CrossbarGeometry.xbar_rows", self.xbar_rows, 1, 4096),
                   "xbar_cols": check_int("CrossbarGeometry.xbar_cols", self.xbar_cols, 1, 4096)}
        checked["ou_rows"] = check_int("CrossbarGeometry.ou_rows", self.ou_rows, 1, checked["xbar_rows"])
        checked["ou_cols"] = check_int("CrossbarGeometry.ou_cols", self.ou_cols, 1, checked["xbar_cols"])
        checked["cell_bits"] = check_choice("CrossbarGeometry.cell_bits", self.cell_bits, CELL_BITS)
        for name, value in checked.items():
            object.__setattr__(self, name, value)


def input_planes(input_bits: int, input_signed: bool, dac_bits: int = 1) -> list[tuple[int, int, bool]]:
    """The DAC steps an input goes through, LSB first, as ``(shift, width, negative)``.

    The input's raw bits ``u = x mod 2**input_bits`` are cut into chunks of ``dac_bits`` from bit 0 (the last
    chunk may be narrower); a step drives ``(u >> shift) & (2**width - 1)`` and its column sums count
    ``2**shift``. For signed (two's complement) inputs the MSB is its own 1-bit step that counts ``-2**(input_bits-1)``
    (``negative``), so every driven value is non-negative, as a DAC requires.
    """
    input_bits = check_int("input_bits", input_bits, 1, 32)
    dac_bits = check_int("dac_bits", dac_bits, 1, 8)
    magnitude_bits = input_bits - 1 if input_signed else input_bits
    planes = [(shift, min(dac_bits, magnitude_bits - shift), False) for shift in range(0, magnitude_bits, dac_bits)]
    if input_signed:
        planes.append((input_bits - 1, 1, True))
    return planes


@dataclass(frozen=True, eq=False)
class TileMapping:
    """A weight matrix ``W[K × N]`` mapped onto crossbars: what to program and how to run it.

    Attributes
    ----------
    geometry : CrossbarGeometry
    n_inputs, n_outputs : int
        ``K`` (length of the input vector) and ``N`` (length of the output vector).
    levels : ndarray of uint8, shape (n_xbars, xbar_rows, xbar_cols)
        Target conductance level of every cell (the weight image the controller programs); unused cells are 0.
    ou_xbar, ou_row_group, ou_col_group : ndarray of int32, shape (n_ous,)
        The OU schedule, in execution order: crossbar, wordline group and bitline group of each OU.
    ou_inputs : ndarray of int32, shape (n_ous, ou_rows)
        Input index: the logical input driving each wordline of the OU, or -1 for a wordline left undriven.
    ou_col_mask : ndarray of bool, shape (n_ous, ou_cols)
        The OU's bitlines that are converted (ADC) and accumulated; the others are skipped.
    ou_col_output : ndarray of int32, shape (n_ous, ou_cols)
        Routing: the output each OU column accumulates into; ``0 … N-1`` where converted, -1 (by convention) where
        not.
    ou_col_shift : ndarray of uint8, shape (n_ous, ou_cols)
        Significance of the column's slice in this OU: its converted value counts ``2**ou_col_shift``.
    ou_col_sign : ndarray of int8, shape (n_ous, ou_cols)
        Polarity, +1 or -1 (G− columns of a differential pair and offset reference columns are -1).
    info : dict
        Free-form description from the strategy that made it (name, weight encoding, …); not used to compute.
    """

    geometry: CrossbarGeometry
    n_inputs: int
    n_outputs: int
    levels: np.ndarray
    ou_xbar: np.ndarray
    ou_row_group: np.ndarray
    ou_col_group: np.ndarray
    ou_inputs: np.ndarray
    ou_col_mask: np.ndarray
    ou_col_output: np.ndarray
    ou_col_shift: np.ndarray
    ou_col_sign: np.ndarray
    info: dict = field(default_factory=dict)

    @classmethod
    def from_column_tables(cls, *, geometry, n_inputs, n_outputs, levels, ou_xbar, ou_row_group, ou_col_group,
                           ou_inputs, ou_col_mask, col_output, col_shift, col_sign, info=None) -> "TileMapping":
        """A mapping whose routing is per physical bitline (format v1's column table ``col_output`` / ``col_shift``
        / ``col_sign``, each of shape ``(n_xbars, xbar_cols)``): every OU column takes its bitline's entry;
        unconverted columns get output -1, shift 0, sign +1. Not validated (call :meth:`validate`)."""
        g = geometry
        ou_xbar, ou_col_group = np.asarray(ou_xbar), np.asarray(ou_col_group)
        mask = np.asarray(ou_col_mask, dtype=bool)
        cols = ou_col_group[:, None] * g.ou_cols + np.arange(g.ou_cols)
        present = mask & (cols < g.xbar_cols)
        safe = (ou_xbar[:, None].clip(0, max(0, np.asarray(col_output).shape[0] - 1)),
                np.minimum(cols, g.xbar_cols - 1))
        col_output, col_shift, col_sign = (np.asarray(a) for a in (col_output, col_shift, col_sign))
        if ou_xbar.size and col_output.shape[0]:
            out = np.where(present, col_output[safe], -1).astype(np.int32)
            shift = np.where(present, col_shift[safe], 0).astype(np.uint8)
            sign = np.where(present, col_sign[safe], 1).astype(np.int8)
        else:
            out = np.full(mask.shape, -1, dtype=np.int32)
            shift, sign = np.zeros(mask.shape, dtype=np.uint8), np.ones(mask.shape, dtype=np.int8)
        return cls(geometry=g, n_inputs=n_inputs, n_outputs=n_outputs, levels=levels, ou_xbar=ou_xbar,
                   ou_row_group=ou_row_group, ou_col_group=ou_col_group, ou_inputs=ou_inputs, ou_col_mask=mask,
                   ou_col_output=out, ou_col_shift=shift, ou_col_sign=sign, info=dict(info or {}))

    def converted_per_ou(self) -> np.ndarray:
        """Converted (masked, present) columns of every OU, shape (n_ous,)."""
        return (self.ou_col_mask & (self.ou_cols_of() < self.geometry.xbar_cols)).sum(axis=1)

    def shared_bitlines(self) -> int:
        """Bitlines that serve more than one output (in different OUs of this schedule): what v2 routing allows."""
        g = self.geometry
        cols = self.ou_cols_of()
        conv = self.ou_col_mask & (cols < g.xbar_cols)
        if not conv.any():
            return 0
        keys = np.stack([np.broadcast_to(self.ou_xbar[:, None], cols.shape)[conv], cols[conv],
                         self.ou_col_output[conv]], axis=1)
        pairs = np.unique(keys, axis=0)
        _, counts = np.unique(pairs[:, :2], axis=0, return_counts=True)
        return int((counts > 1).sum())

    def __repr__(self):
        # a summary: the cell image alone is n_xbars · xbar_rows · xbar_cols levels
        g = self.geometry
        strategy = f", strategy={self.info['strategy']!r}" if isinstance(self.info, dict) and "strategy" in self.info \
            else ""
        return (f"TileMapping(K={self.n_inputs}, N={self.n_outputs}, n_xbars={self.n_xbars}, n_ous={self.n_ous}, "
                f"xbar={g.xbar_rows}x{g.xbar_cols}, ou={g.ou_rows}x{g.ou_cols}, cell_bits={g.cell_bits}{strategy})")

    @property
    def n_xbars(self) -> int:
        return self.levels.shape[0]

    @property
    def n_ous(self) -> int:
        return self.ou_xbar.shape[0]

    def ou_rows_of(self) -> np.ndarray:
        """Physical wordline of every OU row, shape (n_ous, ou_rows); ``xbar_rows`` or more means 'absent'."""
        return self.ou_row_group[:, None] * self.geometry.ou_rows + np.arange(self.geometry.ou_rows)

    def ou_cols_of(self) -> np.ndarray:
        """Physical bitline of every OU column, shape (n_ous, ou_cols); ``xbar_cols`` or more means 'absent'."""
        return self.ou_col_group[:, None] * self.geometry.ou_cols + np.arange(self.geometry.ou_cols)

    def ou_activations(self, n_planes: int) -> int:
        """OU activations per input vector: scheduled OUs × input planes."""
        return self.n_ous * n_planes

    def adc_conversions(self, n_planes: int) -> int:
        """ADC conversions per input vector: converted OU columns × input planes."""
        return int(self.ou_col_mask.sum()) * n_planes

    def cells_used(self) -> int:
        """Cells that belong to a used bitline and a wordline some OU drives (the programmed footprint)."""
        used = np.zeros(self.levels.shape, dtype=bool)
        rows, cols = self.ou_rows_of(), self.ou_cols_of()
        g = self.geometry
        for o in range(self.n_ous):
            r = rows[o][(rows[o] < g.xbar_rows) & (self.ou_inputs[o] >= 0)]
            c = cols[o][(cols[o] < g.xbar_cols) & self.ou_col_mask[o]]
            used[self.ou_xbar[o], r[:, None], c[None, :]] = True
        return int(used.sum())

    def validate(self) -> "TileMapping":
        """Check shapes, dtypes and every table entry; returns ``self``.

        Raises
        ------
        ValueError
            Naming the array and the position of the first bad entry: a level above ``max_level``, an OU outside
            the crossbars, a duplicate OU, an input index outside ``-1 … K-1`` or on an absent wordline, a
            converted column that is absent or routed to -1, a routing output outside ``-1 … N-1``, a sign not
            ±1.
        """
        g = self.geometry
        if not isinstance(g, CrossbarGeometry):
            fail("TileMapping.geometry", g, f"is a {type(g).__name__}, not a CrossbarGeometry", "a CrossbarGeometry",
                 exc=TypeError)
        check_int("TileMapping.n_inputs", self.n_inputs, 0, 2**31 - 1)
        check_int("TileMapping.n_outputs", self.n_outputs, 0, 2**31 - 1)
        n_x, n_o = self.n_xbars, self.n_ous
        shapes = {"levels": (n_x, g.xbar_rows, g.xbar_cols), "ou_xbar": (n_o,), "ou_row_group": (n_o,),
                  "ou_col_group": (n_o,), "ou_inputs": (n_o, g.ou_rows), "ou_col_mask": (n_o, g.ou_cols),
                  "ou_col_output": (n_o, g.ou_cols), "ou_col_shift": (n_o, g.ou_cols),
                  "ou_col_sign": (n_o, g.ou_cols)}
        for name, shape in shapes.items():
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.shape != shape:
                got = array.shape if isinstance(array, np.ndarray) else type(array).__name__
                raise ValueError(f"TileMapping.{name} has shape {got}: expected {shape}")
            kind = "b" if name == "ou_col_mask" else "iu"
            if array.dtype.kind not in kind:
                raise ValueError(f"TileMapping.{name} has dtype {array.dtype}: expected "
                                 f"{'bool' if kind == 'b' else 'an integer dtype'}")

        def first_bad(name, bad):
            if bad.any():
                position = tuple(int(i) for i in np.argwhere(bad)[0])
                value = getattr(self, name)[position].item()
                return f"TileMapping.{name}[{', '.join(map(str, position))}] = {value!r}"
            return None

        checks = [
            ("levels", (self.levels < 0) | (self.levels > g.max_level), f"allowed 0 … {g.max_level} (cell_bits = {g.cell_bits})"),
            ("ou_xbar", (self.ou_xbar < 0) | (self.ou_xbar >= n_x), f"allowed 0 … {n_x - 1} (crossbars)"),
            ("ou_row_group", (self.ou_row_group < 0) | (self.ou_row_group >= g.row_groups),
             f"allowed 0 … {g.row_groups - 1} (wordline groups)"),
            ("ou_col_group", (self.ou_col_group < 0) | (self.ou_col_group >= g.col_groups),
             f"allowed 0 … {g.col_groups - 1} (bitline groups)"),
            ("ou_inputs", (self.ou_inputs < -1) | (self.ou_inputs >= self.n_inputs),
             f"allowed -1 … {self.n_inputs - 1} (inputs)"),
            ("ou_inputs", (self.ou_inputs >= 0) & (self.ou_rows_of() >= g.xbar_rows),
             f"drives a wordline beyond the crossbar's {g.xbar_rows} rows: allowed -1 there"),
            ("ou_col_output", (self.ou_col_output < -1) | (self.ou_col_output >= self.n_outputs),
             f"allowed -1 … {self.n_outputs - 1} (outputs)"),
            ("ou_col_shift", (self.ou_col_shift < 0) | (self.ou_col_shift > 62), "allowed 0 … 62"),
            ("ou_col_sign", (self.ou_col_sign != 1) & (self.ou_col_sign != -1), "allowed -1 or +1"),
        ]
        for name, bad, allowed in checks:
            where = first_bad(name, bad)
            if where:
                raise ValueError(f"{where} is invalid: {allowed}")
        if n_o:
            cols = self.ou_cols_of()
            absent = cols >= g.xbar_cols
            where = first_bad("ou_col_mask", self.ou_col_mask & absent)
            if where:
                raise ValueError(f"{where} converts a bitline beyond the crossbar's {g.xbar_cols} columns")
            where = first_bad("ou_col_mask", self.ou_col_mask & ~absent & (self.ou_col_output < 0))
            if where:
                raise ValueError(f"{where} converts a column whose ou_col_output is -1 (unused)")
            keys = np.stack([self.ou_xbar, self.ou_row_group, self.ou_col_group], axis=1)
            _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
            if (counts > 1).any():
                dup = keys[first[np.argmax(counts > 1)]]
                later = int(np.flatnonzero((keys == dup).all(axis=1))[1])
                raise ValueError(f"TileMapping OU {later} repeats (xbar, row group, col group) = "
                                 f"{tuple(int(v) for v in dup)}: each OU may be scheduled once")
        return self

    def replace(self, **changes) -> "TileMapping":
        """A copy with some fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
