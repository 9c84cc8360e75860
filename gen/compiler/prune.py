"""Pruning of float weights: each method returns ``(mask, report)`` with ``mask`` a bool array of the weight's shape.

Weights are conv ``[O, I, kh, kw]`` (OIHW) or linear ``[out, in]``. The *reduction dimension* of output ``o`` is
its flattened filter in im2col order ``(i, kh, kw)`` — the order of the rows of the ``K × N`` matrix a crossbar or
the GEMM engine holds (:func:`as_matrix`). Every report is a plain dict with ``method``, the settings and the
achieved ``sparsity`` (fraction of zeros in the mask).
"""

import numpy as np

from hw import checks
from hw.formats.conv import gemm_matrix
from gen.compiler.pe_prune import pe_prune

__all__ = ["as_matrix", "from_matrix", "magnitude", "nm", "pattern", "ou_structured", "sense", "PRUNERS",
           "parse_prune", "prune"]


def _weights(w):
    w = np.asarray(w)
    if w.ndim not in (2, 4):
        raise ValueError(f"weights must be conv [O, I, kh, kw] or linear [out, in], not an array of shape {w.shape}")
    if w.dtype.kind not in "fiu":
        raise ValueError(f"weights must be numeric, not {w.dtype}")
    if w.dtype.kind == "f":
        checks.check_float_array("w", w)         # NaN has no magnitude to rank
    return w


def as_matrix(w) -> np.ndarray:
    """The ``K × N`` matrix of a conv (OIHW) or linear ([out, in]) weight (or mask): ``K = I·kh·kw`` im2col rows,
    ``N = O``."""
    w = np.asarray(w)
    if w.ndim not in (2, 4):
        raise ValueError(f"weights must be conv [O, I, kh, kw] or linear [out, in], not an array of shape {w.shape}")
    return gemm_matrix(w) if w.ndim == 4 else w.T     # the conv lowering's K order (hw/formats/conv.py)


def from_matrix(m, shape) -> np.ndarray:
    """Inverse of :func:`as_matrix`: a ``K × N`` matrix back to the weight shape."""
    return np.asarray(m).T.reshape(shape)


def _report(method, mask, **settings):
    return {"method": method, **settings, "sparsity": float(1 - mask.mean()) if mask.size else 0.0}


def _check_ratio(name, ratio):
    return checks.check_float(name, ratio, 0, 1, allowed="0 … 1")


def magnitude(w, ratio: float):
    """Unstructured magnitude pruning: zero the ``round(ratio · size)`` smallest ``|w|`` of the layer (exactly that
    many; among equal magnitudes at the threshold the choice is deterministic but unspecified)."""
    w = _weights(w)
    ratio = _check_ratio("ratio", ratio)
    n_prune = int(round(ratio * w.size))
    mask = np.ones(w.size, dtype=bool)
    if 0 < n_prune < w.size:
        mask[np.argpartition(np.abs(w), n_prune - 1, axis=None)[:n_prune]] = False
    elif n_prune:
        mask[:] = False
    mask = mask.reshape(w.shape)
    return mask, _report("magnitude", mask, ratio=ratio)


def nm(w, keep: int, block: int):
    """N:M pruning along the reduction dimension: of every ``block`` consecutive im2col rows of an output, keep the
    ``keep`` largest ``|w|`` (ties by position). A partial last block (K not a multiple of ``block``) keeps at
    most ``keep`` too; :func:`gen.compiler.nm.pack_nm` pads it with zero rows."""
    w = _weights(w)
    block = checks.check_int("N:M block", block, 1)
    keep = checks.check_int("N:M keep", keep, 1, block, allowed=f"1 … {block} (block)")
    m = np.abs(as_matrix(w)).astype(np.float64)
    k_total, n_total = m.shape
    pad = -k_total % block
    blocks = np.concatenate([m, np.full((pad, n_total), -1.0)]).reshape(-1, block, n_total)
    # rank within each block, largest first; padded rows (-1) always rank last
    rank = np.argsort(np.argsort(-blocks, axis=1, kind="stable"), axis=1, kind="stable")
    keep_m = (rank < keep).reshape(-1, n_total)[:k_total]
    mask = from_matrix(keep_m, w.shape)
    return mask, _report("nm", mask, keep=keep, block=block)


def _codes_to_patterns(codes, size):
    return ((codes[:, None] >> np.arange(size)) & 1).astype(bool)


def pattern(w, k: int = 4, n_patterns: int = 8, connectivity: float = 0.0, group: int = 1):
    """Pattern pruning of ``kh × kw`` (normally 3×3) kernels.

    The library is the ``n_patterns`` most frequent top-``k`` shapes of the layer's kernels (ties between shapes:
    lower shape code first; shape code bit ``j`` = kernel position ``j`` in row-major order; equal magnitudes inside
    a kernel are split deterministically but unspecified). Every kernel is projected onto the
    library pattern that keeps the most of its ``|w|`` (ties: the more frequent pattern). Connectivity pruning then
    removes the ``round(connectivity · O·I)`` whole kernels of smallest remaining L2 norm (``ValueError`` when that
    is every kernel of the layer).

    ``group > 1`` shares patterns: the kernels of ``group`` consecutive outputs on one input channel are one *unit*
    (a 3×3 kernel of summed ``|w|``) that takes one pattern, and connectivity removes ``round(connectivity · units)``
    whole units; so the outputs of a group have the same zero rows and a crossbar column group holding them (OUs
    ``group`` outputs wide) stores no zero row. ``group = 1`` is the per-kernel pruning above.

    Report: ``patterns`` (the library as kh×kw 0/1 lists), ``pattern_counts`` (kernels per pattern, after
    connectivity pruning), ``kernels_removed``, ``group``, ``sparsity``.
    """
    w = _weights(w)
    if w.ndim != 4:
        raise ValueError(f"pattern pruning needs conv weights [O, I, kh, kw], not shape {w.shape}")
    size = w.shape[2] * w.shape[3]
    if size > 16:
        raise ValueError(f"pattern pruning supports kernels of at most 16 positions, not {w.shape[2]}×{w.shape[3]}")
    k = checks.check_int("pattern k", k, 1, size, allowed=f"1 … {size} (kernel positions)")
    n_patterns = checks.check_int("pattern P", n_patterns, 1)
    connectivity = _check_ratio("connectivity", connectivity)
    group = checks.check_int("pattern group", group, 1, 4096)
    n_out, n_in = w.shape[:2]
    kernels = np.abs(w.reshape(n_out, n_in, size)).astype(np.float64)
    owner = np.arange(n_out) // group                                   # the output group of every output
    n_groups = -(-n_out // group)
    mag, energy = np.zeros((n_groups, n_in, size)), np.zeros((n_groups, n_in, size))
    np.add.at(mag, owner, kernels)                                      # group = 1: the kernels themselves
    np.add.at(energy, owner, kernels ** 2)
    mag, energy = mag.reshape(-1, size), energy.reshape(-1, size)
    top = np.argpartition(-mag, k - 1, axis=1)[:, :k] if k < size else np.tile(np.arange(size), (len(mag), 1))
    codes = np.bitwise_or.reduce(np.left_shift(1, top), axis=1) if mag.size else np.zeros(0, dtype=np.int64)
    uniq, counts = np.unique(codes, return_counts=True)
    chosen = uniq[np.lexsort((uniq, -counts))][:n_patterns]          # most frequent, then lower code
    library = _codes_to_patterns(chosen, size)                          # (P, size)
    best = np.argmax(mag @ library.T.astype(np.float64), axis=1) if len(chosen) else np.zeros(0, dtype=int)
    umask = library[best] if len(chosen) else np.zeros_like(mag, dtype=bool)
    n_remove = int(round(connectivity * umask.shape[0]))
    if n_remove and n_remove == umask.shape[0]:
        # a layer with no kernel left computes nothing: a target no fine-tuning can recover, not a sparser layer
        what = "kernels" if group == 1 else f"units of {group} kernels"
        checks.fail("connectivity", connectivity, f"removes all {n_remove} {what} of a {n_out}×{n_in} layer",
                    f"a ratio that keeps at least one kernel (< {1 - 0.5 / n_remove:.4g})")
    if n_remove:
        norms = np.sqrt((energy * umask).sum(axis=1))
        umask[np.argsort(norms, kind="stable")[:n_remove]] = False
    kmask = umask.reshape(n_groups, n_in, size)[owner]                  # (O, I, size)
    alive = kmask.any(axis=2).ravel()
    best_kernel = best.reshape(n_groups, n_in)[owner].ravel() if len(chosen) else np.zeros(0, dtype=int)
    mask = kmask.reshape(w.shape)
    return mask, _report("pattern", mask, k=k, P=n_patterns, connectivity=connectivity, group=group,
                         patterns=[p.reshape(w.shape[2], w.shape[3]).astype(int).tolist() for p in library],
                         pattern_counts=np.bincount(best_kernel[alive], minlength=len(chosen)).tolist(),
                         kernels_removed=int((~alive).sum()))


def ou_structured(w, ratio: float, ou_rows: int = 9, outputs_per_group: int = 1):
    """OU-granular structured pruning: remove whole OU row groups — ``ou_rows`` consecutive im2col rows × a group of
    ``outputs_per_group`` consecutive outputs (the outputs that share an OU column group) — smallest L2 norm first,
    until at least ``ratio`` of the weights are removed. A mapping whose column groups hold those outputs then
    drops the whole OU."""
    w = _weights(w)
    ratio = _check_ratio("ratio", ratio)
    ou_rows = checks.check_int("OU pruning ou_rows", ou_rows, 1)
    outputs_per_group = checks.check_int("OU pruning outputs_per_group", outputs_per_group, 1)
    m = as_matrix(w).astype(np.float64)
    k_total, n_total = m.shape
    rb, cb = -(-k_total // ou_rows), -(-n_total // outputs_per_group)
    padded = np.zeros((rb * ou_rows, cb * outputs_per_group))
    padded[:k_total, :n_total] = m ** 2
    norms = padded.reshape(rb, ou_rows, cb, outputs_per_group).sum(axis=(1, 3)).ravel()
    sizes = np.zeros_like(padded)
    sizes[:k_total, :n_total] = 1
    block_sizes = sizes.reshape(rb, ou_rows, cb, outputs_per_group).sum(axis=(1, 3)).ravel()
    order = np.argsort(norms, kind="stable")
    removed = np.cumsum(block_sizes[order])
    n_blocks = int(np.searchsorted(removed, ratio * m.size - 1e-9)) + 1 if ratio > 0 and m.size else 0
    keep_blocks = np.ones(rb * cb, dtype=bool)
    keep_blocks[order[:n_blocks]] = False
    keep_m = np.repeat(np.repeat(keep_blocks.reshape(rb, cb), ou_rows, 0), outputs_per_group, 1)[:k_total, :n_total]
    mask = from_matrix(keep_m, w.shape)
    return mask, _report("ou", mask, ratio=ratio, ou_rows=ou_rows, outputs_per_group=outputs_per_group,
                         blocks_removed=n_blocks, blocks=rb * cb)


def sense(w):
    """Sense-style fixed 1/2 kernel sparsity: every output's filter keeps exactly ``ceil(K / 2)`` of its ``K``
    weights (largest ``|w|``; ties by position), so every PE column sees the same non-zero count."""
    w = _weights(w)
    m = np.abs(as_matrix(w)).astype(np.float64)
    k_total = m.shape[0]
    rank = np.argsort(np.argsort(-m, axis=0, kind="stable"), axis=0, kind="stable")
    mask = from_matrix(rank < -(-k_total // 2), w.shape)
    return mask, _report("sense", mask, kept_per_output=-(-k_total // 2))


PRUNERS = {"none": None, "magnitude": magnitude, "nm": nm, "pattern": pattern, "ou": ou_structured, "sense": sense,
           "pe": pe_prune, "ratios": None}
# ratios: per-layer ratios (gen.compiler.autoprune's search result), resolved per layer by the network's mapper
_PARAMS = {"ratios": {}, "magnitude": {"ratio": float}, "nm": {"keep": int, "block": int},
           "pe": {"ratio": float, "rows": int, "block": int, "cols": int, "group": int},
           "pattern": {"k": int, "P": int, "connectivity": float, "group": int},
           "ou": {"ratio": float, "ou_rows": int, "outputs_per_group": int}, "sense": {}, "none": {}}


def parse_prune(spec: str) -> tuple[str, dict]:
    """``"pattern:k=4,P=8"`` → ``("pattern", {"k": 4, "P": 8})``. Also ``magnitude:ratio=0.5`` (or
    ``magnitude:0.5``), ``nm:2:4``/``nm:keep=2,block=4``, ``ou:ratio=0.5``,
    ``pe:ratio=0.5[,rows=4,block=4,cols=4,group=4]`` (GEMM-engine tiles, :mod:`gen.compiler.pe_prune`), ``sense``,
    ``none``, and per-layer ratios ``ratios:FILE.json`` / ``ratios:conv1=0.1,conv2=0.6`` → ``("ratios", {"spec": …})``
    (resolved per layer by :func:`gen.compiler.autoprune.load_ratios`; :func:`prune` of one layer does not take
    them)."""
    checks.check_str("--prune", spec, f"a spec such as 'nm:2:4': methods {', '.join(PRUNERS)}")
    name, _, rest = spec.partition(":")
    if name not in PRUNERS:
        raise ValueError(f"--prune method {name!r} is not known: allowed {', '.join(PRUNERS)}")
    if name == "ratios":
        if not rest:
            raise ValueError(f"--prune {spec!r} needs per-layer ratios: allowed ratios:FILE.json (written by "
                             "gen.compiler.autoprune) or ratios:LAYER=RATIO,…")
        return name, {"spec": rest}
    allowed = _PARAMS[name]
    params = {}
    if name == "nm" and rest and "=" not in rest:
        parts = rest.split(":")
        if len(parts) != 2:
            raise ValueError(f"--prune {spec!r}: N:M is written nm:KEEP:BLOCK, e.g. nm:2:4")
        rest = f"keep={parts[0]},block={parts[1]}"
    if name == "magnitude" and rest and "=" not in rest:
        rest = f"ratio={rest}"
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise ValueError(f"--prune {spec!r}: parameter {item!r} is not allowed: allowed "
                             f"{', '.join(f'{k}=…' for k in allowed) or 'none'}")
        try:
            params[key] = allowed[key](value)
        except ValueError:
            raise ValueError(f"--prune {spec!r}: {key} = {value!r} is not a {allowed[key].__name__}: allowed "
                             f"{'an integer' if allowed[key] is int else 'a number'}") from None
    required = {"magnitude": ["ratio"], "nm": ["keep", "block"], "ou": ["ratio"], "pe": ["ratio"]}.get(name, [])
    missing = [key for key in required if key not in params]
    if missing:
        raise ValueError(f"--prune {spec!r} needs {', '.join(missing)}")
    return name, params


def prune(w, name: str, params: dict):
    """Apply a parsed method to one layer. ``pattern`` applies only to 2-D kernels of 3×3 (other layers are left
    dense and reported as ``skipped``); ``none`` keeps everything."""
    w = _weights(w)
    if name == "none":
        mask = np.ones(w.shape, dtype=bool)
        return mask, _report("none", mask)
    if name == "ratios":
        raise ValueError("--prune ratios:… applies to a network (a ratio per layer): allowed map-report or "
                         "gen.compiler.autoprune.layer_prune for one layer")
    if name == "pattern":
        if w.ndim != 4 or w.shape[2:] != (3, 3):
            mask = np.ones(w.shape, dtype=bool)
            return mask, _report("pattern", mask, skipped="pattern pruning applies to 3×3 convolutions only")
        params = dict(params)
        return pattern(w, k=params.get("k", 4), n_patterns=params.get("P", 8),
                       connectivity=params.get("connectivity", 0.0), group=params.get("group", 1))
    return PRUNERS[name](w, **params)
