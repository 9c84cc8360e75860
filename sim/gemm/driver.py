"""Host driver of the GEMM engine: integer A, W → the exact beats to send; result beats → C.

One job (README "GEMM engine", "Job protocol"):

1. one descriptor beat ``{m: M, k: K, n: N[, shift]}`` on ``desc``;
2. for each N-tile ``nn`` (columns ``nn·cols …``) and, inside it, each K-tile ``kk`` (rows ``kk·k …`` of W,
   ``k = rows·block``): ``rows`` weight beats on ``weights`` (the tile's compressed weights, PE row 0 first) and
   ``M`` activation beats on ``acts`` (``A[m, kk·k : kk·k + k]``, zero-padded past K);
3. the engine answers ``nt·M`` result beats on ``results``: for each N-tile, rows ``m = 0 … M−1`` of
   ``C[:, nn·cols : nn·cols + cols]`` (padded columns are 0).

The weights and activations of a job may be sent as two independent streams (the engine takes each tile's
weights while the previous tile computes). Packing comes from :mod:`hw.systolic.beats` and :mod:`hw.gemm.beats`,
the one definition of the formats; the same driver feeds the cocotb testbench and the Amaranth tests.

With ``dataflow = "os"`` (README "GEMM engine", "Output-stationary dataflow") step 2 is instead: for each N-tile
``nn`` and, inside it, each M-tile ``mm`` (rows ``mm·rows …`` of A), ``T = ⌈K/block⌉`` steps, each one
activation beat on ``acts`` (K-block t of those rows of A, :func:`hw.gemm.os_beats.os_act_beats`, zero-padded
past M and K) and one weight beat on ``weights`` (K-block t of the N-tile's compressed columns: the core's
:func:`hw.gemm.os_beats.os_weight_beats` without its ``last`` bit, which the engine generates). The two
streams are joined in the engine (a step takes one beat of each); the results are the same ``nt·M`` beats in the
same order.
"""

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from hw.gemm import beats as gemm_beats
from hw.systolic import beats as array_beats
from hw.gemm import os_beats
from sim.gemm.golden import n_axis, n_tile, padded_weights, tiles
from gen.gemm.config import check_dims, check_job
from gen.compiler.pe_prune import skip_jobs, tile_map

__all__ = ["GemmJob", "plan_gemm", "plan_descriptor", "gemm_result", "result_words", "balance_channels",
           "PrunedPlan", "plan_pruned"]


@dataclass(frozen=True)
class GemmJob:
    """The beats of one job, in the order they are sent on each stream."""
    m: int
    k: int
    n: int
    shift: int
    desc: int                 # the descriptor beat
    weights: list             # kt·nt·rows weight beats
    acts: list                # WS: kt·nt·M activation beats; OS: mt·nt·T
    k_tiles: int              # WS: K-tiles of rows·block; OS: 1 (a tile covers the whole K)
    n_tiles: int
    tile_beats: tuple = ()    # activation beats of each tile, in order (WS: M per tile; OS: T steps per tile)

    def __repr__(self):
        return (f"GemmJob(m={self.m}, k={self.k}, n={self.n}, shift={self.shift}, k_tiles={self.k_tiles}, "
                f"n_tiles={self.n_tiles}, weights=<{len(self.weights)} beats>, acts=<{len(self.acts)} beats>, "
                f"result_beats={self.result_beats})")

    @property
    def result_beats(self) -> int:
        """Result beats the engine returns for this job: ``n_tiles · M``."""
        return self.n_tiles * self.m


def plan_descriptor(cfg, m, k, n, shift=0, *, check=True):
    """The descriptor beat of a job; ``check=False`` packs out-of-range values too (to test the engine's
    rejection), as long as they fit the fields."""
    if check:
        check_dims(cfg, m, k, n, shift)
    return gemm_beats.desc_beat(cfg, m, k, n, shift)


def plan_gemm(cfg, A, W, shift=0) -> GemmJob:
    """Every beat of the job ``C = post(A · W)`` for the engine of ``cfg`` (a :class:`GemmConfig`).

    Raises
    ------
    ValueError
        M, K or N outside 1 … max_m/max_k/max_n, mismatched shapes, an element of A or W outside its range
        (naming its position), W violating keep:block sparsity (naming the column and K-block rows), or a bad
        shift (:func:`gen.gemm.config.check_job`).
    TypeError
        A or W not an integer array, M/K/N or the shift not an integer, ``cfg`` not a GemmConfig.
    """
    A, W, shift = check_job(cfg, A, W, shift)     # the golden model's checks: one definition
    (M, K), N = A.shape, W.shape[1]
    values, indices = padded_weights(cfg, W)
    if getattr(cfg, "dataflow", "ws") == "os":
        return _plan_os(cfg, A, N, values, indices, shift)
    kt, nt = tiles(cfg, K, N)
    arr = cfg.systolic
    # rows of `values` one PE holds: `group` K-blocks (weights along K), or the `block` K rows of its K-block (weights
    # along N: each row's entries for the PE's N-block); its beat entries are theirs, row-major (docs/gemm-actsparse.md)
    group = cfg.block if n_axis(cfg) else getattr(cfg, "group", 1)
    if group > 1:
        arr = SimpleNamespace(**{f: getattr(cfg, f) for f in ("rows", "cols", "act_bits", "act_signed",
                                                              "weight_bits", "acc_bits", "index_bits")},
                              block=cfg.k // cfg.rows, keep=group * cfg.keep)
        R, Np, keep = values.shape
        values = values.reshape(R // group, group, Np, keep).transpose(0, 2, 1, 3).reshape(R // group, Np, -1)
        indices = indices.reshape(R // group, group, Np, keep).transpose(0, 2, 1, 3).reshape(R // group, Np, -1)
        if not cfg.index_bits:
            indices = np.broadcast_to(np.arange(group * keep), indices.shape)
    Ap = np.zeros((M, kt * cfg.k), np.int64)
    Ap[:, :K] = A
    act_tiles = [array_beats.act_beats(arr, Ap[:, kk * cfg.k:(kk + 1) * cfg.k]) for kk in range(kt)]
    weights, acts = [], []
    for nn in range(nt):
        cs = slice(nn * cfg.cols, (nn + 1) * cfg.cols)
        for kk in range(kt):
            rs = slice(kk * cfg.rows, (kk + 1) * cfg.rows)
            weights += array_beats.weight_beats(arr, values[rs, cs], indices[rs, cs])
            acts += act_tiles[kk]
    return GemmJob(m=M, k=K, n=N, shift=shift, desc=gemm_beats.desc_beat(cfg, M, K, N, shift), weights=weights,
                   acts=acts, k_tiles=kt, n_tiles=nt, tile_beats=(M,) * (kt * nt))


def _plan_os(cfg, A, N, values, indices, shift):
    """The output-stationary beat sequence (module docstring); ``values``/``indices`` from :func:`padded_weights`."""
    M, K = A.shape
    steps = -(-K // cfg.block)
    mt, nt = -(-M // cfg.rows), -(-N // cfg.cols)
    Ap = np.zeros((mt * cfg.rows, steps * cfg.block), np.int64)
    Ap[:M, :K] = A
    act_tiles = [os_beats.os_act_beats(cfg, Ap[mm * cfg.rows:(mm + 1) * cfg.rows]) for mm in range(mt)]
    no_last = (1 << os_beats.os_layouts(cfg)["weights"]["last"].offset) - 1
    weights, acts = [], []
    for nn in range(nt):
        cs = slice(nn * cfg.cols, (nn + 1) * cfg.cols)
        w_tile = [w & no_last for w in os_beats.os_weight_beats(cfg, values[:steps, cs], indices[:steps, cs])]
        for mm in range(mt):
            weights += w_tile
            acts += act_tiles[mm]
    return GemmJob(m=M, k=K, n=N, shift=shift, desc=gemm_beats.desc_beat(cfg, M, K, N, shift), weights=weights,
                   acts=acts, k_tiles=1, n_tiles=nt, tile_beats=(steps,) * (mt * nt))


def gemm_result(cfg, job: GemmJob, words) -> np.ndarray:
    """The job's result beats (``job.result_beats`` of them, in order) → ``C[M × N]`` (int64)."""
    if len(words) != job.result_beats:
        raise ValueError(f"expected {job.result_beats} result beats for M = {job.m}, N = {job.n}, got {len(words)}")
    rows = gemm_beats.results_from_beats(cfg, words).reshape(job.n_tiles, job.m, n_tile(cfg))
    return rows.transpose(1, 0, 2).reshape(job.m, job.n_tiles * n_tile(cfg))[:, :job.n]


def result_words(cfg, job: GemmJob, C) -> list:
    """Inverse of :func:`gemm_result`: ``C[M × N]`` → the job's result beats (padded columns 0), for scoreboards."""
    from hw import bits

    C = np.asarray(C, dtype=np.int64)
    padded = np.zeros((job.m, job.n_tiles * n_tile(cfg)), np.int64)
    padded[:, :job.n] = C
    rows = padded.reshape(job.m, job.n_tiles, n_tile(cfg)).transpose(1, 0, 2).reshape(-1, n_tile(cfg))
    return bits.pack(gemm_beats.result_layout(cfg), rows)


def balance_channels(A, *, block, density=None):
    """A K permutation (Sense-style channel rearrangement, balanced for lossless activation sparsity) that spreads
    the non-zeros of A's columns (input channels) evenly over the K-blocks: channels sorted by non-zero count
    (``density``, default counted over A's rows), dealt to the blocks in snake order (0 … B−1, B−1 … 0, …), so that
    every block gets dense and sparse channels alike and the densest block of a row, which sets a lossless row's
    steps, is as light as the data allow. Returns ``perm``: use ``A[:, perm]`` and ``W[perm, :]`` (W's keep:block
    pruning must be done in the permuted order). K is padded to whole blocks only inside; ``perm`` has K entries."""
    A = np.asarray(A)
    K = A.shape[1]
    counts = np.count_nonzero(A, axis=0) if density is None else np.asarray(density)
    blocks = -(-K // block)
    order = np.argsort(-counts, kind="stable")
    slots = [[] for _ in range(blocks)]
    room = [block] * (blocks - 1) + [K - (blocks - 1) * block]
    for i, ch in enumerate(order):
        lap, pos = divmod(i, blocks)
        b = pos if lap % 2 == 0 else blocks - 1 - pos
        while len(slots[b]) == room[b]:        # a ragged last block fills up first: next block with room
            b = (b + 1) % blocks
        slots[b].append(int(ch))
    return np.array([ch for s in slots for ch in s], dtype=np.int64)


@dataclass(frozen=True)
class PrunedPlan:
    """A layer ``C = post(A · W)`` compiled for the WS engine with its all-zero weight tiles removed
    (:func:`plan_pruned`).

    ``jobs`` are the ``(A, W, shift)`` jobs the host sends, in order; job ``i`` computes rows ``rows[i]`` of C at the
    original columns ``columns[i]``. ``tiles`` is the ``(kt, nt)`` map of W's ``k × cols`` tiles that hold a
    non-zero (the ones sent); ``dense`` the ``(M, K, N)`` jobs of the same layer without skipping (rows split into
    ``max_m`` chunks), the baseline of the cycles saved."""
    m: int
    k: int
    n: int
    shift: int
    tiles: np.ndarray
    jobs: list
    rows: list
    columns: list
    dense: list

    def __repr__(self):
        return (f"PrunedPlan(m={self.m}, k={self.k}, n={self.n}, tiles_kept={int(self.tiles.sum())}/"
                f"{self.tiles.size}, jobs={self.shapes})")

    @property
    def shapes(self) -> list:
        """``(M, K, N)`` of every job sent (the input of :func:`gen.gemm.perf.predict`)."""
        return [(a.shape[0], a.shape[1], w.shape[1]) for a, w, _ in self.jobs]

    def assemble(self, outputs) -> np.ndarray:
        """The jobs' results (``C_i`` of each job, e.g. :func:`gemm_result` of its beats) → ``C[M × N]``. Columns
        whose every tile was removed are ``post(0) = 0``."""
        if len(outputs) != len(self.jobs):
            raise ValueError(f"outputs = <{len(outputs)} job results> does not match the plan: allowed "
                             f"{len(self.jobs)}, one per job")
        C = np.zeros((self.m, self.n), np.int64)
        for out, rs, cs in zip(outputs, self.rows, self.columns):
            C[rs, cs] = out
        return C


def plan_pruned(cfg, A, W, shift=0) -> PrunedPlan:
    """Compile a layer for the weight-stationary engine with the all-zero ``k × cols`` tiles of W removed (PE-wise
    pruning, :mod:`gen.compiler.pe_prune`), so that the engine only runs the tiles that hold weights.

    The jobs are :func:`gen.compiler.pe_prune.skip_jobs`: N-tiles grouped by the set of K-tiles that hold a
    non-zero, one job ``A[:, those K-tiles' rows] · W[those rows, the group's columns]`` per group and ``max_m``
    chunk of rows; an N-tile with no K-tile left is not sent at all (its columns are ``post(0) = 0``). Each job is
    an ordinary job (:func:`plan_gemm` plans its beats); the cycle model of the job list
    (:func:`gen.gemm.perf.predict` of ``plan.shapes``) is what the engine takes.

    Raises
    ------
    ValueError
        ``cfg`` not weight-stationary or with activation sparsity, or anything :func:`gen.gemm.config.check_job`
        rejects for a ``max_m`` chunk of A with the whole W (values, shapes, K and N, the shift).
    """
    if getattr(cfg, "dataflow", "ws") != "ws" or getattr(cfg, "act_keep", 0):
        raise ValueError(f"config {cfg.top}: dataflow = {cfg.dataflow!r}, act_keep = {cfg.act_keep}: allowed "
                         "dataflow 'ws' without activation sparsity (tiles of rows·block × cols are skipped)")
    A = np.asarray(A)
    if A.ndim != 2 or not A.shape[0]:
        raise ValueError(f"A shape {A.shape}: allowed a 2-D M × K array with M >= 1")
    chunks = [slice(r, min(r + cfg.max_m, A.shape[0])) for r in range(0, A.shape[0], cfg.max_m)]
    for rs in chunks:
        _, W, shift = check_job(cfg, A[rs], W, shift)
    A = np.asarray(A, np.int64)
    (M, K), N = A.shape, W.shape[1]
    padded_weights(cfg, W)                              # keep:block, checked once for the whole layer
    live = tile_map(W, cfg.k, cfg.cols)
    jobs, rows, columns = [], [], []
    for rs, ks, cs in skip_jobs(W, M, k=cfg.k, cols=cfg.cols, max_m=cfg.max_m):
        jobs.append((A[rs][:, ks], W[np.ix_(ks, cs)], shift))
        rows.append(rs)
        columns.append(cs)
    dense = [(rs.stop - rs.start, K, N) for rs in chunks]
    return PrunedPlan(m=M, k=K, n=N, shift=shift, tiles=live, jobs=jobs, rows=rows, columns=columns, dense=dense)
