"""Sparse RRAM mapping strategies: weight matrices → :class:`hw.formats.mapping.TileMapping`, plus their statistics.

Strategies (compose with ``+``, e.g. ``"kernel-reorder+bit-squeeze"``; ``dense`` stands alone):

``dense``
    :func:`gen.compiler.rram_map.map_dense`, the traditional mapping every other strategy is measured against.
``ou-sparse`` (AUTO-PRUNE style)
    The layer's bitlines, output by output (``columns_per_output`` each, as :func:`weight_slices` orders them),
    are cut into *column groups* of ``ou_cols`` bitlines. Per group, only the im2col rows with a non-zero cell in
    the group are stored, compacted onto consecutive wordlines; the OU input index (``ou_inputs``) names the input
    that drives each compacted wordline (the "dislocation" of the compacted rows). All-zero groups take nothing.
``kernel-reorder``
    ``ou-sparse`` after permuting the outputs so outputs with the same zero rows (pattern-pruned kernels of the
    same patterns) share a column group (:func:`gen.compiler.kernel_reorder.group_outputs`); the permutation is
    kept only if it saves crossbars, then ADC conversions, then OUs, so it never does worse than ``ou-sparse``.
    The routing (``ou_col_output``) maps every OU column back to its original output. With ``ou_cols <=
    columns_per_output`` a group holds one output and the permutation changes nothing unless combined with
    ``bit-squeeze``'s slice-major order.
``bit-squeeze`` (SME style)
    ``ou-sparse`` plus: bitlines that are zero over the whole layer are dropped before grouping (slices packed);
    inside each OU only bitlines with a non-zero cell in the OU's rows are converted (``ou_col_mask``); and the
    bitline order is chosen per layer among *output-major* (as ``ou-sparse``), *output-major, packed* (zero
    bitlines dropped) and *slice-major, packed* (the same slice and polarity of consecutive outputs side by side,
    which gathers the mostly-zero high-order slices into groups that compact to few rows) — whichever needs fewer
    crossbars, then fewer ADC conversions, then fewer OUs; so it never does worse than ``ou-sparse``. Optional bit-sparsity-aware
    rounding (``round_error``) first moves weights by at most that many units to values with fewer non-zero
    slices (:func:`gen.compiler.bit_squeeze.bit_sparse_round`); the plan reports the error and holds the rounded
    weights the mapping computes with.
``bit-slice`` (SME's bit-slice mapping with squeeze-out; stands alone)
    Every bitline is one slice significance and polarity of one output; the bitlines that are zero over the layer
    are dropped and the rest ordered slice-major (significance by significance, polarities, then outputs) and cut
    into compacted column groups. *Bit-slice mapping*: each significance on crossbars of its own (its groups packed
    with shared slots from a crossbar boundary); ``stats["bit_slice_crossbars"]`` counts them, per significance in
    ``info["significance_crossbars"]``. *Squeeze-out*: the crossbars are then emptied into one another — all
    groups packed together with shared slots, so a significance's sparse last crossbar (or all of a significance
    that fills less than a crossbar: the high slices of SME-quantized weights) lands in the free slots of the
    others; the per-OU routing (``ou_col_shift``, ``ou_col_output``, ``ou_col_sign``) is the index that tells the
    tile which significance and output each column of each OU serves, and only the columns with a non-zero cell in
    the OU are converted. The mapping emitted is the squeezed one (``stats["crossbars"]``).

Physical layout of the compacted strategies: a column group's compacted rows fill *slots* — ``xbar_rows``
wordlines × one OU column position of a crossbar (``xbar_cols // ou_cols`` positions per crossbar; when
``ou_cols`` does not divide ``xbar_cols`` the remainder bitlines stay unused). Each OU row group a group touches is
one scheduled OU with its own routing (mapping format v2), so with ``slots="shared"`` (default) the next group
starts at the next OU row-group boundary rather than the next slot (:func:`shared_slot_starts`) and the slots go
round-robin over the crossbars: a slot's remainder holds other groups' rows, its bitlines serving other outputs
in those row groups. ``slots="single"`` keeps one group per slot (the packing before v2); the planner tries both
and keeps the better (crossbars, ADC conversions, OUs; ties keep ``single``). The sparse strategies need the
``differential`` encoding (offset encoding stores a zero weight as non-zero cells). Every mapping passes
:func:`gen.compiler.rram_map.check_routing` before it is returned (no routing entry the tile would reject).
"""

from dataclasses import dataclass, field

import numpy as np

from hw import checks
from hw.formats.mapping import CrossbarGeometry, TileMapping

from gen.compiler.bit_squeeze import bit_sparse_round
from gen.compiler.kernel_reorder import group_outputs
from gen.compiler.rram_map import check_routing, check_weights, columns_per_output, map_dense, weight_slices

__all__ = ["STRATEGIES", "SLOTS", "parse_strategy", "shared_slot_starts", "bitline_levels", "MapPlan", "plan_layer",
           "map_layer", "dense_stats"]

STRATEGIES = ("dense", "ou-sparse", "kernel-reorder", "bit-squeeze", "bit-slice")
_ALONE = ("dense", "bit-slice")          # strategies that do not compose with others
SLOTS = ("shared", "single")
"""Slot packings of the compacted strategies: column groups share slots (per-OU routing), or one group per slot."""


def parse_strategy(spec: str) -> frozenset:
    """``"kernel-reorder+bit-squeeze"`` → ``frozenset({"kernel-reorder", "bit-squeeze"})``, validated."""
    if not isinstance(spec, str):
        raise TypeError(f"mapping strategy {spec!r} is a {type(spec).__name__}, not a str: allowed "
                        f"{', '.join(STRATEGIES)} or a '+' composition")
    if not spec:
        raise ValueError(f"mapping strategy {spec!r} is empty: allowed {', '.join(STRATEGIES)} or a '+' composition")
    parts = spec.split("+")
    for part in parts:
        if part not in STRATEGIES:
            raise ValueError(f"mapping strategy {part!r} (in {spec!r}) is not known: allowed {', '.join(STRATEGIES)}")
    for alone in _ALONE:
        if alone in parts and len(parts) > 1:
            raise ValueError(f"mapping strategy {spec!r}: {alone} does not compose with other strategies")
    return frozenset(parts)


def bitline_levels(w, *, weight_bits: int, cell_bits: int):
    """Differential bitline images of every output, vectorized (the same levels as :func:`weight_slices`).

    Returns
    -------
    levels : ndarray of uint8, shape (K, N, P)
        ``P = 2 · ceil(weight_bits / cell_bits)``; bitline ``j = 2s`` is slice ``s`` of the positive weights,
        ``2s + 1`` slice ``s`` of the negative weights' magnitudes.
    shift, sign : ndarray, shape (P,)
        ``cell_bits · s`` and ``+1`` / ``-1``.
    """
    w = check_weights(w, weight_bits)
    n_slices = -(-weight_bits // cell_bits)
    mask = (1 << cell_bits) - 1
    a = np.abs(w).astype(np.uint32 if weight_bits > 16 else np.uint16)     # narrow: 4× less memory traffic
    pos = w > 0
    levels = np.zeros(w.shape + (2 * n_slices,), dtype=np.uint8)
    for s in range(n_slices):
        sl = ((a >> (s * cell_bits)) & mask).astype(np.uint8)
        levels[:, :, 2 * s] = np.where(pos, sl, 0)
        levels[:, :, 2 * s + 1] = np.where(pos, 0, sl)
    shift = np.repeat(np.arange(n_slices) * cell_bits, 2).astype(np.uint8)
    sign = np.tile(np.array([1, -1], dtype=np.int8), n_slices)
    return levels, shift, sign


def dense_stats(k_total: int, n_total: int, geometry: CrossbarGeometry, *, per_output: int, nonzero_cells: int = 0):
    """Statistics of :func:`map_dense` in closed form (equal to :func:`gen.compiler.metrics.mapping_stats` of it)."""
    g = geometry
    total_cols = n_total * per_output
    if not k_total or not n_total:
        return _stats(0, 0, 0, 0, 0, 0, nonzero_cells, 0)
    row_tiles, col_tiles = -(-k_total // g.xbar_rows), -(-total_cols // g.xbar_cols)
    rows = np.minimum(g.xbar_rows, k_total - np.arange(row_tiles) * g.xbar_rows)
    cols = np.minimum(g.xbar_cols, total_cols - np.arange(col_tiles) * g.xbar_cols)
    ou_r, ou_c = -(-rows // g.ou_rows), -(-cols // g.ou_cols)
    return _stats(row_tiles * col_tiles, int(ou_r.sum() * ou_c.sum()), int(ou_r.max() * ou_c.max()),
                  int(ou_r.sum()) * total_cols, k_total * int(ou_c.sum()), k_total * total_cols, nonzero_cells,
                  k_total * total_cols)


def _stats(crossbars, ous, ous_max_xbar, adc, drives, cells, nonzero_cells, mapped_cells):
    return {"crossbars": int(crossbars), "ous": int(ous), "ous_max_per_xbar": int(ous_max_xbar),
            "adc_per_plane": int(adc), "drives_per_plane": int(drives), "cells_used": int(cells),
            "nonzero_cells": int(nonzero_cells), "mapped_cells": int(mapped_cells)}


@dataclass
class MapPlan:
    """Everything a compacted mapping needs, before the cell image is built; ``stats`` without building it.

    Attributes
    ----------
    strategy : str
    weights : ndarray of int64, shape (K, N)
        The weights the mapping computes with (after bit-sparsity-aware rounding, if any).
    stats : dict
        ``crossbars``, ``ous``, ``ous_max_per_xbar`` (OUs of the busiest crossbar), ``adc_per_plane`` (converted OU
        columns per input plane), ``drives_per_plane`` (driven OU wordlines per input plane), ``cells_used``,
        ``nonzero_cells``, ``mapped_cells`` (stored rows × the bitlines holding a weight slice: the fill's
        numerator, :mod:`gen.compiler.metrics`); for compacted strategies also ``order`` (``output-major``,
        ``output-major, packed`` or ``slice-major, packed``) and ``slots`` (``shared`` or ``single``); for
        ``bit-slice`` also ``bit_slice_crossbars`` (one significance per crossbar, before squeeze-out).
    info : dict
        Strategy details for ``TileMapping.info`` (rounding report, order, permutation).
    """

    strategy: str
    geometry: CrossbarGeometry
    weights: np.ndarray
    weight_bits: int
    encoding: str
    stats: dict
    info: dict = field(default_factory=dict)
    _layout: dict | None = None

    def __repr__(self):
        k, n = self.weights.shape
        stats = ", ".join(f"{key}={self.stats[key]}" for key in ("crossbars", "ous", "adc_per_plane")
                          if key in self.stats)
        return (f"MapPlan(strategy={self.strategy!r}, weights={k}×{n}, weight_bits={self.weight_bits}, "
                f"encoding={self.encoding!r}, {stats})")

    def mapping(self) -> TileMapping:
        """Build and validate the :class:`TileMapping` (the cell image is only materialized here)."""
        if self._layout is None:
            mapping = map_dense(self.weights, self.geometry, weight_bits=self.weight_bits, encoding=self.encoding)
            return mapping.replace(info={**mapping.info, **self.info})
        return _materialize(self, **self._layout)


def _cumsum0(a):
    out = np.zeros(len(a) + 1, dtype=np.int64)
    np.cumsum(a, out=out[1:])
    return out


def _groups(levels_flat, order, geometry):
    """Bitline order → column groups of ``ou_cols`` bitlines and their compacted rows (independent of packing)."""
    oc = geometry.ou_cols
    k_total = levels_flat.shape[0]
    n_groups = -(-len(order) // oc)
    order_pad = np.full(n_groups * oc, -1, dtype=np.int64)
    order_pad[:len(order)] = order
    if len(order) == n_groups * oc == levels_flat.shape[1] and (order == np.arange(len(order))).all():
        grouped = levels_flat                                        # identity order: no copy
    else:
        grouped = np.zeros((k_total, n_groups * oc), dtype=np.uint8)
        grouped[:, :len(order)] = np.take(levels_flat, order, axis=1)  # np.take: far faster than fancy indexing
    if oc % 8 == 0:                                                  # 8 cells at a time
        nz = (grouped.view(np.uint64).reshape(k_total, n_groups, oc // 8) != 0).any(axis=2)
    else:
        nz = (grouped.reshape(k_total, n_groups, oc) != 0).any(axis=2)   # (K, G): row k stored in group g
    pos = np.cumsum(nz, axis=0, dtype=np.int32) - 1                  # compacted position of every stored row
    return dict(order_pad=order_pad, grouped=grouped, nz=nz, pos=pos, lg=nz.sum(axis=0).astype(np.int64))


def shared_slot_starts(rows, *, xbar_rows: int, ou_rows: int) -> np.ndarray:
    """First wordline address of every column group under shared-slot packing.

    Addresses run slot by slot (slot ``s`` holds ``s·xbar_rows … (s+1)·xbar_rows - 1``); a group's ``rows[g]``
    compacted rows take consecutive addresses, and the next group starts at the next OU row-group boundary (a
    multiple of ``ou_rows`` inside a slot, or the next slot), so no OU holds rows of two groups. A group with no
    rows takes nothing. Exact and sequential; vectorized when ``ou_rows`` divides ``xbar_rows``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if xbar_rows % ou_rows == 0:
        return ou_rows * _cumsum0(-(-rows // ou_rows))[:-1]
    starts = np.empty(len(rows), dtype=np.int64)
    address = 0
    for g, count in enumerate(rows.tolist()):
        starts[g] = address
        if count:
            slot, offset = divmod(address + count, xbar_rows)
            address = slot * xbar_rows + min(-(-offset // ou_rows) * ou_rows, xbar_rows)
    return starts


def _place(groups, geometry, shared):
    """Column groups → wordline addresses → slots and OUs: one group per slot, or shared slots."""
    g = geometry
    rows_x, orow = g.xbar_rows, g.ou_rows
    lg, nz, pos = groups["lg"], groups["nz"], groups["pos"]
    rg_per_slot = -(-rows_x // orow)
    per_xbar = g.xbar_cols // g.ou_cols
    if shared:
        start = shared_slot_starts(lg, xbar_rows=rows_x, ou_rows=orow)
    else:
        start = rows_x * _cumsum0(-(-lg // rows_x))[:-1]
    end = start + lg

    def row_group(address):                                          # global OU row-group index of an address
        return (address // rows_x) * rg_per_slot + (address % rows_x) // orow

    first = row_group(start)
    n_ou_g = np.where(lg > 0, row_group(np.maximum(end - 1, 0)) - first + 1, 0)
    ou_off = _cumsum0(n_ou_g)
    n_ous = int(ou_off[-1])
    ou_group = np.repeat(np.arange(len(lg)), n_ou_g)
    index = first[ou_group] + np.arange(n_ous) - ou_off[ou_group]
    slot, rg = index // rg_per_slot, index % rg_per_slot
    lo = slot * rows_x + rg * orow
    hi = np.minimum(lo + orow, (slot + 1) * rows_x)
    ou_rows_driven = np.minimum(end[ou_group], hi) - np.maximum(start[ou_group], lo)
    n_slots = -(-int(end.max(initial=0)) // rows_x)
    n_xbars = -(-n_slots // per_xbar)
    # (K, G) tables as large as the layer's cell image: int32 (addresses and OU indices stay far below 2**31)
    address = start.astype(np.int32)[None, :] + pos                 # meaningful where nz
    row_ou = np.where(nz, (ou_off[:-1] - first).astype(np.int32)[None, :] + row_group(address), -1)
    xbar, position = _slot_place(slot, n_xbars=n_xbars, per_xbar=per_xbar, spread=shared)
    return dict(groups, start=start, row_ou=row_ou, n_xbars=n_xbars, spread=shared,
                ou_xbar=xbar.astype(np.int32), ou_row_group=rg.astype(np.int32),
                ou_col_group=position.astype(np.int32), ou_group=ou_group, ou_rows_driven=ou_rows_driven)


def _slot_place(slot, *, n_xbars, per_xbar, spread):
    """Crossbar and OU column position of slots: crossbar by crossbar (one group per slot), or spread round-robin
    over the crossbars (shared slots: every slot but the last is full, so this balances the crossbars' OU queues,
    which set the cycles)."""
    if spread:
        return slot % max(n_xbars, 1), slot // max(n_xbars, 1)
    return slot // per_xbar, slot % per_xbar


def _with_mask(base, oc, squeeze):
    """The layout with its OU column mask — every present bitline, or (squeeze) only those with a non-zero cell
    in the OU's rows — and its statistics."""
    order_pad, ou_group, row_ou, grouped = base["order_pad"], base["ou_group"], base["row_ou"], base["grouped"]
    n_groups, n_ous = len(order_pad) // oc, len(ou_group)
    assigned = order_pad.reshape(n_groups, oc) >= 0                   # bitlines a group holds (not padding)
    if squeeze:
        mask = np.zeros((n_ous, oc), dtype=bool)
        cells = grouped.reshape(grouped.shape[0], n_groups, oc)
        for t in range(oc):
            mask[row_ou[cells[:, :, t] != 0], t] = True
    else:
        mask = assigned[ou_group]
    driven = base["ou_rows_driven"]
    stats = _stats(base["n_xbars"], n_ous, np.bincount(base["ou_xbar"], minlength=1).max() if n_ous else 0,
                   mask.sum(), driven.sum(), (driven * mask.sum(axis=1)).sum(), np.count_nonzero(grouped),
                   (driven * assigned.sum(axis=1)[ou_group]).sum())
    layout = {k: v for k, v in base.items() if k != "ou_rows_driven"}
    return {**layout, "mask": mask}, stats


def _materialize(plan, *, order_pad, grouped, nz, pos, lg, start, row_ou, n_xbars, spread, ou_xbar, ou_row_group,
                 ou_col_group, ou_group, mask, shift, sign, per_output):
    g = plan.geometry
    oc, rows_x = g.ou_cols, g.xbar_rows
    k_total, n_total = plan.weights.shape
    per_xbar = g.xbar_cols // oc
    n_groups = nz.shape[1]
    levels = np.zeros((n_xbars, rows_x, g.xbar_cols), dtype=np.uint8)
    kk, gg = np.nonzero(nz)
    aa = start[gg] + pos[kk, gg]
    xbar, position = _slot_place(aa // rows_x, n_xbars=n_xbars, per_xbar=per_xbar, spread=spread)
    cols = position[:, None] * oc + np.arange(oc)
    levels[xbar[:, None], (aa % rows_x)[:, None], cols] = grouped.reshape(k_total, n_groups, oc)[kk, gg]
    ou_inputs = np.full((len(ou_xbar), g.ou_rows), -1, dtype=np.int32)
    ou_inputs[row_ou[kk, gg], (aa % rows_x) % g.ou_rows] = kk
    # per-OU routing (mapping format v2): an OU column serves the bitline its group holds there, so a physical
    # bitline serves another output in the row groups of another group (shared slots)
    ids = order_pad.reshape(n_groups, oc)[ou_group]                       # (n_ous, oc) bitline ids, -1 padding
    role = np.maximum(ids, 0) % per_output
    mapping = TileMapping(
        geometry=g, n_inputs=k_total, n_outputs=n_total, levels=levels, ou_xbar=ou_xbar, ou_row_group=ou_row_group,
        ou_col_group=ou_col_group, ou_inputs=ou_inputs, ou_col_mask=mask,
        ou_col_output=np.where(mask, ids // per_output, -1).astype(np.int32),
        ou_col_shift=np.where(mask, shift[role], 0).astype(np.uint8),
        ou_col_sign=np.where(mask, sign[role], 1).astype(np.int8),
        info={"strategy": plan.strategy, "encoding": plan.encoding, "weight_bits": plan.weight_bits, **plan.info})
    return check_routing(mapping, weight_bits=plan.weight_bits)


def plan_layer(w, geometry: CrossbarGeometry, *, strategy: str = "dense", weight_bits: int = 8,
               encoding: str = "differential", round_error: int = 0, slots: str = "shared",
               cache: dict | None = None) -> MapPlan:
    """Plan the mapping of an integer ``K × N`` matrix with a strategy (see the module docstring).

    ``slots`` (compacted strategies): ``"shared"`` (default) lets column groups share slots through the per-OU
    routing where that needs fewer crossbars, ADC conversions or OUs; ``"single"`` keeps one column group per slot
    (the packing before mapping format v2, for comparison). Dense ignores it.

    ``round_error`` (integer weight units) enables bit-sparsity-aware rounding; it needs ``bit-squeeze``.
    ``cache``: pass the same dict to plan one matrix with several strategies (the bench does); it must not be
    shared between different matrices or geometries.

    Raises
    ------
    ValueError
        Unknown or invalid strategy composition, a sparse strategy with ``offset`` encoding, ``round_error``
        without ``bit-squeeze``, weights that are not integers or do not fit ``weight_bits``.
    """
    parts = parse_strategy(strategy)
    slots = checks.check_choice("slots", slots, SLOTS)
    if round_error:
        cache = None                       # rounded weights differ from the matrix the cache describes
    checks.check_instance("geometry", geometry, CrossbarGeometry)
    round_error = checks.check_int("round_error", round_error, 0)
    w = check_weights(w, weight_bits)
    g = geometry
    per_output = columns_per_output(weight_bits=weight_bits, cell_bits=g.cell_bits, encoding=encoding)
    if round_error and "bit-squeeze" not in parts:
        raise ValueError(f"round_error = {round_error} needs the bit-squeeze strategy, not {strategy!r}")
    info = {}
    if round_error:
        w, info["rounding"] = bit_sparse_round(w, max_error=round_error, cell_bits=g.cell_bits,
                                               weight_bits=weight_bits)
    cache = {} if cache is None else cache
    if encoding == "differential" and "levels" not in cache:
        cache["levels"] = bitline_levels(w, weight_bits=weight_bits, cell_bits=g.cell_bits)
    if parts == {"dense"}:
        if encoding == "differential":
            nonzero = int(np.count_nonzero(cache["levels"][0]))
        else:
            nonzero = sum(int(np.count_nonzero(b.levels)) for col in
                          weight_slices(w, weight_bits=weight_bits, cell_bits=g.cell_bits, encoding=encoding)
                          for b in col)
        stats = dense_stats(*w.shape, g, per_output=per_output, nonzero_cells=nonzero)
        return MapPlan("dense", g, w, weight_bits, encoding, stats, info)
    if encoding != "differential":
        raise ValueError(f"mapping strategy {strategy!r} needs encoding 'differential', not {encoding!r}: the offset "
                         "encoding stores zero weights as non-zero cells")
    if parts == {"bit-slice"}:
        return _plan_bit_slice(w, g, weight_bits, cache["levels"], info)
    squeeze = "bit-squeeze" in parts
    reorder = "kernel-reorder" in parts
    levels, shift, sign = cache["levels"]
    k_total, n_total, p = levels.shape
    flat = levels.reshape(k_total, n_total * p)
    # candidate layouts (order, permutation, packed): the strategy keeps the best; bit-squeeze's set includes
    # ou-sparse's layout and kernel-reorder's includes the identity, so composing never does worse
    candidates = [("output-major", False, False)]
    if squeeze:
        candidates += [("output-major", False, True), ("slice-major", False, True)]
    if reorder:
        candidates += [(order, True, packed) for order, _, packed in candidates]
    packings = (False, True) if slots == "shared" else (False,)
    candidates = [c + (shared,) for c in candidates for shared in packings]
    best = None
    for name, permuted, packed, shared in candidates:
        group_size = g.ou_cols // p if name == "output-major" else g.ou_cols   # outputs per column group
        if permuted and group_size <= 1:
            continue
        perm = np.arange(n_total)
        if permuted:
            if ("perm", group_size) not in cache:
                cache["perm", group_size] = group_outputs(w != 0, group_size)
            perm = cache["perm", group_size]
        if packed:
            if "alive" not in cache:
                cache["alive"] = flat.any(axis=0)
            if name == "output-major" and cache["alive"].all():
                continue                                             # nothing to pack: the unpacked candidate
        key = (name, permuted, packed)
        if key not in cache:
            ids = perm[:, None] * p + np.arange(p) if name == "output-major" else perm[None, :] * p + np.arange(p)[:, None]
            order = ids.ravel()
            if packed:
                order = order[cache["alive"][order]]
            cache[key] = _groups(flat, order, g)
        if key + (shared,) not in cache:
            cache[key + (shared,)] = _place(cache[key], g, shared)
        if key + (shared, squeeze) not in cache:
            cache[key + (shared, squeeze)] = _with_mask(cache[key + (shared,)], g.ou_cols, squeeze)
        layout, stats = cache[key + (shared, squeeze)]
        # ties keep the earlier candidate: one group per slot, so sharing appears only where it gains something
        rank = (stats["crossbars"], stats["adc_per_plane"], stats["ous"])
        if best is None or rank < best[0]:
            best = (rank, name + (", packed" if packed else ""), layout, stats, perm, permuted, shared)
    _, name, layout, stats, perm, permuted, shared = best
    packing = "shared" if shared else "single"
    stats = {**stats, "order": name, "slots": packing}
    info = {**info, "order": name, "slots": packing}
    if permuted:
        info["output_order"] = perm.tolist()
    canonical = "+".join(s for s in STRATEGIES if s in parts)
    return MapPlan(canonical, g, w, weight_bits, encoding, stats, info,
                   _layout={**layout, "shift": shift, "sign": sign, "per_output": p})


def _slice_major_alive(levels_flat, shift, n_total, p):
    """Bitline ids (``output · p + role``) slice-major — significance, polarity, then output — without the bitlines
    that are zero over the whole layer; and the significance (shift) of each."""
    ids = (np.arange(n_total)[None, :] * p + np.arange(p)[:, None]).ravel()
    ids = ids[levels_flat.any(axis=0)[ids]]
    return ids, shift[ids % p]


def _plan_bit_slice(w, g, weight_bits, levels_info, info):
    """The ``bit-slice`` strategy: bit-slice mapping (one significance per crossbar, counted) then squeeze-out (all
    significances packed together: the mapping emitted)."""
    levels, shift, sign = levels_info
    k_total, n_total, p = levels.shape
    flat = levels.reshape(k_total, n_total * p)
    order, significance = _slice_major_alive(flat, shift, n_total, p)
    per_xbar = g.xbar_cols // g.ou_cols
    per_significance, subs = {}, []
    for s in np.unique(significance).tolist():
        sub = _groups(flat, order[significance == s], g)
        start = shared_slot_starts(sub["lg"], xbar_rows=g.xbar_rows, ou_rows=g.ou_rows)
        slots = -(-int((start + sub["lg"]).max(initial=0)) // g.xbar_rows)
        per_significance[int(s)] = -(-slots // per_xbar)
        subs.append(sub)
    # squeeze-out: the significances' column groups packed together (never more crossbars than one significance
    # per crossbar); with several bitlines per group, groups straddling two significances are tried too
    joint = {key: np.concatenate([sub[key] for sub in subs], axis=1 if key in ("grouped", "nz", "pos") else 0)
             for key in ("order_pad", "grouped", "nz", "pos", "lg")} if subs else _groups(flat, order, g)
    candidates = [joint] if g.ou_cols == 1 else [joint, _groups(flat, order, g)]
    best = None
    for groups in candidates:
        layout, stats = _with_mask(_place(groups, g, True), g.ou_cols, True)
        if best is None or (stats["crossbars"], stats["adc_per_plane"], stats["ous"]) < best[0]:
            best = ((stats["crossbars"], stats["adc_per_plane"], stats["ous"]), layout, stats)
    _, layout, stats = best
    bit_slice = sum(per_significance.values())
    stats = {**stats, "order": "slice-major, packed", "slots": "shared", "bit_slice_crossbars": bit_slice}
    info = {**info, "order": "slice-major, packed", "slots": "shared", "significance_crossbars": per_significance,
            "bit_slice_crossbars": bit_slice, "squeezed_out_crossbars": bit_slice - int(stats["crossbars"])}
    return MapPlan("bit-slice", g, w, weight_bits, "differential", stats, info,
                   _layout={**layout, "shift": shift, "sign": sign, "per_output": p})


def map_layer(w, geometry: CrossbarGeometry, *, strategy: str = "dense", weight_bits: int = 8,
              encoding: str = "differential", round_error: int = 0, slots: str = "shared") -> TileMapping:
    """:func:`plan_layer` then build the :class:`TileMapping` (``hw.formats.mvm.mvm`` of it equals
    ``x @ plan.weights`` with a lossless ADC; ``plan.weights`` is ``w`` unless ``round_error`` moved some)."""
    return plan_layer(w, geometry, strategy=strategy, weight_bits=weight_bits, encoding=encoding,
                      round_error=round_error, slots=slots).mapping()
