"""A tiny CNN the project trains itself (numpy only), shipped as int8 weights in ``gen/compiler/data/bars.npz``.

Task ("bars"): 12×12 grey images of one bar — horizontal, vertical, diagonal or anti-diagonal, at a random
offset, length and brightness, plus Gaussian noise — to classify into those 4 classes; generated from a seed, so
nothing is downloaded. Network: conv 3×3 1→8 (pad 1) → ReLU → conv 3×3 8→16 (stride 2, pad 1) → ReLU → global
average pool → fc 16→4. Trained with Adam on softmax cross-entropy, then quantized per output channel to int8
(:func:`gen.compiler.quantize.quantize_symmetric`).

The ``.npz`` is a user-weights file for ``map-report --weights`` (int8 arrays ``conv1``, ``conv2``, ``fc`` with
``.positions`` entries; ``--weights bars``) plus ``<name>.scale`` float arrays used by :func:`evaluate`.
Regenerate it with ``python -m gen.compiler.train_tiny --out gen/compiler/data/bars.npz`` in a checkout
(deterministic for a seed; takes seconds; the default ``--out`` is in the build directory, never the package). It is a toy: its weights show
what training does to weight statistics at this size, nothing more.
"""

import argparse
from pathlib import Path

import numpy as np

from hw.formats.conv import conv_output_size, im2col

from gen.compiler.quantize import dequantize, quantize_symmetric
from gen.compiler.workloads import DATA_DIR
from gen.network.train import softmax_cross_entropy
from gen.paths import build_dir

__all__ = ["DATA", "bars", "conv", "forward", "loss_and_grads", "train", "evaluate", "main"]

DATA = DATA_DIR / "bars.npz"
SIZE, CLASSES = 12, 4


def bars(n: int, seed: int):
    """``n`` images ``(n, 1, 12, 12)`` float32 and labels ``(n,)``: one bar per image, class = orientation."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=n)
    images = np.zeros((n, SIZE, SIZE), dtype=np.float32)
    t = np.arange(SIZE)
    for i, label in enumerate(labels):
        length = rng.integers(6, SIZE + 1)
        start = rng.integers(0, SIZE - length + 1)
        offset = rng.integers(0, SIZE)
        span = t[start:start + length]
        rows, cols = {0: (np.full(length, offset), span), 1: (span, np.full(length, offset)),
                      2: (span, span), 3: (span, SIZE - 1 - span)}[int(label)]
        if label >= 2:                                          # diagonals at a random shift, clipped
            shift = rng.integers(-3, 4)
            cols = np.clip(cols + shift, 0, SIZE - 1)
        images[i, rows, cols] = rng.uniform(0.6, 1.0)
    images += rng.normal(0, 0.15, size=images.shape).astype(np.float32)
    return images[:, None], labels


def _im2col_index(c, h, w, stride):
    """Indices into the zero-padded flattened image for each (output position, c·9 tap): the conv lowering's
    :func:`hw.formats.conv.im2col` (K order (c, kh, kw)) of the padded image's own flat indices."""
    ho, wo = conv_output_size(h, w, 3, 3, stride, 1)
    return im2col(np.arange(c * (h + 2) * (w + 2)).reshape(c, h + 2, w + 2), 3, 3, stride), ho, wo


def conv(x, w, stride):
    b, c, h, wd = x.shape
    idx, ho, wo = _im2col_index(c, h, wd, stride)
    cols = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).reshape(b, -1)[:, idx]     # (b, P, c·9)
    out = cols @ w.reshape(w.shape[0], -1).T                                        # (b, P, o)
    return out.transpose(0, 2, 1).reshape(b, w.shape[0], ho, wo), (cols, idx, x.shape)


def _conv_backward(grad, w, cache):
    cols, idx, (b, c, h, wd) = cache
    g = grad.reshape(b, w.shape[0], -1).transpose(0, 2, 1)                         # (b, P, o)
    dw = np.einsum("bpo,bpk->ok", g, cols).reshape(w.shape)
    dcols = g @ w.reshape(w.shape[0], -1)                                           # (b, P, c·9)
    dxp = np.zeros((b, c * (h + 2) * (wd + 2)), dtype=grad.dtype)
    for p in range(idx.shape[0]):                                                   # taps of one position are distinct
        dxp[:, idx[p]] += dcols[:, p]
    dx = dxp.reshape(b, c, h + 2, wd + 2)[:, :, 1:-1, 1:-1]
    return dx, dw


def forward(params, x):
    """Logits ``(n, 4)`` of float weights ``params`` (dict conv1, conv2, fc)."""
    h1 = np.maximum(conv(x, params["conv1"], 1)[0], 0)
    h2 = np.maximum(conv(h1, params["conv2"], 2)[0], 0)
    return h2.mean(axis=(2, 3)) @ params["fc"].T


def loss_and_grads(params, x, y):
    a1, c1 = conv(x, params["conv1"], 1)
    h1 = np.maximum(a1, 0)
    a2, c2 = conv(h1, params["conv2"], 2)
    h2 = np.maximum(a2, 0)
    pooled = h2.mean(axis=(2, 3))
    loss, dlogits = softmax_cross_entropy(pooled @ params["fc"].T, y)
    grads = {"fc": dlogits.T @ pooled}
    dpooled = dlogits @ params["fc"]
    dh2 = np.broadcast_to(dpooled[:, :, None, None] / (h2.shape[2] * h2.shape[3]), h2.shape) * (a2 > 0)
    dh1, grads["conv2"] = _conv_backward(dh2, params["conv2"], c2)
    _, grads["conv1"] = _conv_backward(dh1 * (a1 > 0), params["conv1"], c1)
    return loss, grads


def train(*, seed: int = 0, samples: int = 2000, epochs: int = 25, batch: int = 64, lr: float = 0.01):
    """Train the float network (Adam); returns ``params``."""
    rng = np.random.default_rng(seed)
    params = {"conv1": rng.normal(0, np.sqrt(2 / 9), (8, 1, 3, 3)),
              "conv2": rng.normal(0, np.sqrt(2 / 72), (16, 8, 3, 3)),
              "fc": rng.normal(0, np.sqrt(1 / 16), (CLASSES, 16))}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    x, y = bars(samples, seed + 1)
    x = x.astype(np.float64)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(samples)
        for start in range(0, samples, batch):
            sel = order[start:start + batch]
            _, grads = loss_and_grads(params, x[sel], y[sel])
            step += 1
            for k in params:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                params[k] -= lr * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
    return params


def quantized(params):
    """``{name: (int8 weights, scale)}`` per output channel."""
    return {name: quantize_symmetric(w, 8) for name, w in params.items()}


def evaluate(path=DATA, *, samples: int = 1000, seed: int = 12345) -> float:
    """Accuracy of the shipped int8 network (dequantized) on fresh images."""
    data = np.load(path)
    params = {name: dequantize(data[name], data[f"{name}.scale"]) for name in ("conv1", "conv2", "fc")}
    x, y = bars(samples, seed)
    return float((forward(params, x.astype(np.float64)).argmax(axis=1) == y).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gen.compiler.train_tiny", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=build_dir() / "bars.npz",
                        help="output .npz (default $SPARSEGEN_BUILD/bars.npz, else ./build/bars.npz)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    params = train(seed=args.seed)
    q = quantized(params)
    entries = {}
    for name, (w, scale) in q.items():
        entries[name], entries[f"{name}.scale"] = w, scale
    entries["conv1.positions"], entries["conv2.positions"] = np.array(SIZE * SIZE), np.array((SIZE // 2) ** 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **entries)
    print(f"wrote {args.out}: int8 accuracy {evaluate(args.out):.3f} on 1000 fresh images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
