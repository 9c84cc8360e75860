"""Beat formats, table-entry layouts, op codes and the register map of the RRAM tile: the one definition.

Used by the RTL (``hw/rram/controller.py`` …) as ``amaranth.lib.data`` layouts, by the host driver
(``sim/rram/driver.py``) through :func:`pack_beats`/:func:`unpack_beats`, by the manifest and by docs/rram.md.
Every layout packs from bit 0 upward in the order its fields are listed.

Streams of :class:`hw.rram.tile.RramTile` (all widths follow from an :class:`gen.rram.config.RramTileConfig`):

- ``program`` (in), one cell per beat: ``level`` (cell_bits), ``col``, ``row``, ``xbar`` (unsigned);
- ``tables`` (in), one table beat: ``kind`` (2 bits: :data:`TABLE_HEADER`, :data:`TABLE_OU`, :data:`TABLE_END`;
  kind 2 is reserved) then ``body``, a union of the entry layouts (``header``, ``ou``) at bit 2. Mapping format v2:
  the OU entry carries its columns' routing (output, slice shift, sign); there is no per-bitline column table;
- ``inputs`` (in), one input element per beat: ``value`` (input_bits, raw two's complement bits when signed),
  ``last`` (1 on the vector's final element);
- ``outputs`` (out), one output per beat: ``value`` (signed acc_bits), ``last`` (1 on y[N-1]);
- ``faults`` (out), one logged cell address per beat: ``col``, ``row``, ``xbar``.
"""

from types import SimpleNamespace

import numpy as np
from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from hw.bits import leaves
from hw.formats.mapping import ou_groups

__all__ = ["TABLE_HEADER", "TABLE_OU", "TABLE_END", "ERRORS", "ERROR_CODES", "REGISTERS", "REGISTER_ADDR",
           "REG_ADDR_BITS", "STATUS_BITS", "params", "params_of", "widths", "program_layout", "cell_addr_layout",
           "header_layout", "ou_entry_layout", "route_layout", "table_layout", "input_layout", "BUSY_REGISTERS",
           "TABLE_RESERVED", "lane_depth",
           "output_layout", "layouts", "pack_beats", "unpack_beats", "table_beats"]

TABLE_HEADER, TABLE_OU, TABLE_RESERVED, TABLE_END = 0, 1, 2, 3

# Error codes in STATUS[7:4] (the most recent rejected operation; a table HEADER beat clears it).
ERRORS = {
    0: ("OK", "no operation rejected since reset or the last table HEADER"),
    1: ("BAD_CELL", "program beat addresses a cell outside the tile: the beat is dropped"),
    2: ("BAD_HEADER", "table HEADER asks for more OUs, inputs or outputs than the tables hold, or zero inputs/outputs"),
    3: ("BAD_OU", "OU entry: crossbar/wordline group/bitline group out of range, input index outside -1 … K-1 "
                  "or on an absent wordline, mask bit on an absent bitline, more entries than the HEADER said, or "
                  "more entries for one crossbar than its OU queue holds"),
    4: ("BAD_ROUTE", "OU entry routing: a column's output outside -1 … N-1 or its shift >= weight_bits"),
    5: ("BAD_SEQUENCE", "OU or END beat while no load is open (before any HEADER, or after END), END before the "
                        "HEADER's OU count, or a beat of the reserved kind 2"),
    6: ("NO_TABLES", "input vector while no valid tables are loaded: the vector is dropped, no output"),
    7: ("BAD_VECTOR", "input vector whose length (beats up to `last`) differs from the HEADER's K: dropped, no output"),
    8: ("UNUSED_COLUMN", "OU entry: its mask converts a column whose routing output is -1"),
}
ERROR_CODES = {name: code for code, (name, _) in ERRORS.items()}

# Register map: reg_addr → reg_data (counter_bits wide, read combinationally, no side effects).
REGISTERS = {
    0: ("STATUS", "bit 0 busy (an operation is in progress), bit 1 tables valid, bit 2 fault-log overflow, "
                  "bits 7:4 last error code (ERRORS)"),
    1: ("ERRORS", "operations rejected (any error code), wraps"),
    2: ("FAULT_COUNT", "cells that failed write-verify (all of them, logged or not), wraps"),
    3: ("FAULT_DROPPED", "failed cells not logged because the fault FIFO was full, wraps"),
    4: ("CYCLES", "clock cycles since reset, wraps"),
    5: ("OU_ACTIVATIONS", "READ_OU operations issued: scheduled OUs × input planes per MVM, wraps"),
    6: ("ADC_CONVERSIONS", "converted (masked) OU columns × input planes, wraps"),
    7: ("SKIPPED_OUS", "OUs not activated relative to a dense schedule of the whole tile "
                       "((n_xbars·row_groups·col_groups − n_ous) × planes per MVM), wraps"),
    8: ("VERIFY_ITERS", "write + read-back iterations of write-verify (one per WRITE issued), wraps"),
    9: ("CELLS_PROGRAMMED", "program beats completed (verified or logged as faulty), wraps"),
    10: ("MVMS", "MVMs completed with output, wraps"),
    11: ("STALLS", "shift-and-add stall cycles: conversion cycles beyond ceil(converted / adcs_per_xbar) per OU "
                   "activation (columns of one OU routed to different outputs), summed over crossbars, wraps"),
    **{12 + x: (f"BUSY{x}", f"shift-and-add cycles of crossbar {x}: the conversion cycles of its OU activations "
                            f"(including stalls), wraps") for x in range(4)},
}
REGISTER_ADDR = {name: addr for addr, (name, _) in REGISTERS.items()}
STATUS_BITS = {"busy": 0, "tables_valid": 1, "fault_overflow": 2, "error": 4}
REG_ADDR_BITS = 4
BUSY_REGISTERS = 4
"""Per-crossbar busy counters in the register map: crossbars 0 … 3 (a wider tile's further lanes are not mapped)."""


def _ubits(value: int) -> int:
    """Unsigned bits holding ``0 … value`` (at least 1)."""
    return max(1, int(value).bit_length())


def widths(cfg) -> SimpleNamespace:
    """Field widths of a config (anything with RramTileConfig's attributes)."""
    return SimpleNamespace(
        xbar=_ubits(cfg.n_xbars - 1), row=_ubits(cfg.xbar_rows - 1), col=_ubits(cfg.xbar_cols - 1),
        row_group=_ubits(cfg.row_groups - 1), col_group=_ubits(cfg.col_groups - 1),
        n_ous=_ubits(cfg.ou_table_depth), n_inputs=_ubits(cfg.input_capacity), n_outputs=_ubits(cfg.output_capacity),
        input_index=_ubits(cfg.input_capacity - 1) + 1,     # signed: -1 marks an undriven wordline
        output_index=_ubits(cfg.output_capacity - 1) + 1,   # signed: -1 marks an unused bitline
        shift=_ubits(cfg.weight_bits - 1))


def program_layout(cfg):
    """Program beat: the target ``level`` of cell (``xbar``, ``row``, ``col``)."""
    w = widths(cfg)
    return data.StructLayout({"level": unsigned(cfg.cell_bits), "col": unsigned(w.col), "row": unsigned(w.row),
                              "xbar": unsigned(w.xbar)})


def cell_addr_layout(cfg):
    """Fault-log entry: the address of a cell that never verified."""
    w = widths(cfg)
    return data.StructLayout({"col": unsigned(w.col), "row": unsigned(w.row), "xbar": unsigned(w.xbar)})


def header_layout(cfg):
    """Table HEADER body: OU count of the schedule, K and N."""
    w = widths(cfg)
    return data.StructLayout({"n_ous": unsigned(w.n_ous), "n_inputs": unsigned(w.n_inputs),
                              "n_outputs": unsigned(w.n_outputs)})


def route_layout(cfg):
    """Routing of one OU column: ``output`` (signed, -1 = none), slice ``shift``, ``negative`` (1 for sign -1)."""
    w = widths(cfg)
    return data.StructLayout({"output": signed(w.output_index), "shift": unsigned(w.shift),
                              "negative": unsigned(1)})


def ou_entry_layout(cfg):
    """OU entry (also the OU queue's memory word): crossbar, groups, per-wordline input index, column mask, per-column
    routing.

    ``inputs[r]`` (signed) is the logical input driving wordline ``row_group·ou_rows + r``, -1 when undriven;
    ``mask`` bit c converts bitline ``col_group·ou_cols + c``, whose code accumulates into ``route[c].output``
    with shift ``route[c].shift`` and sign ``route[c].negative``.
    """
    w = widths(cfg)
    return data.StructLayout({"xbar": unsigned(w.xbar), "row_group": unsigned(w.row_group),
                              "col_group": unsigned(w.col_group),
                              "inputs": data.ArrayLayout(signed(w.input_index), cfg.ou_rows),
                              "mask": unsigned(cfg.ou_cols),
                              "route": data.ArrayLayout(route_layout(cfg), cfg.ou_cols)})


def lane_depth(cfg) -> int:
    """Entries of one crossbar's OU queue: ``min(ou_table_depth, row_groups·col_groups)``."""
    return min(cfg.ou_table_depth, cfg.row_groups * cfg.col_groups)


def table_layout(cfg):
    """Table beat: ``kind`` then the union ``body`` (``header`` or ``ou``; END has no body)."""
    return data.StructLayout({"kind": unsigned(2), "body": data.UnionLayout(
        {"header": header_layout(cfg), "ou": ou_entry_layout(cfg)})})


def input_layout(cfg):
    """Input beat: one element of x (its raw ``input_bits``) and ``last``."""
    return data.StructLayout({"value": signed(cfg.input_bits) if cfg.input_signed else unsigned(cfg.input_bits),
                              "last": unsigned(1)})


def output_layout(cfg):
    """Output beat: one element of y (signed ``acc_bits``, wrapping) and ``last``."""
    return data.StructLayout({"value": signed(cfg.acc_bits), "last": unsigned(1)})


def layouts(cfg) -> dict:
    """Every stream's beat layout, by stream name."""
    return {"program": program_layout(cfg), "tables": table_layout(cfg), "inputs": input_layout(cfg),
            "outputs": output_layout(cfg), "faults": cell_addr_layout(cfg)}


def pack_beats(layout, fields: dict, *, beats: int | None = None) -> list[int]:
    """Pack beats of a struct layout: ``fields`` maps a field name to an array ``(beats, *dims)`` (or a scalar
    broadcast to every beat). Fields left out are 0. Nested arrays of scalars are indexed by the trailing axes; a
    field of a struct inside an array is named with a dot (``"route.output"``: array ``(beats, ou_cols)``).

    Raises
    ------
    ValueError
        If a value does not fit its field, naming the field, the beat and the allowed range.
    """
    arrays = {name: np.asarray(value, dtype=np.int64) for name, value in fields.items()}
    if beats is None:
        beats = max((a.shape[0] for a in arrays.values() if a.ndim), default=1)
    words = [0] * beats
    def split(path):
        # ("route", 3, "output") → key "route.output", index (3,): struct fields name, array positions index
        return (".".join(str(p) for p in path if isinstance(p, str)),
                tuple(p for p in path if not isinstance(p, str)))
    known = {split(leaf.path)[0] for leaf in leaves(layout)}
    for name in arrays:
        if name not in known:
            raise ValueError(f"layout has no field {name!r}: fields are {', '.join(sorted(known))}")
    for leaf in leaves(layout):
        name, index = split(leaf.path)
        if name not in arrays:
            continue
        array = arrays[name]
        values = np.broadcast_to(array, (beats,) + array.shape[array.ndim - len(index):] if array.ndim else (beats,))
        values = values[(slice(None),) + index] if index else values
        lo, hi = (-(1 << (leaf.width - 1)), (1 << (leaf.width - 1)) - 1) if leaf.signed else (0, (1 << leaf.width) - 1)
        bad = np.flatnonzero((values < lo) | (values > hi))
        if len(bad):
            where = f"{name}{list(index) if index else ''}"
            raise ValueError(f"field {where} at beat {int(bad[0])} = {int(values[bad[0]])} does not fit "
                             f"{leaf.width} {'signed' if leaf.signed else 'unsigned'} bits (allowed {lo} … {hi})")
        mask = (1 << leaf.width) - 1
        for b, v in enumerate(values.tolist()):
            words[b] |= (v & mask) << leaf.offset
    return words


def unpack_beats(layout, words) -> dict:
    """Inverse of :func:`pack_beats` for scalar fields: ``{name: int64 array (beats,)}``, signed fields extended."""
    out = {}
    for name, field in layout:
        shape = Shape.cast(field.shape)
        width, is_signed = shape.width, shape.signed
        values = [(int(w) >> field.offset) & ((1 << width) - 1) for w in words]
        if is_signed:
            values = [v - (1 << width) if v >> (width - 1) else v for v in values]
        out[name] = np.array(values, dtype=np.int64)
    return out


def table_beats(cfg, kind: int, fields: dict | None = None, *, beats: int | None = None) -> list[int]:
    """Table beats of one ``kind``: the body packed with :func:`pack_beats`, ``kind`` in bits 1:0."""
    layout = table_layout(cfg)
    if kind == TABLE_END:
        return [TABLE_END] * (beats or 1)
    body = {TABLE_HEADER: "header", TABLE_OU: "ou"}[kind]
    offset = dict(layout)["body"].offset
    packed = pack_beats(dict(dict(layout)["body"].shape)[body].shape, fields or {}, beats=beats)
    return [kind | (word << offset) for word in packed]


def params(*, n_xbars, xbar_rows, xbar_cols, cell_bits, weight_bits, input_bits, input_signed, ou_rows, ou_cols,
           ou_table_depth, input_capacity, output_capacity, acc_bits) -> SimpleNamespace:
    """The parameters every layout here depends on, as one namespace (what components pass instead of a config).

    Adds ``row_groups`` and ``col_groups`` (``ceil(xbar_rows / ou_rows)``, ``ceil(xbar_cols / ou_cols)``).
    """
    return SimpleNamespace(n_xbars=n_xbars, xbar_rows=xbar_rows, xbar_cols=xbar_cols, cell_bits=cell_bits,
                           weight_bits=weight_bits, input_bits=input_bits, input_signed=input_signed,
                           ou_rows=ou_rows, ou_cols=ou_cols, ou_table_depth=ou_table_depth,
                           input_capacity=input_capacity, output_capacity=output_capacity, acc_bits=acc_bits,
                           row_groups=ou_groups(xbar_rows, ou_rows), col_groups=ou_groups(xbar_cols, ou_cols))


def params_of(cfg) -> SimpleNamespace:
    """:func:`params` of an :class:`gen.rram.config.RramTileConfig`."""
    return params(n_xbars=cfg.n_xbars, xbar_rows=cfg.xbar_rows, xbar_cols=cfg.xbar_cols, cell_bits=cfg.cell_bits,
                  weight_bits=cfg.weight_bits, input_bits=cfg.input_bits, input_signed=cfg.input_signed,
                  ou_rows=cfg.ou_rows, ou_cols=cfg.ou_cols, ou_table_depth=cfg.ou_table_depth,
                  input_capacity=cfg.input_capacity, output_capacity=cfg.output_capacity, acc_bits=cfg.acc_bits)
