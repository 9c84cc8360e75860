"""``keep:block`` weight sparsity along the output axis N: the weight format of the outer-product PE (numpy only).

The one definition used by the activation-sparse engine with ``weight_axis = "n"`` (docs/gemm-actsparse.md), its
golden model, host driver and tests. A K × N weight matrix is ``keep:block`` **along N** when, in every K row, each
**N-block** of ``block`` consecutive output columns (from column 0; the last block of a ragged N counts its missing
columns as zeros) holds at most ``keep`` non-zeros.

- **Prune** (:func:`prune_n`): in every (K row, N-block) the ``keep`` weights of largest magnitude ``|w|`` are kept,
  the others set to 0; **ties go to the lower column** (column i is kept iff fewer than ``keep`` columns j of its
  block have ``|w_j| > |w_i|`` or ``|w_j| = |w_i|`` and ``j < i``). The rule is A-DBB's
  (:func:`hw.formats.actsparse.adbb_prune`) applied to the rows of W, and is that function.
- **Compressed** (:func:`compress_n`): ``(values, indices)`` of shape ``(K, N / block, keep)``: entry e of K row k,
  N-block b is a weight value and its column inside the block (``0 … block − 1``); the non-zeros by ascending
  column, padded to ``keep`` entries with value 0 at the lowest free columns (the padding of
  :func:`hw.formats.nm.compress_nm`, which this is applied to Wᵀ), so indices within an entry set are distinct.
"""

import numpy as np

from hw import checks
from hw.formats.actsparse import adbb_prune
from hw.formats.ints import int_array
from hw.formats.nm import check_nm, compress_nm, decompress_nm

__all__ = ["prune_n", "check_n", "compress_n", "decompress_n"]


def _padded(W, block):
    W = int_array(W, "W", 2)
    K, N = W.shape
    Wp = np.zeros((K, -(-N // block) * block), np.int64)
    Wp[:, :N] = W
    return Wp


def prune_n(W, *, keep, block):
    """W (K × N integers) with only the ``keep`` largest magnitudes of every (K row, N-block) kept (ties: lower
    column); same shape, int64."""
    keep, block = check_nm(keep, block)
    return adbb_prune(int_array(W, "W", 2), act_keep=keep, block=block)


def check_n(W, *, keep, block):
    """W as int64 if it is ``keep:block`` along N; else ``ValueError`` naming the first (lowest row, then lowest
    block) K row and N-block with too many non-zeros."""
    keep, block = check_nm(keep, block)
    W = int_array(W, "W", 2)
    nnz = np.count_nonzero(_padded(W, block).reshape(W.shape[0], -1, block), axis=2)
    if (nnz > keep).any():
        r, b = np.argwhere(nnz > keep)[0]
        raise ValueError(f"W row {r}, N-block {b} (columns {b * block}..{b * block + block - 1}) has {nnz[r, b]} "
                         f"non-zeros: allowed at most {keep} ({keep}:{block} along N)")
    return W


def compress_n(W, *, keep, block):
    """``(values, indices)``, each ``(K, ceil(N / block), keep)`` int64 (module docstring); N is zero-padded to whole
    blocks. ``ValueError`` (:func:`check_n`) when W is not ``keep:block`` along N."""
    keep, block = check_nm(keep, block)
    Wp = _padded(check_n(W, keep=keep, block=block), block)
    values, indices = compress_nm(Wp.T, keep=keep, block=block)           # (N/block, K, keep)
    return values.transpose(1, 0, 2).copy(), indices.transpose(1, 0, 2).copy()


def decompress_n(values, indices, *, block):
    """Inverse of :func:`compress_n`: ``(K, B, keep)`` entries → W of shape ``(K, B·block)`` int64."""
    block = checks.check_int("block", block, 1)
    values, indices = int_array(values, "values", 3), int_array(indices, "indices", 3)
    return decompress_nm(values.transpose(1, 0, 2), indices.transpose(1, 0, 2), block=block).T.copy()
