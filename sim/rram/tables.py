"""The RRAM tile's table images and cell image, from a mapping: what the table and program beats carry.

A :class:`Tables` is the raw content of the tile's tables as the hardware sees them (no validation, so tests can
build bad ones); :func:`tables_of` makes one from a validated :class:`hw.formats.mapping.TileMapping`. The host
driver (:mod:`sim.rram.driver`) turns these into beats; the tile golden model (:mod:`sim.rram.golden`) executes them.
"""

from dataclasses import dataclass

import numpy as np

from hw.formats.mapping import TileMapping

__all__ = ["Tables", "OU_FIELDS", "tables_of", "check_mapping", "program_cells", "footprint", "random_mapping",
           "save_mapping", "load_mapping"]


@dataclass(eq=False)
class Tables:
    """What the table beats carry: the HEADER and the OU entries in schedule order (mapping format v2: each entry
    carries its columns' routing).

    Attributes
    ----------
    n_ous, n_inputs, n_outputs : int
        HEADER fields (``n_ous`` may differ from the number of OU entries: a bad-input test).
    ou_xbar, ou_row_group, ou_col_group : ndarray (n_entries,)
    ou_inputs : ndarray (n_entries, ou_rows), -1 = undriven
    ou_col_mask : ndarray of bool (n_entries, ou_cols)
    ou_col_output, ou_col_shift, ou_col_negative : ndarray (n_entries, ou_cols)
        Routing of every OU column: output (-1 none), slice shift, 1 for sign -1.
    """
    n_ous: int
    n_inputs: int
    n_outputs: int
    ou_xbar: np.ndarray
    ou_row_group: np.ndarray
    ou_col_group: np.ndarray
    ou_inputs: np.ndarray
    ou_col_mask: np.ndarray
    ou_col_output: np.ndarray
    ou_col_shift: np.ndarray
    ou_col_negative: np.ndarray

    def __repr__(self):
        return (f"Tables(n_ous={self.n_ous}, n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, "
                f"ou_entries={len(self.ou_xbar)})")

    def entries(self) -> int:
        """OU entries the table beats carry."""
        return len(self.ou_xbar)

    def select(self, keep) -> "Tables":
        """The same HEADER with only the OU entries ``keep`` (a bool mask or index array), in order."""
        return Tables(n_ous=self.n_ous, n_inputs=self.n_inputs, n_outputs=self.n_outputs,
                      **{name: np.asarray(getattr(self, name))[keep] for name in OU_FIELDS})


OU_FIELDS = ("ou_xbar", "ou_row_group", "ou_col_group", "ou_inputs", "ou_col_mask", "ou_col_output", "ou_col_shift",
             "ou_col_negative")
"""The per-OU-entry arrays of :class:`Tables`, in beat order."""


def check_mapping(cfg, mapping: TileMapping) -> TileMapping:
    """Validate ``mapping`` and check that it fits the tile of ``cfg``; returns it.

    Raises
    ------
    ValueError
        Naming what does not fit: geometry, crossbar count, OU count (in total, or on one crossbar's queue), K, N
        or a column shift.
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
    if mapping.ou_col_shift.size and int(mapping.ou_col_shift.max()) >= cfg.weight_bits:
        o, c = (int(i) for i in np.argwhere(mapping.ou_col_shift >= cfg.weight_bits)[0])
        raise ValueError(f"mapping.ou_col_shift[{o}, {c}] = {int(mapping.ou_col_shift[o, c])} is out of range: "
                         f"allowed 0 … {cfg.weight_bits - 1} (weight_bits - 1)")
    per_xbar = np.bincount(mapping.ou_xbar, minlength=1) if mapping.n_ous else np.zeros(1, dtype=np.int64)
    depth = min(cfg.ou_table_depth, cfg.row_groups * cfg.col_groups)
    if int(per_xbar.max()) > depth:
        x = int(np.argmax(per_xbar))
        raise ValueError(f"mapping schedules {int(per_xbar[x])} OUs on crossbar {x}: allowed at most {depth} "
                         f"(one crossbar's OU queue: min(ou_table_depth, row_groups·col_groups))")
    return mapping


def tables_of(cfg, mapping: TileMapping) -> Tables:
    """The tables for a mapping that fits ``cfg``: every OU of its schedule with its columns' routing."""
    check_mapping(cfg, mapping)
    return Tables(n_ous=mapping.n_ous, n_inputs=mapping.n_inputs, n_outputs=mapping.n_outputs,
                  ou_xbar=mapping.ou_xbar.copy(), ou_row_group=mapping.ou_row_group.copy(),
                  ou_col_group=mapping.ou_col_group.copy(), ou_inputs=mapping.ou_inputs.copy(),
                  ou_col_mask=mapping.ou_col_mask.copy(), ou_col_output=mapping.ou_col_output.astype(np.int64),
                  ou_col_shift=mapping.ou_col_shift.astype(np.int64),
                  ou_col_negative=(mapping.ou_col_sign < 0).astype(np.int64))


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


def random_mapping(cfg, rng, *, n_inputs: int, n_outputs: int, ou_fraction: float = 0.5) -> TileMapping:
    """A random mapping-format-v2 schedule that fits ``cfg`` (for tests): random cell levels, a random subset of
    the tile's OUs (each at most once, in random order, at most ``lane_depth`` per crossbar), random input indices
    (some wordlines undriven), random column masks, and routing that sends each OU column to a random output with a
    random shift and sign, so that bitlines serve several outputs and OUs route to several outputs (stalls when
    ``adcs_per_xbar < ou_cols``). ``rng`` a numpy Generator."""
    g = cfg.geometry
    levels = rng.integers(0, g.max_level + 1, size=(cfg.n_xbars, g.xbar_rows, g.xbar_cols)).astype(np.uint8)
    all_ous = [(x, r, c) for x in range(cfg.n_xbars) for r in range(g.row_groups) for c in range(g.col_groups)]
    pick = [all_ous[i] for i in rng.permutation(len(all_ous))[:max(1, int(ou_fraction * len(all_ous)))]]
    per_xbar, ous = {}, []
    for ou in pick:
        if per_xbar.get(ou[0], 0) < min(cfg.ou_table_depth, g.row_groups * g.col_groups) \
                and len(ous) < cfg.ou_table_depth:
            per_xbar[ou[0]] = per_xbar.get(ou[0], 0) + 1
            ous.append(ou)
    n = len(ous)
    xbar, rg, cg = (np.array([o[i] for o in ous], dtype=np.int32) for i in range(3))
    rows = rg[:, None] * g.ou_rows + np.arange(g.ou_rows)
    cols = cg[:, None] * g.ou_cols + np.arange(g.ou_cols)
    inputs = rng.integers(-1, n_inputs, size=(n, g.ou_rows)).astype(np.int32)
    inputs[rows >= g.xbar_rows] = -1
    mask = (rng.random((n, g.ou_cols)) < 0.8) & (cols < g.xbar_cols)
    outputs = np.where(mask, rng.integers(0, n_outputs, size=(n, g.ou_cols)), -1).astype(np.int32)
    shifts = np.where(mask, rng.integers(0, cfg.weight_bits, size=(n, g.ou_cols)), 0).astype(np.uint8)
    signs = np.where(rng.random((n, g.ou_cols)) < 0.5, -1, 1).astype(np.int8)
    return TileMapping(geometry=g, n_inputs=n_inputs, n_outputs=n_outputs, levels=levels, ou_xbar=xbar,
                       ou_row_group=rg, ou_col_group=cg, ou_inputs=inputs, ou_col_mask=mask, ou_col_output=outputs,
                       ou_col_shift=shifts, ou_col_sign=signs, info={"strategy": "random"}).validate()


_ARRAYS = ("levels", "ou_xbar", "ou_row_group", "ou_col_group", "ou_inputs", "ou_col_mask", "ou_col_output",
           "ou_col_shift", "ou_col_sign")


def save_mapping(path, mapping: TileMapping) -> None:
    """Write a mapping to an ``.npz`` (its arrays, geometry, K and N; not ``info``): how the bench hands one to a
    cocotb run."""
    g = mapping.geometry
    np.savez(path, **{name: getattr(mapping, name) for name in _ARRAYS},
             geometry=np.array([g.xbar_rows, g.xbar_cols, g.ou_rows, g.ou_cols, g.cell_bits]),
             shape=np.array([mapping.n_inputs, mapping.n_outputs]))


def load_mapping(path) -> TileMapping:
    """Read a mapping :func:`save_mapping` wrote (validated)."""
    from hw.formats.mapping import CrossbarGeometry

    with np.load(path) as f:
        rows, cols, ou_rows, ou_cols, cell_bits = (int(v) for v in f["geometry"])
        k, n = (int(v) for v in f["shape"])
        return TileMapping(geometry=CrossbarGeometry(xbar_rows=rows, xbar_cols=cols, ou_rows=ou_rows, ou_cols=ou_cols,
                                                     cell_bits=cell_bits), n_inputs=k, n_outputs=n,
                           **{name: f[name] for name in _ARRAYS}).validate()
