"""Beat formats of the output-stationary core (:class:`~hw.gemm.os_array.SparseOSArray`): the one definition.

A tile computes ``C[rows × cols] = A[rows × K] · W[K × cols]`` with ``K = T · block``; it enters as ``T`` steps, one
per K-block t, each an activation beat and a weight beat (docs/gemm-os-core.md). Packed from bit 0 up:

- activation beat: ``ArrayLayout(ArrayLayout(act, block), rows)``; element ``(i, b)`` is ``A[i, t·block + b]``;
- weight beat: ``StructLayout({"entries": weight_layout(cols, keep, …), "last": 1})``: ``entries`` (at bit 0) is
  the WS array's PE-row weight format (:func:`hw.systolic.beats.weight_layout`), entry ``(j, s)`` holding slot s of
  column j of K-block t; ``last`` (the top bit) marks the tile's final K-block;
- result beat: :func:`hw.systolic.beats.result_layout`, one row of C.

The helpers convert numpy matrices to and from lists of integers with :mod:`hw.bits`.
"""

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from hw import bits
from hw.systolic.beats import index_bits, result_layout, weight_layout

__all__ = ["os_act_layout", "os_weight_layout", "os_layouts", "os_act_beats", "os_weight_beats",
           "os_weights_from_beats", "os_result_beats", "os_results_from_beats"]


def os_act_layout(*, rows, block, act_bits, act_signed):
    """One K-block of a tile's activations: ``block`` values for each of ``rows`` PE rows."""
    return data.ArrayLayout(data.ArrayLayout(signed(act_bits) if act_signed else unsigned(act_bits), block), rows)


def os_weight_layout(*, cols, keep, weight_bits, index_bits):
    """One K-block of a tile's compressed weights (``keep`` entries per column) and the tile's ``last`` flag."""
    return data.StructLayout({
        "entries": weight_layout(cols=cols, keep=keep, weight_bits=weight_bits, index_bits=index_bits),
        "last": 1,
    })


def os_layouts(p):
    """The three layouts for an object with the core's parameters as attributes (duck-typed)."""
    return {
        "acts": os_act_layout(rows=p.rows, block=p.block, act_bits=p.act_bits, act_signed=p.act_signed),
        "weights": os_weight_layout(cols=p.cols, keep=p.keep, weight_bits=p.weight_bits,
                                    index_bits=index_bits(keep=p.keep, block=p.block)),
        "results": result_layout(cols=p.cols, acc_bits=p.acc_bits),
    }


def os_act_beats(p, A):
    """Activation tile ``A[rows × T·block]`` → ``T`` beats, K-block 0 first.

    Raises
    ------
    ValueError
        If A is not ``rows`` high with a multiple of ``block`` columns (at least one block), or a value does
        not fit ``act_bits``.
    """
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != p.rows or A.shape[1] % p.block or A.shape[1] == 0:
        raise ValueError(f"A must have shape (rows, T·block) = ({p.rows}, multiple of {p.block}, ≥ {p.block}), "
                         f"got {A.shape}")
    blocks = A.reshape(p.rows, A.shape[1] // p.block, p.block).transpose(1, 0, 2)   # (T, rows, block)
    return bits.pack(os_layouts(p)["acts"], blocks)


def os_weight_beats(p, values, indices):
    """Compressed weights (``values``, ``indices``: ``[T × cols × keep]`` from ``compress_nm``) → ``T`` beats.

    The last beat has ``last = 1``, the others 0. Dense configs carry no index: slot s must hold position s.

    Raises
    ------
    ValueError
        Bad shapes, a dense slot not holding its own position, or a value/index that does not fit its field.
    """
    values, indices = np.asarray(values), np.asarray(indices)
    if values.ndim != 3 or values.shape[0] == 0 or values.shape[1:] != (p.cols, p.keep) \
            or indices.shape != values.shape:
        raise ValueError(f"weights must have shape (T ≥ 1, cols, keep) = (T, {p.cols}, {p.keep}), "
                         f"got values {values.shape} and indices {indices.shape}")
    layout = os_layouts(p)["weights"]
    entries = layout["entries"].shape
    fields = {"value": values}
    if index_bits(keep=p.keep, block=p.block):
        fields["index"] = indices
    elif np.any(indices != np.arange(p.keep)):
        t, j, s = (int(i) for i in np.argwhere(indices != np.arange(p.keep))[0])
        raise ValueError(f"dense config: K-block {t}, column {j}, slot {s} must hold position {s}, "
                         f"got {indices[t, j, s]}")
    words = bits.pack(entries, fields)
    last = 1 << layout["last"].offset
    return [w | (last if t == len(words) - 1 else 0) for t, w in enumerate(words)]


def os_weights_from_beats(p, words):
    """Inverse of :func:`os_weight_beats`: ``(values, indices, last)`` as ``[T × cols × keep]`` arrays and ``[T]``.

    Dense configs give ``indices[t, j, s] = s``.
    """
    layout = os_layouts(p)["weights"]
    fields = bits.unpack(layout["entries"].shape, words)
    values = fields["value"]
    indices = fields["index"] if "index" in fields else np.broadcast_to(np.arange(p.keep), values.shape).copy()
    last = np.array([(int(w) >> layout["last"].offset) & 1 for w in words], dtype=np.int64)
    return values, indices, last


def os_result_beats(p, C):
    """Result tile ``C[rows × cols]`` (or several stacked) → one beat per row, row 0 first."""
    return bits.pack(os_layouts(p)["results"], np.asarray(C))


def os_results_from_beats(p, words):
    """Result beats → ``C[len(words) × cols]`` (int64, sign-extended)."""
    return bits.unpack(os_layouts(p)["results"], words)
