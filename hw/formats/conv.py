"""2-D convolution lowered to one GEMM by im2col, for any ``gemm(A, W) -> C`` (numpy or the hardware).

Layout of the lowering (the one definition; :mod:`sim.ref.scalesim` uses :func:`conv_gemm_shape` too):

- ``A = im2col(x, ...)`` is ``[M × K]`` with ``M = B · H_out · W_out`` rows ordered ``(b, y, z)`` (row-major
  over the output pixels of each image) and ``K = C_in · kh · kw`` columns in the *K order* ``k_order``:
  ``"cij"`` (the default) runs over ``(c_in, i, j)``, channel-outer; ``"ijc"`` over ``(i, j, c_in)``,
  channel-inner (S2TA's and most accelerators' layout: consecutive K positions are the channels of one tap);
- ``W = weights_to_gemm(w)`` is ``[K × N]`` with the same ``K`` order and ``N = C_out``;
- ``C = A @ W`` is ``[M × N]``; ``conv2d`` reshapes it to ``[C_out, H_out, W_out]`` (``[B, C_out, H_out, W_out]``).

The K order does not change ``A @ W`` (both operands are permuted alike: :func:`k_permutation`), only which K
positions share a block: in ``"cij"`` an N:M-sparse weight matrix for the GEMM engine (or an A-DBB activation
block) is blocked along the ``kh · kw`` taps within a channel first, then across channels; in ``"ijc"`` along the
channels at one tap. The compiler, the RRAM mappings and the weight-sparse engines use ``"cij"``; the
activation-sparse (A-DBB) studies and drivers use :data:`ADBB_K_ORDER` (docs/gemm-actsparse.md).
"""

import numpy as np

from hw import checks

__all__ = ["K_ORDERS", "ADBB_K_ORDER", "k_permutation", "conv_output_size", "conv_gemm_shape", "im2col",
           "gemm_matrix", "weights_to_gemm", "conv2d"]

K_ORDERS = ("cij", "ijc")
# the K order the A-DBB studies and drivers lay activations out in: channel-inner ("ijc", S2TA's) was measured
# no better on the trained network after A-DBB fine-tuning (docs/gemm-actsparse.md), so the one order stays
ADBB_K_ORDER = "cij"


def k_permutation(c, kh, kw, k_order="cij"):
    """``perm`` (int64, ``(c·kh·kw,)``) taking the ``"cij"`` K order to ``k_order``: ``A[:, perm]`` and
    ``W[perm]`` of a ``"cij"`` lowering are the ``k_order`` lowering (so ``A[:, perm] @ W[perm] = A @ W``).
    ``kh × kw`` may be any spatial extent, e.g. an fc layer's flattened ``(c, h, w)`` input."""
    k_order = checks.check_choice("k_order", k_order, K_ORDERS)
    idx = np.arange(c * kh * kw, dtype=np.int64).reshape(c, kh, kw)
    return (idx if k_order == "cij" else idx.transpose(1, 2, 0)).ravel()


def _pair(value, name, minimum):
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))   # True is no stride

    pair = (value, value) if is_int(value) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(is_int(v) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_output_size(h, w, kh, kw, stride=1, padding=0):
    """``(H_out, W_out) = ((H + 2·ph - kh) // sh + 1, (W + 2·pw - kw) // sw + 1)``.

    Raises ``ValueError`` for a stride < 1, a negative padding, a kernel smaller than 1×1 or larger than the
    padded input.
    """
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    kh, kw = _pair((kh, kw), "kernel size", 1)
    h, w = _pair((h, w), "input size", 1)
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError(f"kernel {kh}x{kw} is larger than the padded input {h + 2 * ph}x{w + 2 * pw} "
                         f"(input {h}x{w}, padding {(ph, pw)})")
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def conv_gemm_shape(h, w, c_in, c_out, kh, kw, stride=1, padding=0, batch=1):
    """GEMM dimensions ``(M, K, N)`` of a convolution lowered by :func:`im2col`:
    ``M = batch · H_out · W_out``, ``K = c_in · kh · kw``, ``N = c_out``."""
    _pair((c_in, c_out), "channel counts", 1)
    _pair((batch, batch), "batch", 1)
    h_out, w_out = conv_output_size(h, w, kh, kw, stride, padding)
    return batch * h_out * w_out, c_in * kh * kw, c_out


def _int_input(x, name, ndims):
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.ndim not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape {a.shape}")
    return a


def im2col(x, kh, kw, stride=1, padding=0, *, k_order="cij"):
    """Patch matrix ``A [M × K]`` (int64) of ``x`` (``[C_in, H, W]`` or ``[B, C_in, H, W]``, integers).

    Row ``(b·H_out + y)·W_out + z`` holds the zero-padded window under output pixel ``(y, z)`` of image
    ``b``, flattened in ``k_order``: ``"cij"``: column ``(c·kh + i)·kw + j`` is ``xpad[b, c, y·sh + i, z·sw + j]``;
    ``"ijc"``: column ``(i·kw + j)·C_in + c`` is.
    """
    k_order = checks.check_choice("k_order", k_order, K_ORDERS)
    x = _int_input(x, "x", (3, 4))
    xb = x if x.ndim == 4 else x[None]
    b, c, h, w = xb.shape
    h_out, w_out = conv_output_size(h, w, kh, kw, stride, padding)
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    xp = np.pad(xb.astype(np.int64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))   # [B, C, Hp-kh+1, Wp-kw+1, kh, kw]
    win = win[:, :, ::sh, ::sw][:, :, :h_out, :w_out]
    axes = (0, 2, 3, 1, 4, 5) if k_order == "cij" else (0, 2, 3, 4, 5, 1)
    return win.transpose(axes).reshape(b * h_out * w_out, c * kh * kw)


def gemm_matrix(w, *, k_order="cij"):
    """The ``K × N`` view of OIHW ``w [C_out, C_in, kh, kw]`` of any dtype (weights, masks, floats): row
    ``(c·kh + i)·kw + j`` (``"ijc"``: ``(i·kw + j)·C_in + c``), column ``o`` is ``w[o, c, i, j]``, the ``K``
    order of :func:`im2col`. The one definition of that order: :func:`weights_to_gemm` and the compiler's
    ``gen.compiler.prune.as_matrix`` use it."""
    k_order = checks.check_choice("k_order", k_order, K_ORDERS)
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"w must have 4 dimensions [C_out, C_in, kh, kw], got shape {w.shape}")
    return (w if k_order == "cij" else w.transpose(0, 2, 3, 1)).reshape(w.shape[0], -1).T


def weights_to_gemm(w, *, k_order="cij"):
    """Weight matrix ``W [K × N]`` (int64, a copy) of integer OIHW weights: :func:`gemm_matrix`."""
    w = _int_input(w, "w", (4,))
    return gemm_matrix(w, k_order=k_order).astype(np.int64)


def _numpy_gemm(a, w):
    return a @ w


def conv2d(x, w, stride=1, padding=0, gemm=None, *, k_order="cij"):
    """Convolution ``x ⋆ w`` computed as one GEMM ``gemm(im2col(x), weights_to_gemm(w))``.

    Parameters
    ----------
    x : integer array ``[C_in, H, W]`` or ``[B, C_in, H, W]``
    w : integer array ``[C_out, C_in, kh, kw]``
    stride, padding : int or (int, int)
    gemm : callable ``(A [M × K], W [K × N]) -> C [M × N]``, optional
        The matrix multiply to use (default: numpy int64 matmul). Its result must have shape ``(M, N)``.
    k_order : ``"cij"`` or ``"ijc"``
        The K order of the operands ``gemm`` is given (:func:`im2col`); the convolution does not depend on it.

    Returns
    -------
    array ``[C_out, H_out, W_out]`` (``[B, C_out, H_out, W_out]`` for a batch) of ``gemm``'s output values.
    """
    x = _int_input(x, "x", (3, 4))
    w = _int_input(w, "w", (4,))
    xb = x if x.ndim == 4 else x[None]
    if xb.shape[1] != w.shape[1]:
        raise ValueError(f"x has {xb.shape[1]} input channels but w expects {w.shape[1]} (w shape {w.shape})")
    c_out, _, kh, kw = w.shape
    h_out, w_out = conv_output_size(xb.shape[2], xb.shape[3], kh, kw, stride, padding)
    a = im2col(xb, kh, kw, stride, padding, k_order=k_order)
    c = np.asarray((gemm or _numpy_gemm)(a, weights_to_gemm(w, k_order=k_order)))
    if c.shape != (a.shape[0], c_out):
        raise ValueError(f"gemm returned shape {c.shape}, expected {(a.shape[0], c_out)} (M, N)")
    out = c.reshape(xb.shape[0], h_out, w_out, c_out).transpose(0, 3, 1, 2)
    return out if x.ndim == 4 else out[0]
