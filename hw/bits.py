"""Pack numpy arrays into the flat bit vectors of Amaranth data layouts, and back.

The layouts in ``hw/*/beats.py`` are the one definition of every beat format. The RTL uses them as
``amaranth.lib.data`` views; host drivers, testbenches and manifests use this module to turn the same
layouts into integers, so a format can only ever be defined once.

A layout is flattened into leaves: scalar fields with a path (the keys and indices leading to them), a bit
offset, a width and a signedness. Arrays of values travel as numpy arrays whose trailing axes are the array
dimensions of the layout, one leading axis per beat.
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["Leaf", "leaves", "pack", "unpack", "describe"]


@dataclass(frozen=True)
class Leaf:
    """One scalar field of a layout: ``path`` (keys/indices from the top), ``offset`` and ``width`` in bits."""
    path: tuple
    offset: int
    width: int
    signed: bool


def leaves(layout, _path=(), _offset=0):
    """All scalar fields of ``layout`` (a ``data.Layout`` or a plain shape), ordered by offset."""
    if not isinstance(layout, data.Layout):
        shape = Shape.cast(layout)
        return [Leaf(_path, _offset, shape.width, shape.signed)] if shape.width else []
    out = []
    for key, field in layout:
        out += leaves(field.shape, _path + (key,), _offset + field.offset)
    return sorted(out, key=lambda leaf: leaf.offset)


def _array_paths(layout):
    """For layouts that are (nested) arrays of one struct or scalar: (array dims, element leaves)."""
    dims = []
    while isinstance(layout, data.ArrayLayout):
        dims.append(layout.length)
        layout = layout.elem_shape
    return tuple(dims), layout


def pack(layout, values):
    """Pack beats into integers.

    Parameters
    ----------
    layout : data.ArrayLayout
        A (nested) array layout whose element is a scalar shape or a ``StructLayout`` of scalars.
    values : ndarray or dict of ndarray
        For a scalar element: an integer array of shape ``(beats, *dims)``. For a struct element: a dict
        from field name to such an array. Every value must fit its field's width and signedness.

    Returns
    -------
    list of int
        One non-negative integer per beat, bit 0 of the layout at bit 0 of the integer.

    Raises
    ------
    ValueError
        If a value does not fit its field, naming the field, the beat and element, and the allowed range.
    """
    dims, elem = _array_paths(layout)
    fields = ({None: values} if not isinstance(elem, data.StructLayout)
              else {name: values[name] for name, _ in elem})
    elem_leaves = leaves(elem)
    elem_bits = Shape.cast(elem).width if not isinstance(elem, data.Layout) else elem.size
    arrays = {}
    beats = None
    for leaf in elem_leaves:
        name = leaf.path[0] if leaf.path else None
        arr = np.asarray(fields[name], dtype=np.int64)
        if arr.shape[1:] != dims:
            raise ValueError(f"field {name or 'value'}: expected shape (beats, {', '.join(map(str, dims))}), "
                             f"got {arr.shape}")
        lo, hi = (-(1 << (leaf.width - 1)), (1 << (leaf.width - 1)) - 1) if leaf.signed else (0, (1 << leaf.width) - 1)
        bad = np.argwhere((arr < lo) | (arr > hi))
        if len(bad):
            pos = tuple(int(i) for i in bad[0])
            raise ValueError(f"field {name or 'value'} at beat {pos[0]}, element {pos[1:]} = {arr[pos]} "
                             f"does not fit {leaf.width} {'signed' if leaf.signed else 'unsigned'} bits "
                             f"(allowed {lo} … {hi})")
        arrays[name] = arr.reshape(arr.shape[0], -1)
        beats = arr.shape[0]
    n_elem = int(np.prod(dims, dtype=np.int64))
    bits = np.zeros((beats, n_elem, elem_bits), dtype=np.uint8)
    for leaf in elem_leaves:
        vals = arrays[leaf.path[0] if leaf.path else None].astype(np.uint64)   # two's complement wrap
        shifts = np.arange(leaf.width, dtype=np.uint64)
        bits[:, :, leaf.offset:leaf.offset + leaf.width] = (vals[..., None] >> shifts) & np.uint64(1)
    packed = np.packbits(bits.reshape(beats, -1), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack(layout, words):
    """Inverse of :func:`pack`: integers → array ``(beats, *dims)`` (or dict of them for struct elements).

    Signed fields are sign-extended. Bits above the layout's size are ignored.
    """
    dims, elem = _array_paths(layout)
    elem_bits = Shape.cast(elem).width if not isinstance(elem, data.Layout) else elem.size
    n_elem = int(np.prod(dims, dtype=np.int64))
    nbytes = (layout.size + 7) // 8
    raw = np.frombuffer(b"".join((int(w) & ((1 << layout.size) - 1)).to_bytes(nbytes, "little") for w in words),
                        dtype=np.uint8).reshape(len(words), nbytes)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :layout.size].reshape(len(words), n_elem, elem_bits)
    out = {}
    for leaf in leaves(elem):
        weights = np.left_shift(np.int64(1), np.arange(leaf.width, dtype=np.int64))
        if leaf.signed:
            weights[-1] = -(1 << (leaf.width - 1))       # the sign bit weighs -2**(width-1)
        vals = bits[:, :, leaf.offset:leaf.offset + leaf.width].astype(np.int64) @ weights   # wraps mod 2**64
        out[leaf.path[0] if leaf.path else None] = vals.reshape((len(words),) + dims)
    return out[None] if None in out else out


def describe(layout):
    """JSON-ready description of a layout: total width and every leaf's path, offset, width, signedness.

    Arrays are summarized by their dimensions and one element's fields (offsets relative to the element),
    plus the element stride, rather than listing thousands of leaves.
    """
    dims, elem = _array_paths(layout)
    elem_bits = Shape.cast(elem).width if not isinstance(elem, data.Layout) else elem.size
    return {
        "width": layout.size,
        "dims": list(dims),
        "element_stride": elem_bits,
        "element_fields": [
            {"name": ".".join(map(str, leaf.path)) or "value", "offset": leaf.offset,
             "width": leaf.width, "signed": leaf.signed}
            for leaf in leaves(elem)
        ],
        "order": "row-major over dims, element 0 at bit 0",
    }
