"""Golden model of a 2-D convolution, written directly from its definition (no im2col).

``conv2d_direct`` is the reference for the GEMM lowering in :mod:`hw.formats.conv`: it shares no code with
it. Cross-correlation as in deep-learning frameworks (the kernel is not flipped), zero padding, integer
arithmetic in int64 without wrapping (a hardware GEMM with a narrower accumulator is checked against its own
golden model, not this one).
"""

import numpy as np

__all__ = ["conv2d_direct"]


def _pair(value, name):
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))   # True is no stride

    pair = (value, value) if is_int(value) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(is_int(v) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv2d_direct(x, w, stride=1, padding=0):
    """Convolve ``x`` with ``w``: ``out[o, y, z] = Σ_{c,i,j} xpad[c, y·sh + i, z·sw + j] · w[o, c, i, j]``.

    Parameters
    ----------
    x : integer array, shape ``[C_in, H, W]`` or a batch ``[B, C_in, H, W]``
    w : integer array, shape ``[C_out, C_in, kh, kw]`` (OIHW)
    stride : int or (int, int)
        Step between output pixels along (H, W), >= 1.
    padding : int or (int, int)
        Zero rows added above and below, zero columns added left and right, >= 0.

    Returns
    -------
    int64 array, shape ``[C_out, H_out, W_out]`` (``[B, C_out, H_out, W_out]`` for a batch), with
    ``H_out = (H + 2·ph - kh) // sh + 1`` and likewise ``W_out``.

    The sum runs over the kernel offsets ``(i, j)``: each adds the product of a strided slice of the padded
    input with the kernel tap ``w[:, :, i, j]`` (vectorized over batch, channels and output pixels).
    """
    x, w = np.asarray(x), np.asarray(w)
    for name, a in (("x", x), ("w", w)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be [C_in, H, W] or [B, C_in, H, W], got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"w must be [C_out, C_in, kh, kw], got shape {w.shape}")
    batched = x.ndim == 4
    xb = (x if batched else x[None]).astype(np.int64)
    if xb.shape[1] != w.shape[1]:
        raise ValueError(f"x has {xb.shape[1]} input channels but w expects {w.shape[1]} (w shape {w.shape})")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride must be >= 1, got {(sh, sw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {(ph, pw)}")
    c_out, _, kh, kw = w.shape
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel must be at least 1x1, got {kh}x{kw}")
    xp = np.pad(xb, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    hp, wp = xp.shape[2:]
    if kh > hp or kw > wp:
        raise ValueError(f"kernel {kh}x{kw} is larger than the padded input {hp}x{wp}")
    h_out, w_out = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    out = np.zeros((xb.shape[0], c_out, h_out, w_out), np.int64)
    w64 = w.astype(np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (h_out - 1) + 1:sh, j:j + sw * (w_out - 1) + 1:sw]
            out += np.einsum("bchw,oc->bohw", patch, w64[:, :, i, j])
    return out if batched else out[0]
