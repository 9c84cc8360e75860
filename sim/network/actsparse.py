"""The accuracy cost of A-DBB activation pruning on the trained digits CNN, without and with A-DBB-aware
fine-tuning (docs/gemm-actsparse.md, "Accuracy on the trained network").

The int8 golden (:func:`sim.network.golden.int8_forward`) with its ``gemm`` hook replaced by what the
activation-sparse engine computes in A-DBB mode (:func:`sim.gemm.golden.effective_acts`): every weighted layer's
GEMM operand A (its im2col rows; the first layer's are the int8 image's, since the whole network runs on the
engine) pruned by :func:`hw.formats.actsparse.adbb_prune`, K-blocks of ``block`` cut from K position 0 of each
row (the engine's K-tiles start on block boundaries, so a job's blocks are the row's), the last block
zero-padded, the row laid out in the K order ``k_order`` (:data:`hw.formats.conv.K_ORDERS`: ``"cij"`` blocks of a
channel's taps, ``"ijc"`` blocks of the channels at one tap; a host choice, the engine computes the same ``A @ W``).
The logits layer runs as ``[W, −W]`` on the same A, so its A-DBB is the same.

Fine-tuning (:func:`adbb_finetune`) is :func:`gen.network.train.finetune` with :class:`gen.network.train.ActPrune`
in the forward pass (gradient through the kept activations only); magnitudes are compared in the int8 network's
units (:func:`int8_units`, re-derived from the current float weights every epoch); the dense float network is
distilled from; the result is quantized per channel as shipped (:func:`sim.network.golden.quantize` with the
training labels). Every seed of ``--seeds`` (default :data:`SEEDS`) is fine-tuned and reported (mean and min-max:
the seed-to-seed spread on 450 test images is 1-2 points; no seed is selected). ``python -m sim.network.actsparse
[--epochs E] [--lr R] [--distill D] [--rank-noise S] [--seeds S,...] [--act-keeps A,...] [--weights W,...]
[--k-order O] [--reorder [none|balance|search]] [--control] [--layers L,...] [--json]`` prints the study.
"""

import argparse
import json
import time

import numpy as np

from hw import checks
from hw.formats.actsparse import adbb_prune
from hw.formats.conv import ADBB_K_ORDER, K_ORDERS, k_permutation
from gen.compiler.prune import as_matrix, from_matrix, nm
from gen.network.data import digits
from gen.network.spec import SHIPPED, Network, load
from gen.network.train import ActPrune, finetune, forward, softmax_cross_entropy
from sim.network.golden import classes_of, int8_forward, quantize

__all__ = ["ACT_KEEPS", "BLOCK", "EPOCHS", "LR", "DISTILL", "RANK_NOISE", "SEEDS", "REORDERS", "REORDER", "WEIGHTS",
           "adbb_gemm", "adbb_predict", "int8_units", "permute_channels", "adbb_channel_order",
           "balanced_channel_order", "nm_k_mask", "nm_n_mask", "adbb_finetune", "measure", "finetune_run", "spread",
           "adbb_study", "rtl_check", "study_table", "main"]

ACT_KEEPS = (3, 2, 1)
BLOCK = 4
# the A-DBB fine-tuning recipe (docs/gemm-actsparse.md); RANK_NOISE: the training's noise on A-DBB's ranking
EPOCHS, LR, DISTILL, RANK_NOISE = 30, 0.005, 0.5, 0.15
WEIGHTS = ("int8", "2:4")                  # the study's starts: the shipped weights, and them pruned 2:4
# also available: "2:4N", the weights pruned 2:4 along the output axis N (the gemm_8x8_2of4_act2of4 engine's)
STARTS = WEIGHTS + ("2:4N",)
SEEDS = (0, 1, 2)                          # its seeds: 450 test images, the seed-to-seed spread is 1-2 points
# the channel orders of adbb_study: the shipped one, balanced_channel_order (the recipe's), adbb_channel_order
REORDERS = ("none", "balance", "search")
REORDER = "balance"


def _check(act_keep, block):
    rule = ActPrune(act_keep, block)                     # the one validation of act_keep and block
    return int(rule.act_keep), int(rule.block)


def _check_layers(network, layers):
    names = [layer.name for layer in network.weighted]
    for name in layers or ():
        if name not in names:
            raise ValueError(f"layers {name!r} is not a weighted layer: allowed {', '.join(names)}")


def adbb_gemm(act_keep: int, block: int = BLOCK, layers=None):
    """The ``gemm(layer, A, W)`` hook of :func:`sim.network.golden.int8_forward` that computes what the A-DBB
    engine computes: ``adbb_prune(A, act_keep=, block=) @ W`` on the weighted layers named in ``layers``
    (default ``None``: all, the first included); the others compute ``A @ W``."""
    act_keep, block = _check(act_keep, block)
    layers = None if layers is None else tuple(layers)

    def gemm(layer, A, W):
        if layers is not None and layer.name not in layers:
            return A @ W
        return adbb_prune(A, act_keep=act_keep, block=block) @ W
    return gemm


def adbb_predict(qnet: Network, images, act_keep: int | None, block: int = BLOCK, layers=None,
                 k_order: str = ADBB_K_ORDER) -> np.ndarray:
    """``(n,)`` classes of the int8 network ``qnet`` with A-DBB ``act_keep`` of ``block`` on the input of the
    weighted ``layers`` (default all; ``act_keep = None``: dense activations, the plain int8 golden), the im2col
    rows laid out in ``k_order`` (:data:`hw.formats.conv.K_ORDERS`)."""
    _check_layers(qnet, layers)
    gemm = None if act_keep is None else adbb_gemm(act_keep, block, layers)
    return classes_of(qnet, int8_forward(qnet, images, gemm=gemm, k_order=k_order)[-1])


def int8_units(qnet: Network) -> dict:
    """``{weighted layer: (C_in,) float}``: the float value of one integer unit of each input channel of the int8
    network (the image scale for the first layer, then the producing layer's ``scale · 2^shift`` per channel,
    unchanged through a max-pool). A-DBB compares int8 magnitudes; with per-channel scales they rank channels
    differently from the float values."""
    units, current = {}, np.full(qnet.input_shape[0], float(qnet.input_scale))
    for layer in qnet.layers:
        if layer.kind == "maxpool":
            continue
        units[layer.name] = current
        current = np.asarray(layer.scale, np.float64) * (1 << layer.shift)
    return units


def permute_channels(fnet: Network, perms: dict) -> Network:
    """``fnet`` with the output channels of the weighted layers in ``perms`` (``{layer name: (C_out,) permutation}``,
    not the last weighted layer: its channels are the classes) reordered, and the next weighted layer's input
    channels with them: the same function on dense activations (a max-pool in between keeps channels), but other
    channels share A-DBB's K-blocks in the next layer. ``conv`` and ``fc`` layers only."""
    checks.check_instance("fnet", fnet, Network)
    weighted = list(fnet.weighted)
    names = [l.name for l in weighted[:-1]]
    weights = dict(fnet.weights())
    for name, perm in perms.items():
        if name not in names:
            raise ValueError(f"perms layer {name!r} is not a hidden weighted layer: allowed {', '.join(names)}")
        i = names.index(name)
        layer, nxt = weighted[i], weighted[i + 1]
        for l in (layer, nxt):
            if l.kind not in ("conv", "fc"):
                raise ValueError(f"perms layer {l.name!r} is {l.kind}: allowed conv and fc layers")
        perm = checks.check_int_array(f"perms {name!r}", perm, ndim=1, lo=0, hi=layer.out_channels - 1)
        if sorted(perm.tolist()) != list(range(layer.out_channels)):
            raise ValueError(f"perms {name!r} = {perm.tolist()} is not a permutation: allowed each of "
                             f"0 … {layer.out_channels - 1} once")
        weights[name] = weights[name][perm]
        w = weights[nxt.name]
        # an fc layer's K is (c, h, w) flattened: a channel's columns move together
        weights[nxt.name] = w.reshape(w.shape[0], layer.out_channels, -1)[:, perm].reshape(w.shape)
    return fnet.with_weights(weights)


def adbb_channel_order(fnet: Network, act_keep: int, *, block: int = BLOCK, rounds: int = 2, layers=None,
                       k_order: str = ADBB_K_ORDER) -> dict:
    """``{hidden weighted layer: permutation}`` of the output channels (for :func:`permute_channels`) that lowers
    the training loss of ``fnet`` with A-DBB ``act_keep`` of ``block`` on every weighted layer's input (``layers``:
    on those only): which channels share a K-block decides what top-k drops (Sense groups channels before the
    engine; here the order is folded into the weights, so the network computes the same on dense activations).

    Deterministic local search: for each hidden layer from the last, every swap of two channels that changes the
    next layer's blocks is tried and kept when the mean softmax cross-entropy on the 1,347 training images
    (float forward pass, magnitudes in the int8 network's units) drops; ``rounds`` passes, fewer when a pass keeps
    no swap. About 15 s per pass on one core for the digits CNN."""
    act_keep, block = _check(act_keep, block)
    checks.check_int("rounds", rounds, 0, 100)
    _check_layers(fnet, layers)
    x, y = digits("train")
    units = int8_units(quantize(fnet, x))
    weighted = list(fnet.weighted)
    perms = {l.name: np.arange(l.out_channels) for l in weighted[:-1]}

    def loss(order):
        u = dict(units)
        for i, l in enumerate(weighted[:-1]):
            u[weighted[i + 1].name] = units[weighted[i + 1].name][order[l.name]]
        net = permute_channels(fnet, order)
        rule = ActPrune(act_keep, block, units=u, layers=layers, k_order=k_order)
        z = forward(net, x, act_prune=rule)[-1].reshape(len(x), -1)
        return softmax_cross_entropy(z, y)[0]

    best = loss(perms)
    for _ in range(rounds):
        kept = False
        for i in reversed(range(len(weighted) - 1)):
            name, nxt = weighted[i].name, weighted[i + 1]
            per_channel = int(np.prod(nxt.weight.shape[1:])) // weighted[i].out_channels
            n = weighted[i].out_channels
            for a in range(n):
                for b in range(a + 1, n):
                    if per_channel == 1 and a // block == b // block:
                        continue            # one column per channel: a swap inside a block changes nothing
                    order = {k: v.copy() for k, v in perms.items()}
                    order[name][[a, b]] = order[name][[b, a]]
                    trial = loss(order)
                    if trial < best - 1e-12:
                        best, perms, kept = trial, order, True
        if not kept:
            break
    return perms


def balanced_channel_order(fnet: Network, *, block: int = BLOCK) -> dict:
    """``{hidden weighted layer: permutation}`` of the output channels (for :func:`permute_channels`) that deals
    them to the next layer's K-blocks by how often they are non-zero, dense and sparse ones mixed in every block
    (:func:`sim.gemm.driver.balance_channels`, Sense's channel rearrangement; counts over the 1,347 training
    images in the int8 network, shifts uncalibrated): every block gets busy and rarely active channels alike. A
    channel's blocks are its channel group at each tap in the ``"ijc"`` K order (the fc layer's 16 pooled
    channels: 4 groups of 4); in ``"cij"`` blocks run along a channel's taps, and the order only moves where they
    straddle channels. Data-driven, no search: fast."""
    from sim.gemm.driver import balance_channels

    checks.check_instance("fnet", fnet, Network)
    _check(1, block)
    x, _ = digits("train")
    qnet = quantize(fnet, x)
    outs = dict(zip([l.name for l in qnet.layers], int8_forward(qnet, x)))
    perms = {}
    for layer in list(qnet.weighted)[:-1]:
        counts = np.count_nonzero(outs[layer.name], axis=(0, 2, 3))
        perms[layer.name] = balance_channels(np.zeros((1, len(counts))), block=block, density=counts)
    return perms


def nm_k_mask(w, keep: int = 2, block: int = BLOCK, k_order: str = "cij") -> np.ndarray:
    """The pruning mask of a conv or linear weight with ``keep:block`` along the reduction axis K of its GEMM
    matrix laid out in ``k_order`` (:func:`hw.formats.conv.k_permutation`): ``"cij"`` is
    :func:`gen.compiler.prune.nm`'s blocks of taps; ``"ijc"`` blocks of ``block`` input channels at one tap, the
    layout an A-DBB engine fed in that order needs its 2:4 weights in."""
    w = np.asarray(w)
    shape = w.shape[1:] if w.ndim == 4 else (w.shape[1], 1, 1)
    perm = k_permutation(*shape, k_order)
    M = as_matrix(w)[perm]                       # K (in k_order) × N; nm() prunes a [out, in] weight along `in`
    return from_matrix(nm(M.T, keep, block)[0].T[np.argsort(perm)], w.shape)


def nm_n_mask(w, keep: int = 2, block: int = BLOCK) -> np.ndarray:
    """The pruning mask of a conv or linear weight with ``keep:block`` along the output axis N of its GEMM matrix
    (:func:`gen.compiler.prune.as_matrix`, K × N): per im2col row, of every ``block`` consecutive output channels
    the ``keep`` largest ``|w|`` are kept, ties to the lower channel (:func:`hw.formats.nm_n.prune_n`'s rule; a
    short last block keeps at most ``keep``)."""
    M = as_matrix(w)                             # K × N; nm() prunes a [out, in] weight along `in`: pass M itself
    return from_matrix(nm(M, keep, block)[0], np.shape(w))


def adbb_finetune(fnet: Network, act_keep: int | None, *, block: int = BLOCK, mask: dict | None = None,
                  teacher: Network | None = None, distill: float = DISTILL, epochs: int = EPOCHS, lr: float = LR,
                  seed: int = 0, straight_through: bool = False, layers=None, adbb_calibration: bool = False,
                  k_order: str = ADBB_K_ORDER, rank_noise: float = RANK_NOISE, progress=None) -> tuple:
    """``(float network, int8 network)``: ``fnet`` fine-tuned with A-DBB ``act_keep`` of ``block`` in the forward
    pass, then quantized per channel as shipped (:func:`sim.network.golden.quantize` with the training labels).

    ``act_keep = None``: the same recipe with dense activations (the control that separates what fine-tuning
    alone does from what A-DBB costs). ``mask``: a weight pruning mask kept throughout (fine-tuning never revives
    a pruned weight). ``teacher``: a float network distilled from (its softmax on dense activations is ``distill``
    of the target; default ``fnet`` itself; ``distill = 0`` turns it off). ``layers``: the weighted layers pruned
    (default all). ``adbb_calibration``: the shifts' label search measures accuracy with the A-DBB GEMM in the
    loop (``quantize(..., gemm=adbb_gemm(act_keep))``) instead of exact sums. ``k_order``: the K order A-DBB's
    blocks are cut in, ``rank_noise`` the training's noise on the ranking (:class:`gen.network.train.ActPrune`:
    the top-k is taken on ``|a| · exp(rank_noise · ε)``, a fresh ``ε ~ N(0, 1)`` per entry and step; 0: off).
    Seeded (``seed``); about 30 s for 30 epochs on one core.
    """
    x, y = digits("train")
    rule = None
    if act_keep is not None:
        act_keep, block = _check(act_keep, block)

        def units(net):
            # shifts scale a whole layer's input alike, so the quick calibration (no label search) ranks the same
            return int8_units(quantize(net, x))
        rule = ActPrune(act_keep, block, units=units, straight_through=straight_through, layers=layers,
                        k_order=k_order, rank_noise=rank_noise)
    tuned = finetune(fnet, mask or {}, x, y, seed=seed, epochs=epochs, lr=lr, act_prune=rule,
                     teacher=(fnet if teacher is None else teacher) if distill else None, distill=distill,
                     progress=progress)
    gemm = adbb_gemm(act_keep, block, layers) if adbb_calibration and act_keep is not None else None
    return tuned, quantize(tuned, x, labels=y, gemm=gemm, k_order=k_order)


def measure(tuned: Network, qnet: Network, act_keep: int | None, *, block: int = BLOCK, layers=None,
            k_order: str = ADBB_K_ORDER) -> dict:
    """``{"test", "train", "float"}``: the int8 network ``qnet``'s accuracy with A-DBB ``act_keep`` (``None``:
    dense) on the 450 test and the 1,347 training images, and its float network ``tuned``'s on the test images
    with the same A-DBB (:func:`gen.network.train.forward`, magnitudes in ``qnet``'s units, no int8 rounding),
    blocks cut in ``k_order``."""
    x, y = digits("train")
    xt, yt = digits("test")
    rule = None if act_keep is None else ActPrune(act_keep, block, units=int8_units(qnet), layers=layers,
                                                  k_order=k_order)
    flt = forward(tuned, xt, act_prune=rule)[-1].reshape(len(xt), -1).argmax(axis=1)
    return {"test": float(np.mean(adbb_predict(qnet, xt, act_keep, block, layers, k_order) == yt)),
            "train": float(np.mean(adbb_predict(qnet, x, act_keep, block, layers, k_order) == y)),
            "float": float(np.mean(flt == yt))}


def finetune_run(start: Network, act_keep: int | None, *, seed: int, block: int = BLOCK, mask: dict | None = None,
                 teacher: Network | None = None, layers=None, k_order: str = ADBB_K_ORDER, **recipe) -> dict:
    """One seed of :func:`adbb_finetune` (``recipe``: its ``epochs``, ``lr``, ``distill``, ``straight_through``)
    measured by :func:`measure`: ``{"seed", "test", "train", "float"}``."""
    tuned, qnet = adbb_finetune(start, act_keep, block=block, mask=mask, teacher=teacher, seed=seed, layers=layers,
                                k_order=k_order, **recipe)
    return {"seed": int(seed), **measure(tuned, qnet, act_keep, block=block, layers=layers, k_order=k_order)}


def spread(runs: list, key: str = "test") -> dict:
    """``{"mean", "min", "max", "std"}`` of ``key`` over the seeds' ``runs`` (std: population, ``ddof = 0``)."""
    v = np.array([r[key] for r in runs], np.float64)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "std": float(v.std())}


def _accuracies(qnet, images, labels, act_keeps, block, layers, k_order):
    out = {"dense": float(np.mean(adbb_predict(qnet, images, None) == labels))}
    for a in act_keeps:
        out[a] = float(np.mean(adbb_predict(qnet, images, a, block, layers, k_order) == labels))
    return out


def _seeds(seeds):
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds = () is empty: allowed one or more fine-tuning seeds")
    return tuple(checks.check_int("seed", s, 0, 2**32 - 1) for s in seeds)


def adbb_study(fnet: Network | None = None, *, act_keeps=ACT_KEEPS, block: int = BLOCK, epochs: int = EPOCHS,
               lr: float = LR, distill: float = DISTILL, rank_noise: float = RANK_NOISE, seeds=SEEDS, layers=None,
               control: bool = False, weights=WEIGHTS, reorder=REORDER, k_order: str = ADBB_K_ORDER,
               quiet: bool = True, **recipe) -> dict:
    """Test accuracy (int8 golden, the 450 test images) of int8 and 2:4-pruned weights × A-DBB ``act_keeps``,
    without and with A-DBB-aware fine-tuning, the fine-tuning repeated for every seed of ``seeds``.

    Returns ``{"int8": row, "2:4": row, "block", "epochs", "lr", "distill", "seeds", "images", "layers",
    "seconds"}`` with ``row = {"no_finetune": {"dense": acc, act_keep: acc, …}, "finetune": {act_keep: mean acc,
    …}, "runs": {act_keep: [run, …]}}`` (a run per seed: :func:`finetune_run`; :func:`spread` summarizes them).
    ``recipe``: more :func:`adbb_finetune` options (``straight_through``, ``adbb_calibration``).
    ``int8``: the shipped network (``fnet``, default the shipped float one, quantized as shipped); ``2:4``: its
    weights pruned 2:4 along K in ``k_order`` (:func:`nm_k_mask`) and fine-tuned with the mask (15 epochs, seed 0,
    as in :func:`sim.network.accuracy.pruning_study`). ``runs[a]``: that start fine-tuned by :func:`adbb_finetune` with
    A-DBB ``a`` (mask kept, ``fnet`` the teacher), measured at ``a``. No seed is selected: the mean is over all.
    ``weights``: which of the two starts (default both). ``reorder``: ``"balance"`` (the default, the recipe's):
    ``fnet``'s channels are first put in :func:`balanced_channel_order` (:func:`permute_channels`: the same dense
    function), and everything follows (the starts, their pruning, the teacher, ``no_finetune``); ``"search"`` (or
    ``True``): the ``int8`` start's channels are put in :func:`adbb_channel_order` for each ``act_keep`` (the
    permuted network is also the teacher; ``no_finetune`` stays the shipped order's; not with ``2:4``, whose pruning
    would have to follow the order); ``"none"`` (or ``False``): the shipped order. ``control``: also
    ``runs["dense"]``, the same recipe and seeds without A-DBB, measured dense.
    ``layers``: the weighted layers whose input A-DBB prunes (default all: one engine runs the whole network).
    ``k_order``: the K order of the im2col rows A-DBB cuts its blocks from (:data:`hw.formats.conv.K_ORDERS`,
    default :data:`hw.formats.conv.ADBB_K_ORDER`), in the fine-tuning and the int8 golden alike.
    """
    t0 = time.perf_counter()
    k_order = checks.check_choice("k_order", k_order, K_ORDERS)
    acts = tuple(_check(a, block)[0] for a in act_keeps)
    ActPrune(1, block, rank_noise=rank_noise)                             # the recipe's noise, checked up front
    seeds = _seeds(seeds)
    fnet = load(SHIPPED["digits-float"]) if fnet is None else checks.check_instance("fnet", fnet, Network)
    _check_layers(fnet, layers)
    x, y = digits("train")
    xt, yt = digits("test")
    weights = tuple(checks.check_choice("weights", w, STARTS) for w in weights)
    if isinstance(reorder, bool):
        reorder = "search" if reorder else "none"
    reorder = checks.check_choice("reorder", reorder, REORDERS)
    if reorder == "search" and ("2:4" in weights or "2:4N" in weights):
        raise ValueError("reorder = 'search' with weights 2:4: allowed with the int8 start only (weights=('int8',))")
    if reorder == "balance":
        # the same dense function: every start (its pruning too), teacher and control follow the order
        fnet = permute_channels(fnet, balanced_channel_order(fnet, block=block))
    mask = {k: nm_k_mask(w, k_order=k_order) for k, w in fnet.weights().items()}
    starts = {"int8": (fnet, None)} if "int8" in weights else {}
    if "2:4" in weights:
        starts["2:4"] = (finetune(fnet, mask, x, y, seed=0, epochs=15), mask)
    if "2:4N" in weights:
        mask_n = {k: nm_n_mask(w) for k, w in fnet.weights().items()}
        starts["2:4N"] = (finetune(fnet, mask_n, x, y, seed=0, epochs=15), mask_n)
    jobs = [(key, a, s) for key in starts for a in acts + ((None,) if control else ()) for s in seeds]
    bar = None
    if not quiet:
        from tqdm import tqdm
        bar = tqdm(total=len(jobs), desc="A-DBB fine-tuning", leave=False)
    out = {key: {"no_finetune": _accuracies(quantize(start, x, labels=y), xt, yt, acts, block, layers, k_order),
                 "finetune": {}, "runs": {}} for key, (start, _) in starts.items()}
    recipe = {"epochs": epochs, "lr": lr, "distill": distill, "rank_noise": rank_noise, **recipe}
    ordered = {}
    for key, a, s in jobs:
        start, m = starts[key]
        teacher = fnet
        if reorder == "search" and a is not None:
            if a not in ordered:
                perms = adbb_channel_order(fnet, a, block=block, layers=layers, k_order=k_order)
                ordered[a] = permute_channels(fnet, perms)
            start = teacher = ordered[a]
        run = finetune_run(start, a, seed=s, block=block, mask=m, teacher=teacher, layers=layers, k_order=k_order,
                           **recipe)
        out[key]["runs"].setdefault("dense" if a is None else a, []).append(run)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    for row in out.values():
        row["finetune"] = {a: spread(runs)["mean"] for a, runs in row["runs"].items() if a != "dense"}
    out.update(recipe, block=block, seeds=list(seeds), reorder=reorder, k_order=k_order, images=len(yt),
               layers=list(layers) if layers is not None else [l.name for l in fnet.weighted],
               seconds=time.perf_counter() - t0)
    return out


def rtl_check(act_keep: int = 1, images: int = 10, *, sim: str = "verilator", seed: int = 0,
              k_order: str = ADBB_K_ORDER, rank_noise: float = RANK_NOISE, reorder: str = REORDER) -> dict:
    """The 2:4 network fine-tuned with A-DBB ``act_keep`` (as in :func:`adbb_study`) on the first ``images`` test
    images through the RTL of the 4×4 2:4 × A-DBB ``act_keep``:4 engine (``gemm_4x4_2of4_act1of4`` for 1;
    :func:`sim.network.rtl.run_rtl`, every layer checked against the A-DBB int8 golden inside the simulation),
    the host laying every layer out in ``k_order`` (the 2:4 mask along K in it too, :func:`nm_k_mask`), the
    channels in the study's order ``reorder`` (``"balance"`` or ``"none"``).
    Returns ``{"top", "k_order", "reorder", "images", "bit_exact", "rtl_accuracy", "golden_accuracy", "cycles"}``."""
    import dataclasses

    from sim.network.rtl import gemm_config, run_rtl

    act_keep, _ = _check(act_keep, BLOCK)
    checks.check_int("images", images, 1, 450)
    reorder = checks.check_choice("reorder", reorder, ("none", "balance"))
    fnet = load(SHIPPED["digits-float"])
    if reorder == "balance":
        fnet = permute_channels(fnet, balanced_channel_order(fnet))
    x, y = digits("train")
    xt, yt = digits("test")
    mask = {k: nm_k_mask(w, k_order=k_order) for k, w in fnet.weights().items()}
    start = finetune(fnet, mask, x, y, seed=seed, epochs=15)
    _, qnet = adbb_finetune(start, act_keep, mask=mask, teacher=fnet, seed=seed, k_order=k_order,
                            rank_noise=rank_noise)
    # the activation-sparse PEs have no pipeline (docs/gemm-actsparse.md); the base preset's is 4
    cfg = dataclasses.replace(gemm_config(qnet, k_order=k_order), act_keep=act_keep, act_mode="adbb", pe_pipeline=0,
                              name=None)
    r = run_rtl(qnet, xt[:images], sim=sim, seed=seed, config=cfg, k_order=k_order)
    golden = adbb_predict(qnet, xt[:images], act_keep, k_order=k_order)
    return {"top": r.top, "k_order": k_order, "reorder": reorder, "images": images,
            "bit_exact": bool(r.bit_exact and np.array_equal(r.predictions, golden)),
            "rtl_accuracy": float(np.mean(r.predictions == yt[:images])),
            "golden_accuracy": float(np.mean(golden == yt[:images])), "cycles": r.cycles["total"]}


def _cell(runs):
    r = spread(runs)
    return f"{100 * r['mean']:.2f} ({100 * r['min']:.2f}-{100 * r['max']:.2f})"


def study_table(study: dict) -> list:
    """Lines of the table of :func:`adbb_study` (accuracy in %, without A-DBB fine-tuning / with it: the mean over
    the seeds and their min-max; ``FT dense`` with ``control``: the same fine-tuning without A-DBB)."""
    keys = [k for k in STARTS if k in study]
    acts = [k for k in study[keys[0]]["no_finetune"] if k != "dense"]
    control = "dense" in study[keys[0]]["runs"]
    head = ["weights", "dense acts"] + (["FT dense"] if control else [])
    head += [f"A-DBB {a}:{study['block']} (no FT / A-DBB FT)" for a in acts]
    lines = [" | ".join(head)]
    for key, label in (("int8", "int8 (shipped)"), ("2:4", "2:4 + masked FT"), ("2:4N", "2:4 along N + masked FT")):
        if key not in study:
            continue
        row = study[key]
        cells = [label, f"{100 * row['no_finetune']['dense']:.2f}"]
        cells += [_cell(row["runs"]["dense"])] if control else []
        cells += [f"{100 * row['no_finetune'][a]:.2f} / {_cell(row['runs'][a])}" for a in acts]
        lines.append(" | ".join(cells))
    return lines


def _ints(text, name):
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{name} = {text!r} is not a comma-separated list of integers: allowed e.g. 0,1,2") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.network.actsparse", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"A-DBB fine-tuning epochs (default {EPOCHS})")
    parser.add_argument("--lr", type=float, default=LR, help=f"its learning rate (default {LR})")
    parser.add_argument("--distill", type=float, default=DISTILL,
                        help=f"share of the dense teacher's softmax in the target, 0 = off (default {DISTILL})")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                        help=f"comma-separated fine-tuning seeds, all reported (default {','.join(map(str, SEEDS))})")
    parser.add_argument("--act-keeps", default=",".join(map(str, ACT_KEEPS)),
                        help=f"comma-separated act_keep values (default {','.join(map(str, ACT_KEEPS))})")
    parser.add_argument("--straight-through", action="store_true",
                        help="the gradient also reaches the activations A-DBB drops (straight-through estimator)")
    parser.add_argument("--rank-noise", type=float, default=RANK_NOISE, help="training only: A-DBB ranks "
                        f"magnitudes times exp(noise * N(0, 1)) (a regularizer; default {RANK_NOISE}; 0: off)")
    parser.add_argument("--adbb-calibration", action="store_true",
                        help="calibrate the requantization shifts with the A-DBB GEMM in the loop")
    parser.add_argument("--weights", default=",".join(WEIGHTS),
                        help=f"comma-separated starts to study, of {','.join(STARTS)} (default {','.join(WEIGHTS)})")
    parser.add_argument("--reorder", nargs="?", const="search", default=REORDER,
                        help=f"the channel order fine-tuned from, of {','.join(REORDERS)} (default {REORDER}: "
                        "balanced_channel_order mixes dense and sparse channels in every block; 'none': the shipped "
                        "order; 'search' (alone: --reorder) lowers A-DBB's training loss, adbb_channel_order, "
                        "with --weights int8 only)")
    parser.add_argument("--control", action="store_true",
                        help="also fine-tune without A-DBB (same recipe and seeds): what fine-tuning alone does")
    parser.add_argument("--layers", help="comma-separated weighted layers A-DBB prunes (default all)")
    parser.add_argument("--k-order", default=ADBB_K_ORDER, help=f"K order of the im2col rows A-DBB cuts blocks "
                        f"from, of {','.join(K_ORDERS)} (default {ADBB_K_ORDER}; ijc: the channels of one tap)")
    parser.add_argument("--rtl", type=int, metavar="N", help="instead: the fine-tuned 2:4 × A-DBB 1:4 network on N "
                        "test images through the gemm_4x4_2of4_act1of4 engine's RTL (Verilator)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.rtl is not None:
        try:
            result = rtl_check(1, args.rtl, seed=_ints(args.seeds, "seeds")[0], k_order=args.k_order,
                               rank_noise=args.rank_noise, reorder=args.reorder)
        except (TypeError, ValueError) as exc:
            parser.exit(2, f"{parser.prog}: error: {exc}\n")
        print(json.dumps(result, indent=2))
        return 0 if result["bit_exact"] else 1
    try:
        study = adbb_study(act_keeps=_ints(args.act_keeps, "act-keeps"), epochs=args.epochs, lr=args.lr,
                           distill=args.distill, seeds=_ints(args.seeds, "seeds"), control=args.control,
                           weights=args.weights.split(","), reorder=args.reorder, k_order=args.k_order,
                           straight_through=args.straight_through, adbb_calibration=args.adbb_calibration,
                           rank_noise=args.rank_noise,
                           layers=args.layers.split(",") if args.layers else None, quiet=args.json)
    except (TypeError, ValueError) as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if args.json:
        print(json.dumps(study, indent=2))
    else:
        print("\n".join(study_table(study)))
        print(f"({study['images']} test images, int8 golden, A-DBB on {', '.join(study['layers'])}; A-DBB "
              f"fine-tuning {study['epochs']} epochs, lr {study['lr']}, distill {study['distill']}"
              f"{', straight-through' if study.get('straight_through') else ''}"
              f"{', A-DBB calibration' if study.get('adbb_calibration') else ''}"
              f", rank noise {study['rank_noise']}"
              f", channel order {study['reorder']}, K order {study['k_order']}, mean (min-max) "
              f"over seeds {','.join(map(str, study['seeds']))}; {study['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
