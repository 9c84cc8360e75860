"""Golden model of the whole RRAM tile: the controller's operations, in its order, on the crossbar mirror.

Written from the tile's specification (README "RRAM tile", :mod:`hw.rram.beats`, :mod:`hw.formats.mapping`), not
from the RTL. It drives :class:`sim.rram.xbar.CrossbarMirror` with exactly the command sequence the
controller issues, so the mirror's LFSRs (pulse errors, read noise) are consumed in the same order and the results
are the same bits:

- programming, per program beat in order: WRITE, READ_CELL, compare; rewrite until the level reads back or
  ``max_iters`` writes were made; a cell that never verifies is logged (FIFO of ``fault_depth``; beyond that it is
  only counted);
- table loading: HEADER, OU entries (with their columns' routing), END, each checked as the hardware checks it
  (error codes of ``beats.ERRORS``; the first error of a load is reported, its remaining beats ignored);
- MVM, per input plane (LSB first) and scheduled OU: drive = the plane's chunk of each wordline's input (0 when
  undriven), READ_OU on the OU's crossbar, then per converted column ``acc[route.output] += ±(code << (plane
  shift + route.shift))``, in ``acc_bits`` two's complement (wrapping). Each crossbar is its own model (seed
  ``hw.rram.crossbar.lane_seed(seed, x)``); its reads happen in the order of its OUs in the schedule, plane by
  plane, which is the order its LFSR is consumed in. The crossbars run in parallel in the hardware; integer sums
  wrap the same in any order, so the results are the same bits.
"""

import numpy as np

from types import SimpleNamespace

from hw import checks
from hw.rram import beats
from hw.rram.crossbar import lane_seed
from hw.formats.ints import wrap_int
from hw.formats.mapping import conversion_cycles, input_planes
from sim.rram.tables import Tables, program_cells

from sim.rram.xbar import CrossbarMirror

__all__ = ["TileGolden"]

E = beats.ERROR_CODES


class TileGolden:
    """The tile after reset, for config ``cfg`` (an :class:`gen.rram.config.RramTileConfig`).

    Attributes
    ----------
    mirrors : list of CrossbarMirror
        One single-crossbar model per crossbar (stuck cells from ``cfg.stuck_cells()``); ``mirror.levels`` is
        every cell, ``(n_xbars, xbar_rows, xbar_cols)``.
    fault_log : list of (xbar, row, col)
        What the fault FIFO holds, oldest first (the host pops it with :meth:`pop_faults`).
    counters : dict
        Every register of ``beats.REGISTERS`` but STATUS and CYCLES, by lower-case name.
    error : int
        Last error code; ``tables_valid``, ``fault_overflow`` the status bits.
    """

    def __init__(self, cfg):
        checks.check_attrs("cfg", cfg, ("n_xbars", "xbar_rows", "xbar_cols", "cell_bits", "ou_rows", "ou_cols",
                                        "dac_bits", "adc_bits", "input_bits", "input_signed", "acc_bits",
                                        "stuck_cells"), "an RramTileConfig")
        self.cfg = cfg
        stuck = cfg.stuck_cells()
        self.mirrors = [CrossbarMirror(n_xbars=1, xbar_rows=cfg.xbar_rows, xbar_cols=cfg.xbar_cols,
                                       cell_bits=cfg.cell_bits, ou_rows=cfg.ou_rows, ou_cols=cfg.ou_cols,
                                       dac_bits=cfg.dac_bits, adc_bits=cfg.adc_bits, pulse_error=cfg.pulse_error,
                                       read_noise=cfg.read_noise, seed=lane_seed(cfg.seed, x),
                                       stuck=[(0, r, c, lvl) for xs, r, c, lvl in stuck if xs == x])
                        for x in range(cfg.n_xbars)]
        self.adcs = getattr(cfg, "adcs", cfg.ou_cols)
        self.planes = input_planes(cfg.input_bits, cfg.input_signed, cfg.dac_bits)
        self.fault_log = []
        self.counters = {name.lower(): 0 for name, _ in beats.REGISTERS.values() if name not in ("STATUS", "CYCLES")}
        self.error, self.tables_valid, self.fault_overflow = 0, False, False
        self.ous = []           # (xbar, row group, col group, inputs, mask, outputs, shifts, negatives)
        self.n_ous = self.n_inputs = self.n_outputs = 0

    @property
    def mirror(self):
        """The crossbars' cells as one array ``levels`` of shape ``(n_xbars, xbar_rows, xbar_cols)``."""
        return SimpleNamespace(levels=np.concatenate([m.levels for m in self.mirrors], axis=0))

    @staticmethod
    def conversion_cycles(mask, outputs, adcs: int) -> int:
        """Conversion cycles of one OU activation (:func:`hw.formats.mapping.conversion_cycles`)."""
        return conversion_cycles(mask, outputs, adcs)

    def _reject(self, name):
        self.error = E[name]
        self.counters["errors"] += 1

    # ---- programming ------------------------------------------------------------------------------------------

    def program(self, levels, mask=None) -> None:
        """The program beats ``sim.rram.driver.program_beats(cfg, levels, mask)`` sends, in the same order."""
        for x, r, c, level in program_cells(self.cfg, levels, mask).tolist():
            self.program_cell(x, r, c, level)

    def program_cell(self, x, r, c, level) -> bool:
        """One program beat: write-verify; returns whether the cell verified."""
        cfg = self.cfg
        if not (0 <= x < cfg.n_xbars and 0 <= r < cfg.xbar_rows and 0 <= c < cfg.xbar_cols):
            self._reject("BAD_CELL")
            return False
        for _ in range(cfg.max_iters):
            self.mirrors[x].write(0, r, c, level)
            self.counters["verify_iters"] += 1
            if self.mirrors[x].read_cell(0, r, c) == level:
                self.counters["cells_programmed"] += 1
                return True
        self.counters["cells_programmed"] += 1
        self.counters["fault_count"] += 1
        if len(self.fault_log) < cfg.fault_depth:
            self.fault_log.append((x, r, c))
        else:
            self.counters["fault_dropped"] += 1
            self.fault_overflow = True
        return False

    def pop_faults(self) -> list:
        """Everything the fault FIFO holds, oldest first (emptying it)."""
        out, self.fault_log = self.fault_log, []
        return out

    # ---- tables -------------------------------------------------------------------------------------------------

    def load_tables(self, t: Tables) -> int:
        """The table beats of ``t`` (HEADER, OU entries, END); returns the error code (0: tables valid)."""
        checks.check_instance("t", t, Tables)
        cfg = self.cfg
        self.tables_valid, self.error = False, 0
        self.n_ous, self.n_inputs, self.n_outputs = t.n_ous, t.n_inputs, t.n_outputs
        self.ous = []
        if not (t.n_ous <= cfg.ou_table_depth and 1 <= t.n_inputs <= cfg.input_capacity
                and 1 <= t.n_outputs <= cfg.output_capacity):
            self._reject("BAD_HEADER")
            return self.error
        per_xbar = [0] * cfg.n_xbars
        depth = beats.lane_depth(cfg)
        for o in range(t.entries()):
            xbar, rg, cg = int(t.ou_xbar[o]), int(t.ou_row_group[o]), int(t.ou_col_group[o])
            inputs, mask = np.asarray(t.ou_inputs[o], dtype=np.int64), np.asarray(t.ou_col_mask[o], dtype=bool)
            outputs = np.asarray(t.ou_col_output[o], dtype=np.int64)
            shifts = np.asarray(t.ou_col_shift[o], dtype=np.int64)
            negatives = np.asarray(t.ou_col_negative[o], dtype=np.int64)
            rows = rg * cfg.ou_rows + np.arange(cfg.ou_rows)
            cols = cg * cfg.ou_cols + np.arange(cfg.ou_cols)
            ok = (xbar < cfg.n_xbars and rg < cfg.row_groups and cg < cfg.col_groups and o < t.n_ous
                  and per_xbar[xbar] < depth
                  and bool(np.all((inputs == -1) | ((inputs >= 0) & (inputs < t.n_inputs) & (rows < cfg.xbar_rows))))
                  and not bool(np.any(mask & (cols >= cfg.xbar_cols))))
            if not ok:
                self._reject("BAD_OU")
                return self.error
            if not bool(np.all((outputs >= -1) & (outputs < t.n_outputs) & (shifts < cfg.weight_bits))):
                self._reject("BAD_ROUTE")
                return self.error
            if bool(np.any(mask & (outputs < 0))):
                self._reject("UNUSED_COLUMN")
                return self.error
            per_xbar[xbar] += 1
            self.ous.append((xbar, rg, cg, inputs, mask, outputs, shifts, negatives))
        if len(self.ous) != t.n_ous:
            self._reject("BAD_SEQUENCE")
            return self.error
        self.tables_valid = True
        return 0

    def reserved_beat(self) -> int:
        """A table beat of the reserved kind 2: rejected (BAD_SEQUENCE), otherwise ignored (an open load stays
        open)."""
        self._reject("BAD_SEQUENCE")
        return self.error

    # ---- MVM ------------------------------------------------------------------------------------------------------

    def mvm(self, x) -> np.ndarray | None:
        """One input vector (its beats, ``last`` on the final one); returns y, or None when rejected (no output)."""
        cfg = self.cfg
        # what the input port can carry: input_bits-wide integers (a float would silently truncate)
        x = checks.check_int_array("x", x, bits=cfg.input_bits, signed=cfg.input_signed, whole_floats=False).ravel()
        if not self.tables_valid:
            self._reject("NO_TABLES")
            return None
        if len(x) != self.n_inputs:
            self._reject("BAD_VECTOR")
            return None
        raw = x & ((1 << cfg.input_bits) - 1)
        acc = [0] * self.n_outputs
        dense = cfg.n_xbars * cfg.row_groups * cfg.col_groups
        for shift, width, negative in self.planes:
            self.counters["skipped_ous"] += dense - self.n_ous
            chunk = (raw >> shift) & ((1 << width) - 1)
            for xbar, rg, cg, inputs, mask, outputs, shifts, negatives in self.ous:
                drive = np.where(inputs >= 0, chunk[np.maximum(inputs, 0)], 0)
                codes = self.mirrors[xbar].read_ou(0, rg, cg, drive)
                self.counters["ou_activations"] += 1
                self.counters["adc_conversions"] += int(mask.sum())
                cycles = self.conversion_cycles(mask, outputs, self.adcs)
                self.counters["stalls"] += cycles - max(1, -(-int(mask.sum()) // self.adcs))
                if xbar < beats.BUSY_REGISTERS:
                    self.counters[f"busy{xbar}"] += cycles
                for c in np.flatnonzero(mask):
                    term = int(codes[c]) << (shift + int(shifts[c]))
                    out = int(outputs[c])
                    acc[out] = wrap_int(acc[out] + (-term if int(negatives[c]) ^ negative else term), cfg.acc_bits)
        self.counters["mvms"] += 1
        return np.array(acc, dtype=np.int64)
