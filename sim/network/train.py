"""Train the shipped digits CNN and write its float and int8 weights (``python -m sim.network.train``).

Also writes ``digits_cnn_test_acts.npz``: every layer's int8 activations of the 450 test images
(:func:`sim.network.golden.save_activations`), for activation-sparsity studies. Reproducible: seed 0, 40 epochs of Adam (cosine-decayed lr 0.01, batch 32) on the 1,347 training images of
:func:`gen.network.data.digits`, then :func:`sim.network.golden.quantize` (one weight scale per output channel,
shifts calibrated on the training images). About 10 s on one core. The default ``--out-dir`` is the build directory;
``--out-dir gen/network/data`` regenerates the shipped files (:data:`gen.network.spec.SHIPPED`). Tests never
train.
"""

import argparse
from pathlib import Path

import numpy as np

from gen.network.data import digits
from gen.network.spec import save
from gen.network.train import accuracy, digits_cnn, train
from gen.paths import build_dir
from sim.network.golden import int8_forward, int8_predict, quantize, save_activations

__all__ = ["SEED", "EPOCHS", "train_shipped", "compare_granularities", "main"]

SEED, EPOCHS = 0, 40


def train_shipped(seed: int = SEED, epochs: int = EPOCHS):
    """``(float network, int8 network)`` trained and quantized as the shipped files are."""
    x, y = digits("train")
    net = train(digits_cnn(seed), x, y, seed=seed, epochs=epochs)
    return net, quantize(net, x, labels=y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.network.train", description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=build_dir() / "network",
                        help="where digits_cnn_float.npz and digits_cnn_int8.npz go (default <build>/network)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)
    net, qnet = train_shipped(args.seed, args.epochs)
    xt, yt = digits("test")
    save(net, args.out_dir / "digits_cnn_float.npz")
    save(qnet, args.out_dir / "digits_cnn_int8.npz")
    save_activations(qnet, xt, yt, args.out_dir / "digits_cnn_test_acts.npz")
    print(f"wrote {args.out_dir}: test accuracy float {accuracy(net, xt, yt):.4f}, "
          f"int8 {float(np.mean(int8_predict(qnet, xt) == yt)):.4f}; shifts {[l.shift for l in qnet.weighted]}")
    for line in compare_granularities(net, qnet):
        print(line)
    return 0


def compare_granularities(net, qnet) -> list:
    """Lines of the quantization comparison of docs/network.md ("Quantization"), test images correct of 450:
    per channel (``qnet``), per channel with the argmax of the integer logits (no per-class scales on the host),
    and one scale per layer."""
    x, y = digits("train")
    xt, yt = digits("test")
    raw = int8_forward(qnet, xt)[-1].reshape(len(xt), -1).argmax(axis=1)
    tensor = quantize(net, x, labels=y, granularity="tensor")
    rows = [("per channel (shipped), argmax of logits · scale", int8_predict(qnet, xt), qnet),
            ("per channel, argmax of the integer logits", raw, qnet),
            ("per tensor (granularity='tensor')", int8_predict(tensor, xt), tensor)]
    return [f"  {name}: {int(np.sum(pred == yt))}/{len(yt)}, shifts {[l.shift for l in q.weighted]}"
            for name, pred, q in rows]


if __name__ == "__main__":
    raise SystemExit(main())
