"""Host driver of the RRAM tile: weight image, tables and input vectors → beats; output and fault beats → numpy.

Every format comes from :mod:`hw.rram.beats` (the one definition); the table and cell images come from
:mod:`sim.rram.tables`.
"""

import numpy as np

from hw.rram import beats
from sim.rram.tables import Tables, program_cells

__all__ = ["program_beats", "table_beats", "input_beats", "outputs_from_beats", "faults_from_beats", "cell_room"]


def cell_room(cfg) -> bool:
    """Whether a program beat can address a cell outside the tile (error BAD_CELL): some address field has values
    beyond the tile's crossbars, rows or columns (a dimension that is not a power of two)."""
    return any(n & (n - 1) for n in (cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols))


def program_beats(cfg, levels, mask=None) -> list[int]:
    """Program beats for the cells of :func:`program_cells`, in that order."""
    cells = program_cells(cfg, levels, mask)
    return beats.pack_beats(beats.program_layout(beats.params_of(cfg)),
                            {"xbar": cells[:, 0], "row": cells[:, 1], "col": cells[:, 2], "level": cells[:, 3]},
                            beats=len(cells))


def table_beats(cfg, tables: Tables) -> list[int]:
    """HEADER, the OU entries (each with its columns' routing), END."""
    p = beats.params_of(cfg)
    out = beats.table_beats(p, beats.TABLE_HEADER, {"n_ous": tables.n_ous, "n_inputs": tables.n_inputs,
                                                    "n_outputs": tables.n_outputs})
    if len(tables.ou_xbar):
        out += beats.table_beats(p, beats.TABLE_OU, {
            "xbar": tables.ou_xbar, "row_group": tables.ou_row_group, "col_group": tables.ou_col_group,
            "inputs": tables.ou_inputs, "mask": (np.asarray(tables.ou_col_mask, dtype=np.int64)
                                                 << np.arange(cfg.ou_cols)).sum(axis=1),
            "route.output": tables.ou_col_output, "route.shift": tables.ou_col_shift,
            "route.negative": tables.ou_col_negative})
    return out + beats.table_beats(p, beats.TABLE_END)


def input_beats(cfg, x) -> list[int]:
    """One input vector ``x[K]`` → K beats, ``last`` on the final one."""
    x = np.asarray(x, dtype=np.int64).ravel()
    last = np.zeros(len(x), dtype=np.int64)
    if len(x):
        last[-1] = 1
    return beats.pack_beats(beats.input_layout(beats.params_of(cfg)), {"value": x, "last": last})


def outputs_from_beats(cfg, words, n_outputs: int) -> np.ndarray:
    """Output beats of whole vectors → ``y[vectors, N]``; checks that ``last`` marks exactly each vector's end."""
    if len(words) % n_outputs:
        raise ValueError(f"{len(words)} output beats is not a whole number of {n_outputs}-element vectors")
    fields = beats.unpack_beats(beats.output_layout(beats.params_of(cfg)), words)
    expected_last = (np.arange(len(words)) % n_outputs) == n_outputs - 1
    if not np.array_equal(fields["last"].astype(bool), expected_last):
        bad = int(np.argmax(fields["last"].astype(bool) != expected_last))
        raise ValueError(f"output beat {bad}: last = {int(fields['last'][bad])}, expected {int(expected_last[bad])}")
    return fields["value"].reshape(-1, n_outputs)


def faults_from_beats(cfg, words) -> list[tuple[int, int, int]]:
    """Fault-log beats → ``(xbar, row, col)`` addresses in log order."""
    fields = beats.unpack_beats(beats.cell_addr_layout(beats.params_of(cfg)), words)
    return list(zip(fields["xbar"].tolist(), fields["row"].tolist(), fields["col"].tolist()))
