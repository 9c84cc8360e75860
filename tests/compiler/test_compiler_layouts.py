"""The compiler and the hardware drivers share one K order and one N:M packing.

- ``gen.compiler.prune.as_matrix`` (what the compiler prunes, packs and maps) is the conv lowering's
  ``hw.formats.conv.weights_to_gemm`` (what the GEMM engine is fed with ``im2col``), and with ``im2col`` it computes
  the direct convolution;
- ``gen.compiler.nm.pack_nm`` gives exactly the slots the GEMM driver sends (``sim.gemm.golden.padded_weights``,
  both ``compress_nm``);
- the training convolution of ``gen.compiler.train_tiny`` uses the same ``im2col``.
"""

import numpy as np
import pytest

from gen.compiler import train_tiny
from gen.compiler.nm import pack_nm
from gen.compiler.prune import as_matrix, from_matrix, nm, pattern
from gen.config import load_config
from hw.formats.conv import gemm_matrix, im2col, weights_to_gemm
from sim.gemm.conv import conv2d_direct
from sim.gemm.golden import padded_weights
from sim.compiler.compiled_layer import BARS


@pytest.mark.parametrize("shape", [(16, 8, 3, 3), (5, 3, 1, 1), (4, 2, 5, 3), (1, 1, 3, 3)])
def test_as_matrix_is_the_lowering_order(shape, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=shape)
    np.testing.assert_array_equal(as_matrix(w), weights_to_gemm(w))
    mask = rng.random(shape) < 0.5
    np.testing.assert_array_equal(as_matrix(mask), gemm_matrix(mask))       # masks and floats too
    np.testing.assert_array_equal(from_matrix(as_matrix(w), shape), w)
    x = rng.integers(-128, 128, size=(2, shape[1], 7, 6))
    for stride, padding in ((1, 0), (2, 1)):
        if shape[2] > 6 + 2 * padding:
            continue
        a = im2col(x, shape[2], shape[3], stride, padding)
        direct = conv2d_direct(x, w, stride, padding)                        # [B, O, H, W]
        np.testing.assert_array_equal(a @ as_matrix(w), direct.transpose(0, 2, 3, 1).reshape(-1, shape[0]))


def test_bars_pruning_runs_along_the_lowering_order():
    """N:M pruning of the trained conv2 keeps 2 of every 4 rows of ``weights_to_gemm`` (the GEMM engine's K)."""
    w = np.load(BARS)["conv2"].astype(np.int64)
    mask, _ = nm(w, 2, 4)
    m = weights_to_gemm(np.where(mask, w, 0))
    assert (np.count_nonzero(m.reshape(-1, 4, m.shape[1]), axis=1) <= 2).all()
    pmask, _ = pattern(w, k=4, n_patterns=4)
    # pattern pruning keeps 4 taps of every 3×3 kernel: 4 of each channel's 9 consecutive K rows
    assert (gemm_matrix(pmask).reshape(-1, 9, w.shape[0]).sum(axis=1) == 4).all()


@pytest.mark.parametrize("k, n", [(72, 16), (70, 5), (3, 9)])
def test_pack_nm_is_the_drivers_packing(k, n, seed):
    cfg = load_config("gemm_4x4_2of4", {"max_k": 128})
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=(k, n))
    mask, _ = nm(w.T, cfg.keep, cfg.block)                # linear [out, in]: K = in
    W = np.where(mask.T, w, 0)
    values, indices = pack_nm("layer", W, keep=cfg.keep, block=cfg.block, matrix=True)
    dv, di = padded_weights(cfg, W)
    blocks = -(-k // cfg.block)
    assert values.shape == indices.shape == (blocks, n, cfg.keep)
    np.testing.assert_array_equal(values, dv[:blocks, :n])
    np.testing.assert_array_equal(indices, di[:blocks, :n])
    assert not dv[blocks:].any() and not dv[:, n:].any()            # the driver's extra tile padding is zeros


def test_training_conv_is_the_lowering(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 8, size=(2, 3, 12, 12))
    w = rng.integers(-8, 8, size=(4, 3, 3, 3))
    for stride in (1, 2):
        out, _ = train_tiny.conv(x.astype(np.float64), w.astype(np.float64), stride)
        np.testing.assert_array_equal(out, conv2d_direct(x, w, stride, 1))
