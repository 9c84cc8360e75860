"""The RRAM tile's table images and cell image, from a mapping: what the table and program beats carry.

A :class:`Tables` is the raw content of the tile's tables as the hardware sees them (no validation, so tests can
build bad ones); :func:`tables_of` makes one from a validated :class:`hw.formats.mapping.TileMapping`. The host
driver (:mod:`sim.rram.driver`) turns these into beats; the tile golden model (:mod:`sim.rram.golden`) executes them.
"""

from dataclasses import dataclass

import numpy as np

from hw.formats.mapping import TileMapping

__all__ = ["Tables", "tables_of", "check_mapping", "program_cells", "footprint"]


@dataclass(eq=False)
class Tables:
    """What the table beats carry: the HEADER, the OU entries in schedule order, the column entries in order.

    Attributes
    ----------
    n_ous, n_inputs, n_outputs : int
        HEADER fields (``n_ous`` may differ from the number of OU entries: a bad-input test).
    ou_xbar, ou_row_group, ou_col_group : ndarray (n_entries,)
    ou_inputs : ndarray (n_entries, ou_rows), -1 = undriven
    ou_col_mask : ndarray of bool (n_entries, ou_cols)
    col_xbar, col_col, col_output, col_shift, col_negative : ndarray (n_cols,)
        Column entries, sent after the OU entries.
    """
    n_ous: int
    n_inputs: int
    n_outputs: int
    ou_xbar: np.ndarray
    ou_row_group: np.ndarray
    ou_col_group: np.ndarray
    ou_inputs: np.ndarray
    ou_col_mask: np.ndarray
    col_xbar: np.ndarray
    col_col: np.ndarray
    col_output: np.ndarray
    col_shift: np.ndarray
    col_negative: np.ndarray

    def __repr__(self):
        return (f"Tables(n_ous={self.n_ous}, n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, "
                f"ou_entries={len(self.ou_xbar)}, col_entries={len(self.col_xbar)})")


def check_mapping(cfg, mapping: TileMapping) -> TileMapping:
    """Validate ``mapping`` and check that it fits the tile of ``cfg``; returns it.

    Raises
    ------
    ValueError
        Naming what does not fit: geometry, crossbar count, OU count, K, N or a column shift.
    """
    mapping.validate()
    if mapping.geometry != cfg.geometry:
        raise ValueError(f"mapping geometry {mapping.geometry} differs from the tile's {cfg.geometry}")
    for what, value, cap in (("n_xbars", mapping.n_xbars, cfg.n_xbars), ("n_ous", mapping.n_ous, cfg.ou_table_depth),
                             ("n_inputs", mapping.n_inputs, cfg.input_capacity),
                             ("n_outputs", mapping.n_outputs, cfg.output_capacity)):
        if value > cap:
            raise ValueError(f"mapping.{what} = {value} exceeds the tile's capacity: allowed at most {cap}")
    if mapping.n_inputs < 1 or mapping.n_outputs < 1:
        raise ValueError(f"mapping has K = {mapping.n_inputs}, N = {mapping.n_outputs}: the tile needs K, N >= 1")
    if mapping.col_shift.size and int(mapping.col_shift.max()) >= cfg.weight_bits:
        x, c = (int(i) for i in np.argwhere(mapping.col_shift >= cfg.weight_bits)[0])
        raise ValueError(f"mapping.col_shift[{x}, {c}] = {int(mapping.col_shift[x, c])} is out of range: allowed "
                         f"0 … {cfg.weight_bits - 1} (weight_bits - 1)")
    return mapping


def tables_of(cfg, mapping: TileMapping) -> Tables:
    """The tables for a mapping that fits ``cfg``: every OU of its schedule, every column of its crossbars."""
    check_mapping(cfg, mapping)
    x, c = np.indices(mapping.col_output.shape).reshape(2, -1)
    return Tables(n_ous=mapping.n_ous, n_inputs=mapping.n_inputs, n_outputs=mapping.n_outputs,
                  ou_xbar=mapping.ou_xbar.copy(), ou_row_group=mapping.ou_row_group.copy(),
                  ou_col_group=mapping.ou_col_group.copy(), ou_inputs=mapping.ou_inputs.copy(),
                  ou_col_mask=mapping.ou_col_mask.copy(), col_xbar=x, col_col=c,
                  col_output=mapping.col_output.ravel().copy(), col_shift=mapping.col_shift.ravel().astype(np.int64),
                  col_negative=(mapping.col_sign.ravel() < 0).astype(np.int64))


def program_cells(cfg, levels, mask=None) -> np.ndarray:
    """The cells a programming pass writes, in order: ``(n, 4)`` rows of ``(xbar, row, col, level)``.

    ``levels[n, xbar_rows, xbar_cols]`` (``n <= n_xbars``) is the weight image; ``mask`` (same shape, optional)
    selects the cells to program (default: all), visited in C order (crossbar, row, column).
    """
    levels = np.asarray(levels)
    if levels.ndim != 3 or levels.shape[1:] != (cfg.xbar_rows, cfg.xbar_cols) or levels.shape[0] > cfg.n_xbars:
        raise ValueError(f"levels has shape {levels.shape}: expected (n <= {cfg.n_xbars}, {cfg.xbar_rows}, "
                         f"{cfg.xbar_cols})")
    mask = np.ones(levels.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != levels.shape:
        raise ValueError(f"mask has shape {mask.shape}: expected the image's {levels.shape}")
    x, r, c = np.nonzero(mask)
    return np.stack([x, r, c, levels[x, r, c].astype(np.int64)], axis=1)


def footprint(mapping: TileMapping) -> np.ndarray:
    """Cells that affect an MVM (driven wordline × converted bitline of some scheduled OU), shape of ``levels``:
    programming only these gives the same results as programming the whole image."""
    g = mapping.geometry
    used = np.zeros(mapping.levels.shape, dtype=bool)
    rows, cols = mapping.ou_rows_of(), mapping.ou_cols_of()
    for o in range(mapping.n_ous):
        r = rows[o][(rows[o] < g.xbar_rows) & (mapping.ou_inputs[o] >= 0)]
        c = cols[o][(cols[o] < g.xbar_cols) & mapping.ou_col_mask[o]]
        used[mapping.ou_xbar[o], r[:, None], c[None, :]] = True
    return used
