"""N:M (``keep:block``) structured sparsity: the compressed weight format every layer uses, and the accumulator
width a reduction needs.

A ``keep:block`` weight matrix holds at most ``keep`` non-zeros in every block of ``block`` consecutive weights
along K. Compressed, each K-block of each output column becomes ``keep`` (value, index) slots. The PE weight beats
(:mod:`hw.systolic.beats`), the host drivers, the compiler's N:M packing and the golden models all use this one
definition.
"""

import numpy as np

from hw import checks
from hw.formats.ints import int_array, int_range

__all__ = ["BLOCKS", "check_nm", "compress_nm", "decompress_nm", "compressed_slots", "required_acc_bits"]

BLOCKS = (1, 2, 4, 8, 16)
"""The ``block`` sizes the hardware supports (powers of two: an in-block index is ``log2(block)`` bits)."""


def check_nm(keep, block):
    """``(keep, block)`` as ints (numpy integers accepted): ``block >= 1`` and ``1 <= keep <= block``."""
    block = checks.check_int("block", block, 1)
    return checks.check_int("keep", keep, 1, block, allowed=f"1 … {block} (block)"), block


def compressed_slots(values, indices, block):
    """Check compressed ``(values, indices)`` slots of K-block size ``block``; returns them as int64."""
    values = int_array(values, "values", 3)
    indices = int_array(indices, "indices", 3)
    if values.shape != indices.shape:
        raise ValueError(f"values shape {values.shape} != indices shape {indices.shape}")
    if ((indices < 0) | (indices >= block)).any():
        raise ValueError(f"indices must lie in 0..{block - 1} (block={block})")
    return values, indices


def compress_nm(W, *, keep, block):
    """Compress a ``keep:block`` structured-sparse weight matrix into PE slots.

    Parameters
    ----------
    W : (K, N) integer array
        Weights, K a multiple of ``block``; at most ``keep`` non-zeros in every K-block of every column.
    keep, block : int
        N:M sparsity, ``1 <= keep <= block``.

    Returns
    -------
    values, indices : (R, N, keep) int64 arrays, R = K // block
        Slot j of K-block r, column n: weight value and its position (0..block-1) inside the block.
        The slots hold the non-zero positions, filled up to ``keep`` with the lowest zero positions,
        sorted by index ascending; padded slots have value 0. Dense (``keep == block``) gives 0..block-1.

    Raises
    ------
    ValueError
        Bad keep/block, K not a multiple of block, or a block with more than ``keep`` non-zeros
        (the first offending column, lowest K-block, is named).
    """
    keep, block = check_nm(keep, block)
    W = int_array(W, "W", 2)
    K, N = W.shape
    if K % block:
        raise ValueError(f"W has K={K} rows, not a multiple of block={block}")
    blocks = W.reshape(K // block, block, N).transpose(0, 2, 1)          # (R, N, block)
    nnz = np.count_nonzero(blocks, axis=2)
    if (nnz > keep).any():
        n, r = np.argwhere(nnz.T > keep)[0]
        raise ValueError(
            f"W column {n}, K-block {r} (rows {r * block}..{r * block + block - 1}) has {nnz[r, n]} "
            f"non-zeros; {keep}:{block} sparsity allows at most {keep}")
    indices = np.sort(np.argsort(blocks == 0, axis=2, kind="stable")[..., :keep], axis=2)
    return np.take_along_axis(blocks, indices, axis=2), indices.astype(np.int64)


def decompress_nm(values, indices, *, block):
    """Inverse of :func:`compress_nm`.

    Parameters
    ----------
    values, indices : (R, N, keep) integer arrays
        Slots as returned by :func:`compress_nm`; indices distinct within each (r, n).
    block : int
        K-block size.

    Returns
    -------
    W : (R * block, N) int64 array
    """
    values, indices = compressed_slots(values, indices, block)
    R, N, _ = values.shape
    W = np.zeros((R, N, block), np.int64)
    np.put_along_axis(W, indices, values, axis=2)
    return W.transpose(0, 2, 1).reshape(R * block, N)


def required_acc_bits(*, max_k, keep, block, act_bits, act_signed, weight_bits):
    """Smallest two's-complement width holding every sum of ``ceil(max_k / block) * keep`` products.

    Each product is an activation in its range (signed ``[-2**(a-1), 2**(a-1)-1]`` or unsigned
    ``[0, 2**a - 1]``) times a weight in ``[-2**(w-1), 2**(w-1)-1]``. Pure Python ints.

    Parameters
    ----------
    max_k : int
        Longest reduction, >= 1.
    keep, block, act_bits, weight_bits : int
    act_signed : bool

    Returns
    -------
    int
    """
    keep, block = check_nm(keep, block)
    max_k = checks.check_int("max_k", max_k, 1)
    act_bits = checks.check_int("act_bits", act_bits, 1)
    weight_bits = checks.check_int("weight_bits", weight_bits, 1)
    act_signed = checks.check_bool("act_signed", act_signed)
    terms = -(-max_k // block) * keep
    products = [a * w for a in int_range(act_bits, act_signed) for w in int_range(weight_bits, True)]
    return max((v if v >= 0 else ~v).bit_length() + 1 for v in (terms * min(products), terms * max(products)))
