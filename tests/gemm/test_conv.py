"""Convolution by im2col + GEMM (hw.formats.conv) against the direct convolution (sim.gemm.conv)."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from hw.formats.conv import (conv2d, conv_gemm_shape, conv_output_size, gemm_matrix, im2col, k_permutation,
                              weights_to_gemm)
from sim.gemm.conv import conv2d_direct

seeds = st.integers(0, 2**32 - 1)


@st.composite
def conv_cases(draw):
    """Random input, weights, stride and padding with the kernel fitting the padded input."""
    kh, kw = draw(st.sampled_from([(3, 3), (1, 1), (5, 5), (3, 1), (1, 5)]))
    stride = draw(st.sampled_from([1, 2, (1, 2), (2, 1)]))
    padding = draw(st.sampled_from([0, 1, 2, (0, 2), (1, 0)]))
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    c_in, c_out = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    batch = draw(st.sampled_from([None, 1, 3]))
    rng = np.random.default_rng(draw(seeds))
    x = rng.integers(-128, 128, (c_in, h, w) if batch is None else (batch, c_in, h, w))
    wt = rng.integers(-128, 128, (c_out, c_in, kh, kw))
    return x, wt, stride, padding


def _pairs(stride, padding):
    as_pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    return as_pair(stride), as_pair(padding)


@given(conv_cases())
def test_im2col_conv_matches_direct(case):
    x, w, stride, padding = case
    got = conv2d(x, w, stride, padding)
    want = conv2d_direct(x, w, stride, padding)
    (sh, sw), (ph, pw) = _pairs(stride, padding)
    h, wd = x.shape[-2:]
    h_out, w_out = (h + 2 * ph - w.shape[2]) // sh + 1, (wd + 2 * pw - w.shape[3]) // sw + 1
    assert want.shape == x.shape[:-3] + (w.shape[0], h_out, w_out)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@given(conv_cases())
def test_conv_gemm_shape_and_supplied_gemm(case):
    x, w, stride, padding = case
    xb = x if x.ndim == 4 else x[None]
    calls = []

    def gemm(a, wm):
        calls.append((a.shape, wm.shape))
        return a @ wm

    got = conv2d(x, w, stride, padding, gemm=gemm)
    m, k, n = conv_gemm_shape(xb.shape[2], xb.shape[3], w.shape[1], w.shape[0], w.shape[2], w.shape[3],
                              stride, padding, batch=xb.shape[0])
    assert calls == [((m, k), (k, n))]
    np.testing.assert_array_equal(got, conv2d_direct(x, w, stride, padding))


def test_direct_conv_against_scalar_definition(seed):
    """The golden model itself, against the textbook quadruple sum on a small case."""
    rng = np.random.default_rng(seed)
    x, w = rng.integers(-9, 10, (2, 6, 5)), rng.integers(-9, 10, (3, 2, 3, 2))
    stride, padding = (2, 1), (1, 2)
    xp = np.pad(x, ((0, 0), (1, 1), (2, 2)))
    h_out, w_out = (6 + 2 - 3) // 2 + 1, (5 + 4 - 2) // 1 + 1
    want = np.zeros((3, h_out, w_out), np.int64)
    for o, y, z, c, i, j in np.ndindex(3, h_out, w_out, 2, 3, 2):
        want[o, y, z] += int(xp[c, 2 * y + i, z + j]) * int(w[o, c, i, j])
    np.testing.assert_array_equal(conv2d_direct(x, w, stride, padding), want)


def test_im2col_and_weight_order(seed):
    """Element-by-element check of the documented (b, y, z) × (c, i, j) orders."""
    rng = np.random.default_rng(seed)
    b, c, h, w, kh, kw, (sh, sw), (ph, pw) = 2, 3, 5, 6, 3, 2, (2, 1), (1, 0)
    x = rng.integers(-100, 100, (b, c, h, w))
    a = im2col(x, kh, kw, (sh, sw), (ph, pw))
    h_out, w_out = conv_output_size(h, w, kh, kw, (sh, sw), (ph, pw))
    assert a.shape == (b * h_out * w_out, c * kh * kw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    for bi, y, z, ci, i, j in np.ndindex(b, h_out, w_out, c, kh, kw):
        assert a[(bi * h_out + y) * w_out + z, (ci * kh + i) * kw + j] == xp[bi, ci, y * sh + i, z * sw + j]
    wt = rng.integers(-100, 100, (4, c, kh, kw))
    wm = weights_to_gemm(wt)
    assert wm.shape == (c * kh * kw, 4)
    for o, ci, i, j in np.ndindex(4, c, kh, kw):
        assert wm[(ci * kh + i) * kw + j, o] == wt[o, ci, i, j]


def test_resnet_conv1_gemm_shape():
    # 224x224x3 -> 112x112x64, 7x7 stride 2 padding 3
    assert conv_gemm_shape(224, 224, 3, 64, 7, 7, 2, 3) == (112 * 112, 3 * 7 * 7, 64)
    assert conv_gemm_shape(56, 56, 64, 128, 1, 1, 2, 0, batch=4) == (4 * 28 * 28, 64, 128)


X = np.zeros((2, 5, 5), np.int64)
W = np.zeros((3, 2, 3, 3), np.int64)


@pytest.mark.parametrize("fn", [conv2d, conv2d_direct])
@pytest.mark.parametrize("args, match", [
    ((X, np.zeros((3, 4, 3, 3), np.int64)), "input channels"),
    ((X, W, 0), "stride"),
    ((X, W, (1, -1)), "stride"),
    ((X, W, 1, -1), "padding"),
    ((X, np.zeros((3, 2, 6, 3), np.int64)), "larger than the padded input"),
    ((X, np.zeros((3, 2, 8, 3), np.int64), 1, 1), "larger than the padded input"),
    ((X[0], W), "x must"),
    ((X, W[0]), "w must"),
    ((X.astype(float), W), "integer"),
    ((X, W, 1.5), "stride"),
])
def test_bad_arguments(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


def test_gemm_with_wrong_result_shape():
    with pytest.raises(ValueError, match=r"gemm returned shape \(9, 2\), expected \(9, 3\)"):
        conv2d(X, W, gemm=lambda a, w: (a @ w)[:, :2])


def test_kernel_fits_exactly_with_padding():
    x = np.arange(4).reshape(1, 2, 2)
    w = np.ones((1, 1, 4, 4), np.int64)
    assert conv2d(x, w, 1, 1).tolist() == [[[6]]]
    assert conv2d_direct(x, w, 1, 1).tolist() == [[[6]]]


@given(conv_cases())
def test_both_k_orders_compute_the_same_convolution(case):
    """The K order is a layout choice: ``"ijc"`` is the ``"cij"`` lowering with both operands' K permuted alike
    (:func:`k_permutation`), so ``A @ W`` and the convolution are the same."""
    x, w, stride, padding = case
    kh, kw = w.shape[2:]
    a, wm = im2col(x, kh, kw, stride, padding), weights_to_gemm(w)
    a2, wm2 = im2col(x, kh, kw, stride, padding, k_order="ijc"), weights_to_gemm(w, k_order="ijc")
    perm = k_permutation(w.shape[1], kh, kw, "ijc")
    np.testing.assert_array_equal(a2, a[:, perm])
    np.testing.assert_array_equal(wm2, wm[perm])
    np.testing.assert_array_equal(gemm_matrix(w, k_order="ijc"), wm2)
    np.testing.assert_array_equal(a2 @ wm2, a @ wm)
    np.testing.assert_array_equal(conv2d(x, w, stride, padding, k_order="ijc"), conv2d_direct(x, w, stride, padding))
    np.testing.assert_array_equal(k_permutation(w.shape[1], kh, kw), np.arange(a.shape[1]))


def test_channel_inner_order_element_by_element(seed):
    """``"ijc"``: column ``(i·kw + j)·C_in + c`` of the patch matrix and row of the weight matrix."""
    rng = np.random.default_rng(seed)
    print(f"seed {seed}")
    b, c, h, w, kh, kw, (sh, sw), (ph, pw) = 2, 3, 5, 6, 3, 2, (2, 1), (1, 0)
    x = rng.integers(-100, 100, (b, c, h, w))
    a = im2col(x, kh, kw, (sh, sw), (ph, pw), k_order="ijc")
    h_out, w_out = conv_output_size(h, w, kh, kw, (sh, sw), (ph, pw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    wt = rng.integers(-100, 100, (4, c, kh, kw))
    wm = weights_to_gemm(wt, k_order="ijc")
    for bi, y, z, ci, i, j in np.ndindex(b, h_out, w_out, c, kh, kw):
        assert a[(bi * h_out + y) * w_out + z, (i * kw + j) * c + ci] == xp[bi, ci, y * sh + i, z * sw + j]
    for o, ci, i, j in np.ndindex(4, c, kh, kw):
        assert wm[(i * kw + j) * c + ci, o] == wt[o, ci, i, j]


@pytest.mark.parametrize("call", [lambda: im2col(X, 3, 3, k_order="hwc"), lambda: weights_to_gemm(W, k_order="ji"),
                                  lambda: gemm_matrix(W, k_order="IJC"), lambda: k_permutation(2, 3, 3, "cji"),
                                  lambda: conv2d(X, W, k_order="")])
def test_bad_k_order_is_a_one_line_error(call):
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert message.startswith("k_order = ") and "allowed" in message and "'cij'" in message and "\n" not in message


def test_k_order_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="k_order = None"):
        im2col(X, 3, 3, k_order=None)
