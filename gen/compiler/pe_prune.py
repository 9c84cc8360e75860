"""PE-wise structured pruning at the GEMM engine's tile granularity, and ternary weights whose threshold adapts to
the pruning (issue 14, seed 001; docs/seeds.md, docs/compiler.md).

**Tiles.** The weight-stationary GEMM engine (docs/gemm.md) consumes W ``[K × N]`` (the im2col matrix of a layer,
:func:`gen.compiler.prune.as_matrix`) in tiles of ``k = rows·block`` rows by ``cols`` columns: K-tile ``kk`` holds
rows ``kk·k …``, N-tile ``nn`` columns ``nn·cols …`` (the last of each may be ragged). :func:`pe_prune` removes
whole *units* — one K-tile by a group of ``group`` PE columns (``group`` divides ``cols``; ``group = cols``, the
default, is a whole tile) — smallest L2 norm first: ``round(ratio · units)`` of them. A tile whose every unit is
removed is all zero, and the host compiles it away (:func:`sim.gemm.driver.plan_pruned`): the engine never sees it.

**Ternary weights.** :func:`ternarize_pruned` maps the kept weights to ``{−1, 0, +1}`` times one scale per layer
(``granularity="tensor"``, the default: the scale folds into the layer's one requantization shift, so the engine
runs the integers ``{−1, 0, +1}`` with ``weight_bits = 2``) or per output channel. The threshold adapts to the
pruning: it is computed from the *kept* weights only (``w != 0`` — a pruned weight is exactly 0, a kept float one
almost surely not), so pruning a share of the layer does not lower it the way the plain TWN rule
(:func:`gen.compiler.quantize.ternarize`, ``0.7 · mean|w|`` over all weights, zeros included) would:

- ``rule="twn"``: ``Δ = threshold · mean|w|`` over the kept weights (TWN's rule, Li & Liu 2016, on the support);
- ``rule="optimal"``: the ``Δ`` that minimizes ``‖w − α·t‖²`` over the kept weights (the exact TWN objective:
  keep the ``n`` largest ``|w|`` with ``n`` maximizing ``(Σ top-n |w|)² / n``; ``threshold`` is then unused).

The scale ``α`` is the mean ``|w|`` of the weights that survive (L2-optimal for that support). Weights at or below
``Δ`` become 0 inside kept tiles too (they cost nothing but stay stored: the engine holds every position of a kept
tile). :func:`ternary_projection` is the same map as a straight-through projection for quantization-aware
fine-tuning (:func:`gen.network.train.finetune` ``project=``).

**Compression** (:func:`compression`): float32 weights against what the engine needs: ``weight_bits`` (2) per
position of every kept tile (zeros inside a kept tile included) plus a one-bit tile map per pruned layer (which
tiles are sent; a layer with no tile pruned needs none).
"""

import numpy as np

from hw import checks
from hw.formats.conv import gemm_matrix

__all__ = ["RULES", "GRANULARITIES", "tile_shape", "tile_grid", "unit_norms", "pe_prune", "tile_map", "skip_jobs",
           "skip_perf", "ternarize_pruned", "ternary_projection", "compression"]

RULES = ("twn", "optimal")
GRANULARITIES = ("tensor", "channel")


def tile_shape(*, rows: int = 4, block: int = 4, cols: int = 4, group: int | None = None) -> tuple[int, int, int]:
    """``(tile_k, tile_n, group)`` of an engine with ``rows × cols`` PEs and N:M ``block``: ``tile_k = rows·block``,
    ``tile_n = cols``; ``group`` (default ``cols``) PE columns per pruned unit, a divisor of ``cols``."""
    rows = checks.check_int("PE pruning rows", rows, 1, 128)
    block = checks.check_int("PE pruning block", block, 1, 16)
    cols = checks.check_int("PE pruning cols", cols, 1, 128)
    group = cols if group is None else checks.check_int("PE pruning group", group, 1, cols)
    if cols % group:
        checks.fail("PE pruning group", group, f"does not divide cols = {cols}",
                    f"a divisor of {cols}: {', '.join(str(d) for d in range(1, cols + 1) if cols % d == 0)}")
    return rows * block, cols, group


def tile_grid(k_total: int, n_total: int, tile_k: int, tile_n: int) -> tuple[int, int]:
    """``(kt, nt)``: K-tiles and N-tiles of a ``k_total × n_total`` matrix (ceil-divided, as the engine tiles)."""
    return -(-k_total // tile_k), -(-n_total // tile_n)


def _blocks(m, tile_k, tile_n, reduce):
    """``reduce`` over each ``tile_k × tile_n`` block of ``m`` (zero-padded): an ``(kt, nt)`` array."""
    kt, nt = tile_grid(*m.shape, tile_k, tile_n)
    padded = np.zeros((kt * tile_k, nt * tile_n), m.dtype)
    padded[:m.shape[0], :m.shape[1]] = m
    return reduce(padded.reshape(kt, tile_k, nt, tile_n), axis=(1, 3))


def unit_norms(m, tile_k: int, tile_n: int) -> np.ndarray:
    """L2 norm of every ``tile_k × tile_n`` unit of a ``K × N`` matrix: ``(kt, nt)`` float64."""
    return np.sqrt(_blocks(np.asarray(m, np.float64) ** 2, tile_k, tile_n, np.sum))


def _check_ratio(ratio):
    ratio = checks.check_float("PE pruning ratio", ratio, allowed="0 <= ratio < 1")
    if not 0 <= ratio < 1:
        checks.fail("PE pruning ratio", ratio, "is out of range", "0 <= ratio < 1 (1 would remove every tile)")
    return ratio


def pe_prune(w, ratio: float, rows: int = 4, block: int = 4, cols: int = 4, group: int | None = None):
    """Remove ``round(ratio · units)`` units (one K-tile × ``group`` PE columns) of a layer, smallest L2 first.

    Parameters
    ----------
    w : array, conv ``[O, I, kh, kw]`` or linear ``[out, in]``, float or int, no NaN/Inf
    ratio : float, ``0 <= ratio < 1``
        Share of the layer's units removed (ties by position, K-tile-major).
    rows, block, cols : int
        The engine's PE rows, N:M block and PE columns: a tile is ``rows·block × cols`` of the ``K × N`` matrix.
    group : int, optional
        PE columns per unit, a divisor of ``cols`` (default ``cols``: whole tiles).

    Returns
    -------
    mask : bool array of ``w``'s shape (True = kept)
    report : dict
        ``method = "pe"``, the settings, ``units``, ``units_removed``, ``tiles``, ``tiles_removed`` (tiles whose
        every unit is removed: compiled away) and ``sparsity``.
    """
    w = np.asarray(w)
    if w.dtype.kind not in "fiu":
        raise ValueError(f"weights must be numeric, not {w.dtype}")
    if w.dtype.kind == "f":
        checks.check_float_array("w", w)         # NaN has no magnitude to rank
    ratio = _check_ratio(ratio)
    tile_k, tile_n, group = tile_shape(rows=rows, block=block, cols=cols, group=group)
    if w.ndim not in (2, 4):
        raise ValueError(f"weights must be conv [O, I, kh, kw] or linear [out, in], not an array of shape {w.shape}")
    # the K × N matrix in the im2col K order (gen.compiler.prune.as_matrix, which imports this module)
    m = (gemm_matrix(w) if w.ndim == 4 else w.T).astype(np.float64)
    norms = unit_norms(m, tile_k, group)
    n_remove = int(round(ratio * norms.size))
    keep = np.ones(norms.size, bool)
    keep[np.argsort(norms, axis=None, kind="stable")[:n_remove]] = False
    keep = keep.reshape(norms.shape)
    keep_m = np.repeat(np.repeat(keep, tile_k, 0), group, 1)[:m.shape[0], :m.shape[1]]
    mask = keep_m.T.reshape(w.shape)
    tiles = tile_map(keep_m, tile_k, tile_n)
    return mask, {"method": "pe", "ratio": ratio, "rows": rows, "block": block, "cols": cols, "group": group,
                  "units": int(norms.size), "units_removed": n_remove, "tiles": int(tiles.size),
                  "tiles_removed": int((~tiles).sum()), "sparsity": float(1 - mask.mean()) if mask.size else 0.0}


def tile_map(m, tile_k: int, tile_n: int) -> np.ndarray:
    """``(kt, nt)`` bool: which ``tile_k × tile_n`` tiles of the ``K × N`` matrix ``m`` hold a non-zero (the tiles the
    host sends)."""
    return _blocks(np.asarray(m) != 0, tile_k, tile_n, np.any)


def skip_jobs(W, m: int, *, k: int, cols: int, max_m: int) -> list[tuple[slice, np.ndarray, np.ndarray]]:
    """The jobs that compute ``A[m × K] · W`` on a weight-stationary engine (tiles ``k × cols``, at most ``max_m``
    rows a job) without W's all-zero tiles: ``[(rows of A, K indices, N indices), ...]`` in the order sent.

    The N-tiles are grouped by the set of K-tiles that hold a non-zero (:func:`tile_map`); each group with a
    non-empty set is one job per ``max_m`` chunk of rows, over those K-tiles' rows (in order, so only the last
    K-tile can be ragged, as the engine requires) and the group's columns (likewise). An N-tile with no K-tile left
    is in no job: its outputs are ``post(0) = 0``."""
    W = checks.check_int_array("W", W, ndim=2)
    m = checks.check_int("M", m, 1)
    k, cols, max_m = (checks.check_int(n, v, 1) for n, v in (("k", k), ("cols", cols), ("max_m", max_m)))
    K, N = W.shape
    live = tile_map(W, k, cols)
    groups = {}
    for nn in range(live.shape[1]):
        kept = tuple(int(kk) for kk in np.flatnonzero(live[:, nn]))
        if kept:
            groups.setdefault(kept, []).append(nn)
    jobs = []
    for kept, nts in groups.items():
        ks = np.concatenate([np.arange(kk * k, min((kk + 1) * k, K)) for kk in kept])
        cs = np.concatenate([np.arange(nn * cols, min((nn + 1) * cols, N)) for nn in nts])
        jobs += [(slice(r, min(r + max_m, m)), ks, cs) for r in range(0, m, max_m)]
    return jobs


def skip_perf(cfg, m: int, W) -> dict:
    """Cycle-model figures (:func:`gen.gemm.perf.predict`, ideal host) of ``A[m × K] · W`` on the weight-stationary
    engine ``cfg`` with W's all-zero tiles compiled away (:func:`skip_jobs`) against the same layer sent whole (its
    rows in ``max_m`` chunks): ``{"config", "m", "k", "n", "tiles", "tiles_kept", "jobs" (M, K, N of each job
    sent), "cycles", "dense_cycles", "cycles_saved"}`` (``cycles = 0`` when every tile is zero).

    ``ValueError``/``TypeError`` (one line): an OS or activation-sparse ``cfg``, W not a 2-D integer matrix in the
    ``weight_bits`` range or violating keep:block, K or N beyond ``max_k``/``max_n``, ``m`` < 1."""
    from gen.compiler.nm import check_nm          # here: gen.compiler.nm imports gen.compiler.prune, which imports us
    from gen.gemm import perf
    from gen.gemm.config import check_job, check_config

    check_config(cfg)
    if cfg.dataflow != "ws" or cfg.act_keep:
        raise ValueError(f"config {cfg.top}: dataflow = {cfg.dataflow!r}, act_keep = {cfg.act_keep}: allowed "
                         "dataflow 'ws' without activation sparsity (tiles of rows·block × cols are skipped)")
    m = checks.check_int("M", m, 1)
    W = checks.check_int_array("W", W, ndim=2)
    check_job(cfg, np.zeros((1, W.shape[0]), np.int64), W)
    if cfg.keep < cfg.block:
        check_nm("W", W, keep=cfg.keep, block=cfg.block, matrix=True)
    jobs = skip_jobs(W, m, k=cfg.k, cols=cfg.cols, max_m=cfg.max_m)
    shapes = [(rs.stop - rs.start, len(ks), len(cs)) for rs, ks, cs in jobs]
    dense = [(min(cfg.max_m, m - r), W.shape[0], W.shape[1]) for r in range(0, m, cfg.max_m)]
    live = tile_map(W, cfg.k, cfg.cols)
    cycles = perf.predict(cfg, shapes).cycles if shapes else 0
    dense_cycles = perf.predict(cfg, dense).cycles
    return {"config": cfg.top, "m": m, "k": int(W.shape[0]), "n": int(W.shape[1]), "tiles": int(live.size),
            "tiles_kept": int(live.sum()), "jobs": shapes, "cycles": cycles, "dense_cycles": dense_cycles,
            "cycles_saved": dense_cycles / cycles if cycles else float("inf")}


def _threshold(a, rule, threshold):
    """The ternary threshold Δ of the kept magnitudes ``a`` (1-D, all > 0)."""
    if not a.size:
        return np.inf
    if rule == "twn":
        return threshold * a.mean()
    s = np.sort(a)[::-1]
    n = int(np.argmax(np.cumsum(s) ** 2 / np.arange(1, s.size + 1)))
    # keep exactly the n + 1 largest: Δ between the kept and the first dropped magnitude
    return (s[n] + s[n + 1]) / 2 if n + 1 < s.size else 0.0


def ternarize_pruned(w, *, rule: str = "twn", threshold: float = 0.7, granularity: str = "tensor"):
    """Ternary ``q ∈ {−1, 0, +1}`` and scale (module docstring) with the threshold from the kept (non-zero) weights.

    Returns
    -------
    q : int8 array of ``w``'s shape; zeros of ``w`` stay zero
    scale : float64 array ``(O,)`` (``granularity="tensor"``: one value repeated; 1.0 where nothing survives)
    """
    w = checks.check_float_array("w", w)
    rule = checks.check_choice("ternary rule", rule, RULES)
    threshold = checks.check_float("ternary threshold", threshold, 0.0, allowed="a finite number >= 0")
    granularity = checks.check_choice("ternary granularity", granularity, GRANULARITIES)
    if w.ndim < 1:
        raise ValueError("weights must have an output-channel axis")
    flat = np.abs(w).reshape(w.shape[0], -1)
    groups = [flat] if granularity == "tensor" else [flat[o:o + 1] for o in range(w.shape[0])]
    keep, scale = np.zeros(flat.shape, bool), np.ones(w.shape[0])
    for i, g in enumerate(groups):
        delta = _threshold(g[g > 0], rule, threshold)
        sel = g > delta
        rows = slice(None) if granularity == "tensor" else slice(i, i + 1)
        keep[rows] = sel
        if sel.any():
            scale[rows] = g[sel].mean()
    return (np.sign(w) * keep.reshape(w.shape)).astype(np.int8), scale


def ternary_projection(*, rule: str = "twn", threshold: float = 0.7, granularity: str = "tensor"):
    """``project(w) -> q · scale`` (float) of :func:`ternarize_pruned`, for ``finetune(..., project=...)``: the
    forward pass sees the ternary weights, the straight-through update goes to the float ones, and pruned (zero)
    weights project to zero, so the mask is kept."""
    checks.check_choice("ternary rule", rule, RULES)
    checks.check_float("ternary threshold", threshold, 0.0, allowed="a finite number >= 0")
    checks.check_choice("ternary granularity", granularity, GRANULARITIES)

    def project(w):
        q, scale = ternarize_pruned(w, rule=rule, threshold=threshold, granularity=granularity)
        return q * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    return project


def compression(matrices, *, tile_k: int, tile_n: int, weight_bits: int = 2, float_bits: int = 32) -> dict:
    """Compression of float weights by PE-wise pruning + ``weight_bits``-bit weights, counting what the engine
    needs: ``weight_bits`` per position of every tile that holds a non-zero (:func:`tile_map`; ragged edge tiles
    count their real positions) plus one bit per tile of every layer with a tile removed (the tile map).

    ``matrices``: the layers' integer ``K × N`` matrices. Returns ``{"float_bits", "weight_bits", "index_bits",
    "compression", "quantization_only", "tiles", "tiles_kept", "weights", "weights_stored"}``:
    ``quantization_only = float_bits / weight_bits`` (nothing pruned, no map)."""
    tile_k = checks.check_int("tile_k", tile_k, 1)
    tile_n = checks.check_int("tile_n", tile_n, 1)
    weight_bits = checks.check_int("weight_bits", weight_bits, 1, 32)
    float_bits = checks.check_int("float_bits", float_bits, 1, 64)
    mats = [checks.check_int_array(f"matrices[{i}]", m, ndim=2) for i, m in enumerate(matrices)]
    if not mats:
        checks.fail("matrices", [], "is empty", "at least one K × N matrix")
    weights = stored = index = tiles = kept = 0
    for m in mats:
        live = tile_map(m, tile_k, tile_n)
        sizes = _blocks(np.ones(m.shape, np.int64), tile_k, tile_n, np.sum)
        weights += m.size
        stored += int(sizes[live].sum())
        tiles += live.size
        kept += int(live.sum())
        index += live.size if not live.all() else 0
    bits = stored * weight_bits + index
    return {"float_bits": weights * float_bits, "weight_bits": stored * weight_bits, "index_bits": index,
            "compression": weights * float_bits / bits if bits else float("inf"),
            "quantization_only": float_bits / weight_bits, "tiles": tiles, "tiles_kept": kept, "weights": weights,
            "weights_stored": stored}
