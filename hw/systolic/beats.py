"""Beat formats of the sparse systolic array: the one definition used by the RTL, drivers, golden checks and docs.

Every format is an ``amaranth.lib.data`` layout packed from bit 0 upward (see docs/systolic.md "Beat formats"):

- activation beat: ``ArrayLayout(act, k)``; element i is ``A[m, i]``;
- weight beat (one PE row): ``ArrayLayout(ArrayLayout(entry, keep), cols)``; entry ``(c, j)`` holds slot j of PE
  column c as ``{"value": signed(weight_bits), "index": unsigned(index_bits)}`` (no ``index`` when dense);
- result beat: ``ArrayLayout(signed(acc_bits), cols)``; element c is ``C[m, c]``.

The ``*_beats`` helpers convert numpy matrices to and from lists of integers with :mod:`hw.bits`.
"""

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from hw import bits

__all__ = ["index_bits", "act_layout", "weight_entry_layout", "weight_layout", "result_layout",
           "act_beats", "weight_beats", "result_beats", "results_from_beats"]


def index_bits(*, keep, block):
    """Width of a weight's in-block position: ``log2(block)`` when sparse, 0 when dense (slot j is position j)."""
    return (block - 1).bit_length() if keep < block else 0


def act_layout(*, k, act_bits, act_signed):
    """One row of A: ``k`` activations of ``act_bits`` bits."""
    return data.ArrayLayout(signed(act_bits) if act_signed else unsigned(act_bits), k)


def weight_entry_layout(*, weight_bits, index_bits):
    """One stored weight: its value and, for sparse configs, its position inside the K-block."""
    fields = {"value": signed(weight_bits)}
    if index_bits:
        fields["index"] = unsigned(index_bits)
    return data.StructLayout(fields)


def weight_layout(*, cols, keep, weight_bits, index_bits):
    """The weights of one PE row: ``keep`` entries for each of ``cols`` PE columns."""
    return data.ArrayLayout(data.ArrayLayout(weight_entry_layout(weight_bits=weight_bits, index_bits=index_bits),
                                             keep), cols)


def result_layout(*, cols, acc_bits):
    """One row of C: ``cols`` signed results of ``acc_bits`` bits."""
    return data.ArrayLayout(signed(acc_bits), cols)


def layouts(cfg):
    """The three layouts of a :class:`gen.systolic.config.SystolicConfig` (or anything with the same attributes)."""
    return {
        "acts": act_layout(k=cfg.rows * cfg.block, act_bits=cfg.act_bits, act_signed=cfg.act_signed),
        "weights": weight_layout(cols=cfg.cols, keep=cfg.keep, weight_bits=cfg.weight_bits,
                                 index_bits=cfg.index_bits),
        "results": result_layout(cols=cfg.cols, acc_bits=cfg.acc_bits),
    }


def act_beats(cfg, A):
    """Activation matrix ``A[M × k]`` → M beats, row m first."""
    return bits.pack(layouts(cfg)["acts"], np.asarray(A))


def weight_beats(cfg, values, indices):
    """Compressed weights (``values``, ``indices``: ``[rows × cols × keep]``, as from ``compress_nm``) → one load.

    Returns ``rows`` beats in load order (PE row 0 first). Dense configs ignore ``indices`` except to check
    that slot j holds position j.
    """
    values, indices = np.asarray(values), np.asarray(indices)
    if values.shape != (cfg.rows, cfg.cols, cfg.keep) or indices.shape != values.shape:
        raise ValueError(f"weights must have shape (rows, cols, keep) = {(cfg.rows, cfg.cols, cfg.keep)}, "
                         f"got values {values.shape} and indices {indices.shape}")
    fields = {"value": values}
    if cfg.index_bits:
        fields["index"] = indices
    elif np.any(indices != np.arange(cfg.keep)):
        r, c, j = (int(i) for i in np.argwhere(indices != np.arange(cfg.keep))[0])
        raise ValueError(f"dense config: PE ({r}, {c}) slot {j} must hold position {j}, got {indices[r, c, j]}")
    return bits.pack(layouts(cfg)["weights"], fields)


def result_beats(cfg, C):
    """Result matrix ``C[M × cols]`` → M beats (for expected-value lists)."""
    return bits.pack(layouts(cfg)["results"], np.asarray(C))


def results_from_beats(cfg, words):
    """M result beats → ``C[M × cols]`` (int64, sign-extended)."""
    return bits.unpack(layouts(cfg)["results"], words)
