"""N:M packing for the GEMM engine: check a pruned integer layer against ``keep:block`` along K and compress it.

Thin by design: the compressed ``(values, indices)`` slots are exactly :func:`hw.formats.nm.compress_nm`'s,
which the engine's beat packing (``hw/systolic/beats.py`` and its driver) consumes.
"""

import numpy as np

from hw import checks
from hw.formats.nm import compress_nm

from gen.compiler.prune import as_matrix

__all__ = ["check_nm", "pack_nm"]


def check_nm(name: str, w, *, keep: int, block: int, matrix: bool = False) -> np.ndarray:
    """The layer's ``K × N`` integer matrix, zero-padded to a multiple of ``block`` rows, if it is ``keep:block``.

    ``w`` is conv OIHW or linear ``[out, in]`` (converted with :func:`gen.compiler.prune.as_matrix`), or already a
    ``K × N`` matrix when ``matrix`` is true.

    Raises
    ------
    ValueError
        Naming the layer, the K row of the first weight over the budget, the column (output) and the K-block, e.g.
        ``layer 'conv1': K row 6, column 3 (K-block 1, rows 4…7) holds non-zero 3 of the block; 2:4 allows 2``.
    """
    block = checks.check_int(f"layer {name!r}: N:M block", block, 1)
    keep = checks.check_int(f"layer {name!r}: N:M keep", keep, 1, block, allowed=f"1 … {block} (block)")
    w = np.asarray(w)
    if w.dtype.kind not in "iu":
        raise ValueError(f"layer {name!r}: weights must be integers (quantize first), not {w.dtype}")
    if matrix and w.ndim != 2:
        raise ValueError(f"layer {name!r}: a K × N matrix was expected, not shape {w.shape}")
    m = w if matrix else as_matrix(w)
    k_total, n_total = m.shape
    padded = np.zeros((k_total + (-k_total % block), n_total), dtype=np.int64)
    padded[:k_total] = m
    nz = padded != 0
    # running count of non-zeros inside each block: the (keep+1)-th non-zero is the first violation
    running = np.cumsum(nz.reshape(-1, block, n_total), axis=1).reshape(padded.shape)
    bad = nz & (running > keep)
    if bad.any():
        rows, cols = np.nonzero(bad)
        first = np.lexsort((rows, cols))[0]              # lowest column, then lowest row
        k, n = int(rows[first]), int(cols[first])
        b = k // block
        raise ValueError(f"layer {name!r}: K row {k}, column {n} (K-block {b}, rows {b * block}…{b * block + block - 1}) "
                         f"holds non-zero {int(running[k, n])} of the block; {keep}:{block} allows {keep}")
    return padded


def pack_nm(name: str, w, *, keep: int, block: int, matrix: bool = False):
    """Compressed slots of a ``keep:block`` layer for the GEMM engine.

    Returns
    -------
    values, indices : ndarray of int64, shape (ceil(K / block), N, keep)
        As :func:`hw.formats.nm.compress_nm` of the zero-padded ``K × N`` matrix (im2col rows for convs).
    """
    return compress_nm(check_nm(name, w, keep=keep, block=block, matrix=matrix), keep=keep, block=block)
