"""Float forward pass, training and masked fine-tuning of a :class:`gen.network.spec.Network` (numpy only).

Everything works on batches ``(n, C, H, W)`` float64. Convolutions use the one im2col K order of
:mod:`hw.formats.conv` (the index trick: im2col of the padded image's own flat indices). Training is Adam on
softmax cross-entropy; :func:`finetune` is the same with a pruning mask re-applied after every step (so pruned
weights stay exactly zero), the fair-comparison step of the accuracy study. Both are seeded and deterministic.
Layers have no bias: the GEMM engine and the RRAM tile compute ``x · W`` only.

:class:`ActPrune` puts the activation-sparse engine's A-DBB rule (:mod:`hw.formats.actsparse`) into the forward
pass: each weighted layer's im2col input keeps, in every K-block of every row, its ``act_keep`` entries of largest
magnitude (ties to the lower position); :func:`finetune` with ``act_prune=`` trains with it in the loop (S2TA).
"""

from dataclasses import dataclass, replace

import numpy as np

from hw import checks
from hw.formats.conv import ADBB_K_ORDER, K_ORDERS, im2col, k_permutation
from gen.network.spec import Layer, Network

__all__ = ["ActPrune", "adbb_keep", "softmax_cross_entropy", "forward", "logits", "predict", "accuracy", "gradients", "train", "finetune", "digits_cnn", "apply_mask"]


def _cols_index(c, h, w, kh, kw, stride, padding):
    """Indices into the zero-padded flattened image ``[c, h + 2p, w + 2p]`` of every (position, K tap)."""
    hp, wp = h + 2 * padding, w + 2 * padding
    return im2col(np.arange(c * hp * wp).reshape(c, hp, wp), kh, kw, stride, 0)


@dataclass(frozen=True)
class ActPrune:
    """A-DBB on every weighted layer's input, as the activation-sparse GEMM engine applies it.

    Parameters
    ----------
    act_keep : int
        Activations kept per K-block, ``1 … block``.
    block : int
        K-block size (the engine's ``block``, one of :data:`hw.formats.nm.BLOCKS` ≥ 2). Blocks are cut from K
        position 0 of each im2col row laid out in ``k_order``; the last is zero-padded.
    units : dict or callable, optional
        ``{layer name: (C_in,) float}``: the float value of one integer unit of each input channel, so that the
        magnitudes compared are the int8 network's (with per-channel scales an int8 unit differs per channel), or
        ``units(network) -> dict`` re-evaluated at the start of every fine-tuning epoch. ``None``: compare the
        float values themselves (equal units).
    straight_through : bool
        Backward pass: ``False`` (default) passes the gradient through the kept entries only (the pruned ones are
        constants 0); ``True`` passes it to every entry as if nothing were pruned (straight-through estimator).
    layers : tuple of str, optional
        The weighted layers whose input is pruned (default ``None``: all of them); the others see dense inputs.
    k_order : str
        The K order of the im2col rows the blocks are cut from (:data:`hw.formats.conv.K_ORDERS`; default
        :data:`hw.formats.conv.ADBB_K_ORDER`; ``"ijc"``: a block is ``block`` channels of one tap; an fc
        layer's ``(C, H, W)`` input is ordered like a ``C × H × W`` kernel).
    rank_noise : float
        Training only (a regularizer, off by default): every magnitude is multiplied by ``exp(rank_noise · ε)``,
        ``ε ~ N(0, 1)`` drawn per entry and step from ``rng``, before the top-``act_keep`` is taken, so that the
        network does not fit one data-dependent mask. :func:`finetune` seeds ``rng`` from its ``seed``.
    rng : numpy.random.Generator, optional
        The noise's generator (required when ``rank_noise > 0``).
    """

    act_keep: int
    block: int = 4
    units: object = None
    straight_through: bool = False
    layers: tuple | None = None
    k_order: str = ADBB_K_ORDER
    rank_noise: float = 0.0
    rng: object = None

    def __post_init__(self):
        block = checks.check_int("block", self.block, 2, 16, allowed="a power of two 2 … 16 (the engine's block)")
        if block & (block - 1):
            checks.fail("block", block, "is not a power of two", "a power of two 2 … 16 (the engine's block)")
        checks.check_int("act_keep", self.act_keep, 1, block, allowed=f"1 … {block} (block)")
        checks.check_bool("straight_through", self.straight_through)
        checks.check_choice("k_order", self.k_order, K_ORDERS)
        checks.check_float("rank_noise", self.rank_noise, 0.0, 10.0)
        if self.units is not None and not (callable(self.units) or isinstance(self.units, dict)):
            raise TypeError(f"units = {type(self.units).__name__} is not a dict or callable: allowed "
                            "{layer name: (C_in,) array}, units(network) -> dict or None")
        if self.layers is not None:
            if isinstance(self.layers, str) or not all(isinstance(n, str) for n in self.layers):
                raise TypeError(f"layers = {self.layers!r} is not a sequence of layer names: allowed a tuple of "
                                "str or None")
            object.__setattr__(self, "layers", tuple(self.layers))

    def resolve(self, network):
        """This rule with callable ``units`` evaluated on ``network`` (a dict, checked against its layers)."""
        units = self.units(network) if callable(self.units) else self.units
        names = {layer.name: layer for layer in network.weighted}
        for name in self.layers or ():
            if name not in names:
                raise ValueError(f"layers {name!r} is not a weighted layer: allowed {', '.join(names)}")
        for name, u in (units or {}).items():
            if name not in names:
                raise ValueError(f"units layer {name!r} is not a weighted layer: allowed {', '.join(names)}")
            checks.check_float_array(f"units {name!r}", u, ndim=1)
        units = None if units is None else {k: np.asarray(u, np.float64) for k, u in units.items()}
        return replace(self, units=units)


def adbb_keep(x, *, act_keep, block, units=None) -> np.ndarray:
    """Mask (bool, shape of ``x``) of the entries A-DBB keeps along the last axis of a float array ``x``: in every
    block of ``block`` consecutive entries from position 0, the ``act_keep`` of largest ``|x| / units`` (``units``
    broadcast along the last axis; ties to the lower position). On integers it keeps exactly what
    :func:`hw.formats.actsparse.adbb_prune` keeps."""
    x = np.asarray(x, np.float64)
    mag = np.abs(x) if units is None else np.abs(x) / units
    k = x.shape[-1]
    kp = -(-k // block) * block
    mag = np.concatenate([mag, np.zeros(x.shape[:-1] + (kp - k,))], axis=-1).reshape(x.shape[:-1] + (-1, block))
    # a stable descending sort puts equal magnitudes in lane order: a lane's place in it is its A-DBB rank
    order = np.argsort(-mag, axis=-1, kind="stable")
    rank = np.argsort(order, axis=-1)
    return (rank < act_keep).reshape(x.shape[:-1] + (kp,))[..., :k]


def _input_units(layer, prune, per_channel):
    """The (K,) units of a layer's im2col columns (``per_channel`` K columns per input channel), or None."""
    if prune.units is None or layer.name not in prune.units:
        return None
    return np.repeat(prune.units[layer.name], per_channel)


def _prune_cols(layer, cols, prune, shape):
    """``(cols kept, mask)``: A-DBB of the ``"cij"`` im2col rows ``cols`` of a ``shape = (C, kh, kw)`` input
    window, its blocks cut in ``prune.k_order`` (mask None without ``prune``)."""
    if prune is None or (prune.layers is not None and layer.name not in prune.layers):
        return cols, None
    perm = k_permutation(*shape, prune.k_order)
    units = _input_units(layer, prune, shape[1] * shape[2])
    units = None if units is None else units[perm]
    if prune.rank_noise:
        units = (1.0 if units is None else units) * np.exp(-prune.rank_noise * prune.rng.standard_normal(cols.shape))
    kept = adbb_keep(cols[..., perm], act_keep=prune.act_keep, block=prune.block, units=units)
    keep = np.empty_like(kept)
    keep[..., perm] = kept
    return cols * keep, keep


def _layer_forward(layer, x, prune=None):
    """``(y, cache)`` of one layer on a float batch (before ReLU); ``prune`` an :class:`ActPrune` (resolved)."""
    b, c, h, w = x.shape
    if layer.kind == "maxpool":
        s = layer.size
        ho, wo = h // s, w // s
        blocks = x[:, :, :ho * s, :wo * s].reshape(b, c, ho, s, wo, s)
        y = blocks.max(axis=(3, 5))
        return y, (x.shape, blocks, y)
    if layer.kind == "fc":
        flat, keep = _prune_cols(layer, x.reshape(b, -1), prune, (c, h, w))
        return (flat @ layer.weight.T)[:, :, None, None], (x.shape, flat, keep)
    wt = layer.weight
    kh, kw = wt.shape[2:]
    p = layer.padding
    idx = _cols_index(c, h, w, kh, kw, layer.stride, p)                                  # (P, c·kh·kw)
    ho = (h + 2 * p - kh) // layer.stride + 1
    wo = (w + 2 * p - kw) // layer.stride + 1
    cols = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))).reshape(b, -1)[:, idx]             # (b, P, c·kh·kw)
    cols, keep = _prune_cols(layer, cols, prune, (c, kh, kw))
    if layer.kind == "conv":
        y = cols @ wt.reshape(wt.shape[0], -1).T                                          # (b, P, o)
    else:
        y = np.einsum("bpck,ck->bpc", cols.reshape(b, -1, c, kh * kw), wt.reshape(c, -1))
    return y.transpose(0, 2, 1).reshape(b, -1, ho, wo), (x.shape, cols, idx, keep)


def _layer_backward(layer, grad, cache, prune=None):
    """``(dx, dw)`` of one layer (``dw`` None for maxpool). A-DBB's pruned inputs get no gradient unless
    ``prune.straight_through``."""
    if layer.kind == "maxpool":
        shape, blocks, y = cache
        s = layer.size
        b, c, ho, wo = y.shape
        hit = blocks == y[:, :, :, None, :, None]
        hit = hit / hit.sum(axis=(3, 5), keepdims=True)                                   # ties share the gradient
        dx = np.zeros(shape)
        dx[:, :, :ho * s, :wo * s] = (hit * grad[:, :, :, None, :, None]).reshape(b, c, ho * s, wo * s)
        return dx, None
    if layer.kind == "fc":
        shape, flat, keep = cache
        g = grad.reshape(grad.shape[0], -1)
        dflat = g @ layer.weight
        if keep is not None and not prune.straight_through:
            dflat = dflat * keep
        return dflat.reshape(shape), g.T @ flat
    shape, cols, idx, keep = cache
    b, c, h, w = shape
    p = layer.padding
    wt = layer.weight
    g = grad.reshape(b, wt.shape[0], -1).transpose(0, 2, 1)                               # (b, P, o)
    if layer.kind == "conv":
        dw = np.einsum("bpo,bpk->ok", g, cols).reshape(wt.shape)
        dcols = g @ wt.reshape(wt.shape[0], -1)
    else:
        k = wt.shape[2] * wt.shape[3]
        dw = np.einsum("bpc,bpck->ck", g, cols.reshape(b, -1, c, k)).reshape(wt.shape)
        dcols = (g[:, :, :, None] * wt.reshape(1, 1, c, k)).reshape(b, g.shape[1], -1)
    if keep is not None and not prune.straight_through:
        dcols = dcols * keep
    dxp = np.zeros((b, c * (h + 2 * p) * (w + 2 * p)))
    flat_idx = idx.ravel()
    for i in range(b):                                  # bincount: a scatter-add of the repeated taps
        dxp[i] = np.bincount(flat_idx, weights=dcols[i].ravel(), minlength=dxp.shape[1])
    dx = dxp.reshape(b, c, h + 2 * p, w + 2 * p)[:, :, p:p + h, p:p + w]
    return dx, dw


def forward(network: Network, images, *, keep: bool = False, act_prune: ActPrune | None = None):
    """Float outputs of every layer: a list with one ``(n, C, H, W)`` array per layer (after its ReLU).

    ``network`` must be a float network (the int8 one runs in :func:`sim.network.golden.int8_forward`).
    ``keep`` also returns the caches and the network for the backward pass. ``act_prune`` applies A-DBB to
    every weighted layer's im2col input (:class:`ActPrune`).
    """
    x = network.check_images(images)
    if network.quantized:
        raise ValueError(f"network {network.name!r} has integer weights: allowed a float network "
                         "(sim.network.golden.int8_forward runs int8 ones)")
    net = network
    if act_prune is not None:
        checks.check_instance("act_prune", act_prune, ActPrune)
        act_prune = act_prune.resolve(net)
        if act_prune.rank_noise and act_prune.rng is None:
            raise ValueError(f"act_prune.rank_noise = {act_prune.rank_noise} has no rng: allowed with an rng "
                             "(finetune seeds one) or rank_noise = 0")
    outs, caches = [], []
    for layer in net.layers:
        y, cache = _layer_forward(layer, x, act_prune)
        if layer.relu:
            cache = (cache, y > 0)
            y = np.maximum(y, 0)
        outs.append(y)
        caches.append(cache)
        x = y
    return (outs, caches, net) if keep else outs


def logits(network: Network, images) -> np.ndarray:
    """``(n, classes)`` float logits."""
    return forward(network, images)[-1].reshape(len(images), -1)


def predict(network: Network, images) -> np.ndarray:
    """``(n,)`` predicted classes of the float (or dequantized) network."""
    return logits(network, images).argmax(axis=1)


def accuracy(network: Network, images, labels) -> float:
    """Fraction of ``images`` whose float prediction equals ``labels``."""
    return float((predict(network, images) == np.asarray(labels)).mean())


def softmax_cross_entropy(logits, labels) -> tuple:
    """``(loss, dloss/dlogits)`` of the mean softmax cross-entropy of ``logits`` ``(n, classes)`` (float) against
    integer ``labels`` ``(n,)``."""
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z)
    total = prob.sum(axis=1, keepdims=True)
    prob /= total
    n = len(labels)
    # log-softmax, not log(prob + floor): a floor changes the loss's slope where a probability is ~1e-12 (a badly
    # misclassified image), and the gradient returned would no longer be the loss's
    loss = (np.log(total[:, 0]) - z[np.arange(n), labels]).mean()
    prob[np.arange(n), labels] -= 1
    return loss, prob / n


def _loss_and_grads(network, x, y, act_prune=None, soft=None):
    outs, caches, net = forward(network, x, keep=True, act_prune=act_prune)
    loss, grad = softmax_cross_entropy(outs[-1].reshape(len(x), -1), y)
    if soft is not None:
        # distillation: the target is (1 − weight) · one-hot label + weight · the teacher's probabilities
        weight, probs = soft
        grad = grad + weight * (np.eye(grad.shape[1])[y] - probs) / len(x)
    grad = grad.reshape(outs[-1].shape)
    grads = {}
    for layer, cache in zip(reversed(net.layers), reversed(caches)):
        if layer.relu:
            cache, active = cache
            grad = grad * active
        grad, dw = _layer_backward(layer, grad, cache, act_prune)
        if dw is not None:
            grads[layer.name] = dw
    return loss, grads


def gradients(network: Network, images, labels, *, act_prune: ActPrune | None = None) -> tuple:
    """``(loss, {layer name: dloss/dweight})`` of the mean softmax cross-entropy of a float network on one batch
    (what a training step uses; ``act_prune`` as in :func:`forward`)."""
    x = network.check_images(images)
    y = checks.check_int_array("labels", labels, ndim=1, lo=0, hi=network.classes - 1)
    if len(y) != len(x):
        raise ValueError(f"labels has {len(y)} entries for {len(x)} images: allowed one per image")
    return _loss_and_grads(network, x, y, act_prune)


def apply_mask(network: Network, mask: dict) -> Network:
    """``network`` with every weight of ``mask`` (``{layer name: bool array}``, True = kept) multiplied by it."""
    return network.with_weights({name: network.weights()[name] * np.asarray(m, bool) for name, m in mask.items()})


def _adam(network, images, labels, *, seed, epochs, batch, lr, mask=None, progress=None, project=None,
          act_prune=None, teacher=None, distill=0.5):
    checks.check_int("epochs", epochs, 0, 10_000)
    checks.check_int("batch", batch, 1, 1 << 20)
    checks.check_float("lr", lr, 0.0, 1.0)
    x = network.check_images(images)
    y = checks.check_int_array("labels", labels, ndim=1, lo=0, hi=network.classes - 1)
    if len(y) != len(x):
        raise ValueError(f"labels has {len(y)} entries for {len(x)} images: allowed one per image")
    if network.quantized:
        raise ValueError(f"network {network.name!r} has integer weights: allowed a float network")
    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng([seed, 1])        # A-DBB's rank noise: its own stream, the batches unchanged
    if mask is not None:
        network = apply_mask(network, mask)
    params = {k: v.astype(np.float64).copy() for k, v in network.weights().items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    step, total = 0, epochs * (-(-len(x) // batch))
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        # callable units follow the weights: re-evaluated once per epoch on the current network
        act = None if act_prune is None else act_prune.resolve(network.with_weights(params))
        if act is not None and act.rank_noise and act.rng is None:
            act = replace(act, rng=noise_rng)
        for start in range(0, len(x), batch):
            sel = order[start:start + batch]
            # straight-through estimator: the forward pass sees the projected weights, the update the float ones
            shown = params if project is None else {k: project(w) for k, w in params.items()}
            xb = x[sel]
            soft = None
            if teacher is not None:
                z = logits(teacher, xb)
                z = np.exp(z - z.max(axis=1, keepdims=True))
                soft = (distill, z / z.sum(axis=1, keepdims=True))
            _, grads = _loss_and_grads(network.with_weights(shown), xb, y[sel], act, soft)
            step += 1
            rate = lr * 0.5 * (1 + np.cos(np.pi * step / total))                # cosine decay to 0
            for k in params:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                params[k] -= rate * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
                if mask is not None and k in mask:
                    params[k] *= mask[k]
        if progress is not None:
            progress(epoch)
    return network.with_weights(params if project is None else {k: project(w) for k, w in params.items()})


def train(network: Network, images, labels, *, seed: int = 0, epochs: int = 60, batch: int = 32,
          lr: float = 0.01, progress=None) -> Network:
    """Train a float network from its current weights (Adam, cosine-decayed ``lr``, softmax cross-entropy).

    Returns the trained network; deterministic for a seed. ``progress(epoch)`` is called after each epoch.
    """
    return _adam(network, images, labels, seed=seed, epochs=epochs, batch=batch, lr=lr, progress=progress)


def finetune(network: Network, mask: dict, images, labels, *, seed: int = 0, epochs: int = 15, batch: int = 32,
             lr: float = 0.002, progress=None, project=None, act_prune: ActPrune | None = None,
             teacher: Network | None = None, distill: float = 0.5) -> Network:
    """Masked fine-tuning: the weights of ``mask`` (``{layer name: bool array}``, True = kept) are pruned first
    and stay exactly zero (the mask is re-applied after every step); the rest are trained.

    A few seconds for the digits CNN (15 epochs over 1,347 images on one core). ``project(w) -> w`` (e.g. a
    quantizer returning dequantized weights) makes it quantization-aware with a straight-through estimator: the
    forward pass uses ``project(w)``, the update goes to the float ``w``, and the result is projected.
    ``act_prune`` (:class:`ActPrune`) trains with the engine's A-DBB on every weighted layer's input in the loop
    (S2TA's A-DBB-aware training); with an empty ``mask`` nothing is pruned in the weights. ``teacher`` (a float
    network, e.g. the unpruned one) adds knowledge distillation: the target is ``(1 − distill)`` of the one-hot
    label plus ``distill`` of the teacher's softmax on the same batch (the teacher sees dense activations).
    """
    if teacher is not None:
        checks.check_instance("teacher", teacher, Network)
    checks.check_float("distill", distill, 0.0, 1.0)
    if act_prune is not None:
        checks.check_instance("act_prune", act_prune, ActPrune)
    if not isinstance(mask, dict):
        raise TypeError(f"mask = {type(mask).__name__} is not a dict: allowed {{layer name: bool array}}")
    weights = network.weights()
    for name, m in mask.items():
        if name not in weights:
            raise ValueError(f"mask layer {name!r} is not a weighted layer: allowed {', '.join(weights)}")
        if np.shape(m) != weights[name].shape:
            raise ValueError(f"mask {name!r} shape {np.shape(m)} differs from the weight's {weights[name].shape}")
    mask = {k: np.asarray(m, bool) for k, m in mask.items()}
    return _adam(network, images, labels, seed=seed, epochs=epochs, batch=batch, lr=lr, mask=mask,
                 progress=progress, project=project, act_prune=act_prune, teacher=teacher, distill=distill)


def digits_cnn(seed: int = 0) -> Network:
    """The untrained digits CNN (He-initialized, seeded): see :data:`gen.network.spec.SHIPPED`.

    ``conv1`` 3×3 1→8 (stride 2, pad 1) → ReLU → ``conv2`` 3×3 8→16 (stride 2, pad 1) → ReLU → ``pool`` max
    2×2 (global) → ``fc`` 16→10 (logits, no ReLU). Small on purpose: one image is 21 im2col vectors, about 1,500
    cycles on the RRAM tile (``sim.network.rtl.model_cycles``).
    """
    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng([seed, 1])        # A-DBB's rank noise: its own stream, the batches unchanged

    def he(*shape):
        return rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
    layers = (Layer("conv", "conv1", he(8, 1, 3, 3), stride=2, padding=1),
              Layer("conv", "conv2", he(16, 8, 3, 3), stride=2, padding=1),
              Layer("maxpool", "pool", size=2, relu=False),
              Layer("fc", "fc", he(10, 16), relu=False))
    from gen.network.data import DATASET
    return Network("digits-cnn", (1, 8, 8), layers, classes=10, dataset=DATASET)
