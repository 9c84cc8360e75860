"""Weight matrices → :class:`hw.formats.mapping.TileMapping`: weight slicing and the traditional dense mapping.

The dense mapping is the baseline every sparse strategy is measured against: ``W[K × N]`` laid out as im2col
rows × (output, slice, polarity) columns, tiled over as many crossbars as needed, every OU scheduled.
"""

import numpy as np

from hw import checks
from hw.checks import check_choice
from hw.formats.mapping import ENCODINGS, CrossbarGeometry, TileMapping

__all__ = ["Slice", "weight_slices", "columns_per_output", "map_dense", "check_weights", "check_routing"]


class Slice:
    """One bitline role of an output: levels ``[K]``, its significance ``shift`` and polarity ``sign``."""

    def __init__(self, levels, shift, sign, role):
        self.levels, self.shift, self.sign, self.role = levels, shift, sign, role


def check_weights(w, weight_bits):
    weight_bits = checks.check_int("weight_bits", weight_bits, 2, 16)
    w = np.asarray(w)
    if w.ndim != 2:
        raise ValueError(f"weights must be a K × N matrix, not an array of shape {w.shape}")
    if w.dtype.kind not in "iu":
        raise ValueError(f"weights must be integers (quantize first), not {w.dtype}")
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    if w.size and (w.min() < lo or w.max() > hi):
        k, n = (int(i) for i in np.argwhere((w < lo) | (w > hi))[0])
        raise ValueError(f"weight W[{k}, {n}] = {int(w[k, n])} does not fit {weight_bits}-bit two's complement: "
                         f"allowed {lo} … {hi}")
    return w.astype(np.int64)


def check_routing(mapping: TileMapping, *, weight_bits: int) -> TileMapping:
    """The compiler's table writer check: validate ``mapping`` and make sure every OU column's routing is one the
    RRAM tile accepts (it rejects any other table entry with error code 4, BAD_ROUTE): output ``-1 … N-1`` (a
    converted column ``0 … N-1``), sign ±1, and slice shift ``0 … weight_bits - 1`` in every column. Returns
    ``mapping``; raises ``ValueError`` naming the first bad entry, in one line."""
    weight_bits = checks.check_int("weight_bits", weight_bits, 2, 16)
    mapping.validate()
    bad = mapping.ou_col_shift.astype(np.int64) >= weight_bits
    if bad.any():
        o, c = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"TileMapping.ou_col_shift[{o}, {c}] = {int(mapping.ou_col_shift[o, c])} is invalid: allowed "
                         f"0 … {weight_bits - 1} (weight_bits - 1; the tile rejects it with BAD_ROUTE)")
    return mapping


def columns_per_output(*, weight_bits: int, cell_bits: int, encoding: str) -> int:
    """Bitlines one output needs: ``2 · slices`` (differential) or ``slices + 1`` (offset + reference)."""
    weight_bits = checks.check_int("weight_bits", weight_bits, 2, 16)
    cell_bits = checks.check_choice("cell_bits", cell_bits, (1, 2, 4))
    checks.check_choice("encoding", encoding, ENCODINGS)
    slices = -(-weight_bits // cell_bits)
    return 2 * slices if encoding == "differential" else slices + 1


def weight_slices(w, *, weight_bits: int, cell_bits: int, encoding: str) -> list[list[Slice]]:
    """Split signed weights into cell levels, per output column: ``result[n]`` lists that output's bitlines.

    - ``differential``: ``|w|`` in ``ceil(weight_bits / cell_bits)`` slices of ``cell_bits``, LSB slice first,
      each as a G+ bitline (levels of positive weights, sign +1) then a G− bitline (negative weights, sign −1).
    - ``offset``: ``w + 2**(weight_bits-1)`` (unsigned) in slices, sign +1, then one reference bitline of sign −1
      whose cells hold ``2**(weight_bits-1)`` as a single level ``2**((weight_bits-1) mod cell_bits)`` at shift
      ``cell_bits · floor((weight_bits-1) / cell_bits)``, on every row that holds a weight.
    """
    check_choice("encoding", encoding, ENCODINGS)
    w = check_weights(w, weight_bits)
    n_slices = -(-weight_bits // cell_bits)
    mask = (1 << cell_bits) - 1
    out = []
    for n in range(w.shape[1]):
        col = w[:, n]
        bitlines = []
        if encoding == "differential":
            pos, neg = np.where(col > 0, col, 0), np.where(col < 0, -col, 0)
            for s in range(n_slices):
                shift = s * cell_bits
                bitlines.append(Slice((pos >> shift) & mask, shift, 1, f"slice{s}+"))
                bitlines.append(Slice((neg >> shift) & mask, shift, -1, f"slice{s}-"))
        else:
            offset = 1 << (weight_bits - 1)
            biased = col + offset
            for s in range(n_slices):
                shift = s * cell_bits
                bitlines.append(Slice((biased >> shift) & mask, shift, 1, f"slice{s}"))
            ref_shift = cell_bits * ((weight_bits - 1) // cell_bits)
            bitlines.append(Slice(np.full_like(col, offset >> ref_shift), ref_shift, -1, "reference"))
        out.append(bitlines)
    return out


def map_dense(w, geometry: CrossbarGeometry, *, weight_bits: int = 8, encoding: str = "differential") -> TileMapping:
    """The traditional mapping: every weight row on its own wordline, every OU of the used area scheduled.

    Input ``k`` drives wordline ``k mod xbar_rows`` of row tile ``k // xbar_rows``; output ``n`` occupies the
    ``columns_per_output`` consecutive bitlines starting at ``n · columns_per_output`` of the concatenated column
    space (a column tile is one crossbar wide, so an output's bitlines may span two crossbars). Crossbars are
    numbered row tile major. OUs run crossbar by crossbar, wordline group, then bitline group.
    """
    checks.check_instance("geometry", geometry, CrossbarGeometry)
    w = check_weights(w, weight_bits)
    g = geometry
    k_total, n_total = w.shape
    per_output = columns_per_output(weight_bits=weight_bits, cell_bits=g.cell_bits, encoding=encoding)
    total_cols = n_total * per_output
    row_tiles = max(1, -(-k_total // g.xbar_rows))
    col_tiles = max(1, -(-total_cols // g.xbar_cols))
    n_xbars = row_tiles * col_tiles if k_total and n_total else 0

    flat_levels = np.zeros((k_total, col_tiles * g.xbar_cols), dtype=np.uint8)
    flat_output = np.full(col_tiles * g.xbar_cols, -1, dtype=np.int32)
    flat_shift = np.zeros(col_tiles * g.xbar_cols, dtype=np.uint8)
    flat_sign = np.ones(col_tiles * g.xbar_cols, dtype=np.int8)
    for n, bitlines in enumerate(weight_slices(w, weight_bits=weight_bits, cell_bits=g.cell_bits, encoding=encoding)):
        for j, bitline in enumerate(bitlines):
            c = n * per_output + j
            flat_levels[:, c] = bitline.levels
            flat_output[c], flat_shift[c], flat_sign[c] = n, bitline.shift, bitline.sign

    levels = np.zeros((n_xbars, g.xbar_rows, g.xbar_cols), dtype=np.uint8)
    col_output = np.full((n_xbars, g.xbar_cols), -1, dtype=np.int32)
    col_shift = np.zeros((n_xbars, g.xbar_cols), dtype=np.uint8)
    col_sign = np.ones((n_xbars, g.xbar_cols), dtype=np.int8)
    ous = []   # (xbar, row group, col group, inputs, col mask)
    for rt in range(row_tiles if n_xbars else 0):
        k0, k1 = rt * g.xbar_rows, min(k_total, (rt + 1) * g.xbar_rows)
        for ct in range(col_tiles):
            x = rt * col_tiles + ct
            cs = slice(ct * g.xbar_cols, (ct + 1) * g.xbar_cols)
            levels[x, :k1 - k0, :] = flat_levels[k0:k1, cs]
            col_output[x], col_shift[x], col_sign[x] = flat_output[cs], flat_shift[cs], flat_sign[cs]
            for rg in range(-(-(k1 - k0) // g.ou_rows)):
                rows = rg * g.ou_rows + np.arange(g.ou_rows)
                inputs = np.where(rows < k1 - k0, k0 + rows, -1).astype(np.int32)
                for cg in range(g.col_groups):
                    cols = cg * g.ou_cols + np.arange(g.ou_cols)
                    mask = cols < g.xbar_cols
                    mask[mask] = col_output[x, cols[mask]] >= 0
                    if mask.any():
                        ous.append((x, rg, cg, inputs, mask))
    mapping = TileMapping.from_column_tables(
        geometry=g, n_inputs=k_total, n_outputs=n_total, levels=levels,
        ou_xbar=np.array([o[0] for o in ous], dtype=np.int32),
        ou_row_group=np.array([o[1] for o in ous], dtype=np.int32),
        ou_col_group=np.array([o[2] for o in ous], dtype=np.int32),
        ou_inputs=np.array([o[3] for o in ous], dtype=np.int32).reshape(len(ous), g.ou_rows),
        ou_col_mask=np.array([o[4] for o in ous], dtype=bool).reshape(len(ous), g.ou_cols),
        col_output=col_output, col_shift=col_shift, col_sign=col_sign,
        info={"strategy": "dense", "encoding": encoding, "weight_bits": weight_bits})
    return check_routing(mapping, weight_bits=weight_bits)
