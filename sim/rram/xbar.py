"""numpy mirror of the crossbar model (:class:`hw.rram.crossbar.CrossbarModel`): same cells, same dice, same bits.

Written from the model's specification (its class docstring), not from its RTL. Arithmetic mirrors the
hardware: levels are integers ``0 … 2**cell_bits - 1``; a write that misses lands one level off and is clamped;
column sums are exact integers; noise is ``((d · (2R+1)) >> 16) - R`` of a 16-bit LFSR draw ``d``; the ADC clamps
to ``0 … 2**adc_bits - 1``. Randomness comes from :class:`sim.rram.lfsr.LfsrMirror` streams 0 (writes) and 1
(read noise) of ``seed``, consumed in the same order as the hardware consumes them.
"""


import numpy as np

from hw.checks import check_choice, check_int
from hw.formats.mapping import CELL_BITS, CrossbarShape
from hw.rram.crossbar import NOISE_DRAW_BITS, PULSE_ONE, WRITE_DRAW_BITS, Op

from sim.rram.lfsr import LfsrMirror

__all__ = ["CrossbarMirror"]


class CrossbarMirror(CrossbarShape):
    """Stateful mirror of ``CrossbarModel(**same keyword arguments)`` right after configuration (or ``rst``).

    Attributes
    ----------
    levels : ndarray of int64, shape (n_xbars, xbar_rows, xbar_cols)
        Every cell's level (stuck cells at their stuck level).
    stuck_mask : ndarray of bool, same shape
    writes_missed : int
        Writes that landed off target so far.
    """

    def __init__(self, *, n_xbars, xbar_rows, xbar_cols, cell_bits, ou_rows, ou_cols, dac_bits, adc_bits,
                 pulse_error=0, read_noise=0, stuck=(), seed=1):
        for name, value, lo, hi in (("n_xbars", n_xbars, 1, 4096), ("xbar_rows", xbar_rows, 1, 4096),
                                    ("xbar_cols", xbar_cols, 1, 4096), ("ou_rows", ou_rows, 1, xbar_rows),
                                    ("ou_cols", ou_cols, 1, xbar_cols), ("dac_bits", dac_bits, 1, 8),
                                    ("adc_bits", adc_bits, 1, 32), ("pulse_error", pulse_error, 0, PULSE_ONE),
                                    ("read_noise", read_noise, 0, 255)):
            check_int(f"CrossbarMirror.{name}", value, lo, hi)
        check_choice("CrossbarMirror.cell_bits", cell_bits, CELL_BITS)
        self.n_xbars, self.xbar_rows, self.xbar_cols = n_xbars, xbar_rows, xbar_cols
        self.cell_bits, self.ou_rows, self.ou_cols = cell_bits, ou_rows, ou_cols
        self.dac_bits, self.adc_bits = dac_bits, adc_bits
        self.pulse_error, self.read_noise = pulse_error, read_noise
        self.levels = np.zeros((n_xbars, xbar_rows, xbar_cols), dtype=np.int64)
        self.stuck_mask = np.zeros(self.levels.shape, dtype=bool)
        for i, (x, r, c, lvl) in enumerate(stuck):
            if not (0 <= x < n_xbars and 0 <= r < xbar_rows and 0 <= c < xbar_cols and 0 <= lvl <= self.max_level):
                raise ValueError(f"stuck[{i}] = {(x, r, c, lvl)} is outside the array or above level {self.max_level}")
            if self.stuck_mask[x, r, c]:
                raise ValueError(f"stuck[{i}] repeats cell {(x, r, c)}")
            self.stuck_mask[x, r, c] = True
            self.levels[x, r, c] = lvl
        self._write_lfsr = LfsrMirror(seed, 0)
        self._noise_lfsr = LfsrMirror(seed, 1)
        self.writes_missed = 0

    @classmethod
    def from_geometry(cls, geometry, *, n_xbars, **kwargs) -> "CrossbarMirror":
        """Mirror of crossbars shaped like a :class:`hw.formats.mapping.CrossbarGeometry`."""
        g = geometry
        return cls(n_xbars=n_xbars, xbar_rows=g.xbar_rows, xbar_cols=g.xbar_cols, cell_bits=g.cell_bits,
                   ou_rows=g.ou_rows, ou_cols=g.ou_cols, **kwargs)

    def _in_array(self, xbar, row, col):
        return 0 <= xbar < self.n_xbars and 0 <= row < self.xbar_rows and 0 <= col < self.xbar_cols

    # --- writes -----------------------------------------------------------------------------------------
    def _landed(self, targets: np.ndarray) -> np.ndarray:
        """Levels actually programmed for ``targets`` (carried-out writes, in order), consuming one draw each."""
        if not self.pulse_error or targets.size == 0:
            return targets
        d = self._write_lfsr.draws(targets.size, WRITE_DRAW_BITS)
        miss = (d & 0xFFFF) < self.pulse_error
        step = np.where(d >> 16 & 1, 1, -1)
        self.writes_missed += int(miss.sum())
        return np.where(miss, np.clip(targets + step, 0, self.max_level), targets)

    def write(self, xbar, row, col, level) -> int | None:
        """One WRITE; returns the level the cell took, or ``None`` when ignored (stuck or outside the array)."""
        check_int("level", level, 0, self.max_level)
        if not self._in_array(xbar, row, col) or self.stuck_mask[xbar, row, col]:
            return None
        landed = int(self._landed(np.array([level], dtype=np.int64))[0])
        self.levels[xbar, row, col] = landed
        return landed

    def write_many(self, xbar, row, col, level) -> np.ndarray:
        """WRITEs of the given cells in order (vectorized); returns a bool array: which ones were carried out.

        All arguments are equal-length integer arrays; addresses must lie inside the array.
        """
        xbar, row, col, level = (np.asarray(a, dtype=np.int64).ravel() for a in (xbar, row, col, level))
        if not (xbar.size == row.size == col.size == level.size):
            raise ValueError("write_many: xbar, row, col and level must have the same length")
        bad = (xbar < 0) | (xbar >= self.n_xbars) | (row < 0) | (row >= self.xbar_rows) | (col < 0) | \
              (col >= self.xbar_cols) | (level < 0) | (level > self.max_level)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"write_many: write {i} = {(xbar[i], row[i], col[i], level[i])} is outside the array "
                             f"or above level {self.max_level}")
        done = ~self.stuck_mask[xbar, row, col]
        landed = self._landed(level[done])
        x, r, c = xbar[done], row[done], col[done]
        # Later writes of a cell win: assign each cell's last write only (fancy assignment order is unspecified).
        flat = np.ravel_multi_index((x, r, c), self.levels.shape)
        _, last = np.unique(flat[::-1], return_index=True)
        last = flat.size - 1 - last
        self.levels[x[last], r[last], c[last]] = landed[last]
        return done

    def program(self, levels) -> np.ndarray:
        """WRITE every cell of ``levels`` (shape ``(n_xbars, xbar_rows, xbar_cols)``) in C order, as a
        controller's row-major programming pass does; returns the levels now held."""
        levels = np.asarray(levels)
        if levels.shape != self.levels.shape:
            raise ValueError(f"program: levels has shape {levels.shape}, expected {self.levels.shape}")
        x, r, c = np.indices(levels.shape).reshape(3, -1)
        self.write_many(x, r, c, levels.ravel())
        return self.levels.copy()

    # --- reads ------------------------------------------------------------------------------------------
    def read_cell(self, xbar, row, col) -> int:
        """READ_CELL: the cell's level, or 0 outside the array."""
        return int(self.levels[xbar, row, col]) if self._in_array(xbar, row, col) else 0

    def read_ou(self, xbar, row_group, col_group, drive) -> np.ndarray:
        """READ_OU: the ``ou_cols`` ADC codes (int64) of the OU, consuming ``ou_cols`` noise draws if noise is on."""
        drive = np.asarray(drive, dtype=np.int64)
        if drive.shape != (self.ou_rows,) or drive.min() < 0 or drive.max() >= 1 << self.dac_bits:
            raise ValueError(f"drive must be {self.ou_rows} values in 0 … {(1 << self.dac_bits) - 1}, not {drive!r}")
        noise = np.zeros(self.ou_cols, dtype=np.int64)
        if self.read_noise:
            d = self._noise_lfsr.draws(self.ou_cols, NOISE_DRAW_BITS)
            noise = ((d * (2 * self.read_noise + 1)) >> NOISE_DRAW_BITS) - self.read_noise
        if not (0 <= xbar < self.n_xbars and 0 <= row_group < self.row_groups and 0 <= col_group < self.col_groups):
            return np.zeros(self.ou_cols, dtype=np.int64)
        r0, c0 = row_group * self.ou_rows, col_group * self.ou_cols
        block = np.zeros((self.ou_rows, self.ou_cols), dtype=np.int64)
        rows = self.levels[xbar, r0:r0 + self.ou_rows, c0:c0 + self.ou_cols]
        block[:rows.shape[0], :rows.shape[1]] = rows
        sums = drive @ block
        codes = np.clip(sums + noise, 0, (1 << self.adc_bits) - 1)
        present = c0 + np.arange(self.ou_cols) < self.xbar_cols
        return np.where(present, codes, 0)

    # --- command streams --------------------------------------------------------------------------------
    def run(self, commands) -> list:
        """Execute commands ``(op, xbar, row, col, level, drive)`` in order; return the responses in order:
        an int per READ_CELL, an ndarray of codes per READ_OU (WRITE and reserved op 3 give none)."""
        out = []
        for op, xbar, row, col, level, drive in commands:
            op = int(op)
            if op == Op.WRITE.value:
                self.write(xbar, row, col, level)
            elif op == Op.READ_CELL.value:
                out.append(self.read_cell(xbar, row, col))
            elif op == Op.READ_OU.value:
                out.append(self.read_ou(xbar, row, col, drive))
        return out
