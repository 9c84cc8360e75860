"""Dynamic activation sparsity: the A-DBB selection rule and the lossless step split (numpy only).

The one definition of how the activation-sparse GEMM engine (docs/gemm-actsparse.md) turns one row of A into
multiplier work, shared by the RTL's documentation, the golden model, the cycle model and the drivers.

A row of A is cut into K-blocks of ``block`` consecutive activations from K position 0 (the engine's tiles start
on block boundaries). In each block:

- **A-DBB** (``mode = "adbb"``, S2TA style, lossy): the ``act_keep`` activations of largest magnitude ``|a|`` are
  kept, the others become 0. Ties in magnitude go to the lower position (lane) in the block. Zeros are never
  preferred over non-zeros because ``|0|`` is the smallest magnitude; a block with at most ``act_keep``
  non-zeros is unchanged. Every row takes one step per K-tile.
- **lossless** (``mode = "lossless"``, Sense style): nothing is dropped. The non-zeros of a block, in position
  order, go to steps ``0, 1, …``, ``act_keep`` per step; a row of a K-tile takes
  ``max(1, max over the tile's blocks of ceil(nnz / act_keep))`` steps.

Magnitudes are those of the two's-complement values: ``|−2**(b−1)| = 2**(b−1)`` is the largest.
"""

import numpy as np

from hw import checks

__all__ = ["ACT_MODES", "adbb_prune", "block_nnz", "row_steps", "step_slots"]

ACT_MODES = ("adbb", "lossless")


def _blocks(A, block):
    A = np.asarray(A, dtype=np.int64)
    if A.ndim != 2:
        raise ValueError(f"A has {A.ndim} dimensions: allowed 2 (M × K)")
    M, K = A.shape
    Kp = -(-K // block) * block
    Ap = np.zeros((M, Kp), np.int64)
    Ap[:, :K] = A
    return Ap.reshape(M, Kp // block, block), K


def adbb_prune(A, *, act_keep, block):
    """A with, in each K-block of every row, only the ``act_keep`` activations of largest magnitude kept (ties:
    lower position first); the others set to 0. Same shape as ``A`` (int64)."""
    block = checks.check_int("block", block, 1)
    act_keep = checks.check_int("act_keep", act_keep, 1, block, allowed=f"1 … {block} (block)")
    blocks, K = _blocks(A, block)
    mag = np.abs(blocks)
    lane = np.arange(block)
    # rank of lane i = lanes that beat it: larger magnitude, or equal magnitude at a lower lane
    beats = (mag[..., None, :] > mag[..., :, None]) | ((mag[..., None, :] == mag[..., :, None])
                                                       & (lane[None, :] < lane[:, None]))
    rank = beats.sum(axis=-1)
    kept = np.where(rank < act_keep, blocks, 0)
    return kept.reshape(blocks.shape[0], -1)[:, :K]


def block_nnz(A, *, block):
    """Non-zeros of every K-block of every row: ``(M, ceil(K/block))`` int64."""
    blocks, _ = _blocks(A, block)
    return np.count_nonzero(blocks, axis=-1).astype(np.int64)


def row_steps(A, *, act_keep, block, k_tile, mode):
    """Steps of every row in every K-tile of ``k_tile`` positions: ``(ceil(K/k_tile), M)`` int64 (1 for A-DBB;
    lossless: ``max(1, max_b ceil(nnz_b / act_keep))`` over the tile's blocks)."""
    mode = checks.check_choice("mode", mode, ACT_MODES)
    A = np.asarray(A, dtype=np.int64)
    M, K = A.shape
    kt = -(-K // k_tile)
    if mode == "adbb":
        return np.ones((kt, M), np.int64)
    nnz = block_nnz(A, block=block)                               # (M, blocks)
    per_tile = k_tile // block
    padded = np.zeros((M, kt * per_tile), np.int64)
    padded[:, :nnz.shape[1]] = nnz
    need = -(-padded // act_keep)
    return np.maximum(1, need.reshape(M, kt, per_tile).max(axis=2)).T.copy()


def step_slots(block_values, *, act_keep, step, mode):
    """The ``act_keep`` (value, position) slots one step takes from each block: ``block_values`` is
    ``(..., block)``; returns ``values, positions`` of shape ``(..., act_keep)``. Selected lanes fill the slots in
    position order; unused slots hold value 0 at position 0. A-DBB: the kept lanes (``step`` must be 0);
    lossless: the non-zeros ranked ``step·act_keep … step·act_keep + act_keep − 1`` in position order."""
    v = np.asarray(block_values, dtype=np.int64)
    block = v.shape[-1]
    if mode == "adbb":
        sel = adbb_prune(v.reshape(-1, block), act_keep=act_keep, block=block).reshape(v.shape) != 0
    else:
        nz = v != 0
        order = np.cumsum(nz, axis=-1) - 1
        sel = nz & (order >= step * act_keep) & (order < (step + 1) * act_keep)
    slot = np.cumsum(sel, axis=-1) - 1
    values = np.zeros(v.shape[:-1] + (act_keep,), np.int64)
    positions = np.zeros_like(values)
    for j in range(act_keep):
        hit = sel & (slot == j)
        values[..., j] = np.where(hit, v, 0).sum(axis=-1)
        positions[..., j] = np.where(hit, np.arange(block), 0).sum(axis=-1)
    return values, positions
