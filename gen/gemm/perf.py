"""Exact cycle model of the GEMM engines (docs/gemm.md, "Cycle model" and "Timing"), from their specification.

The model assumes an ideal host: every stream offers its next beat in every cycle (descriptors, weight beats
and activation rows queued from the start) and ``results__ready`` is always high. Cycle 0 is the cycle in
which the first descriptor transfers. With ``R = rows``, ``L = rows + cols + pe_pipeline`` and the tiles of all jobs
numbered ``t = 0, 1, …`` in order (each job's tiles are its N-tiles × K-tiles, ``M_t`` rows each):

- ``s_t``: first weight beat of tile t; the loader takes its ``R`` beats into the shadow registers in cycles
  ``s_t … s_t + R − 1`` (from the weight buffer, which the host fills ahead of time up to ``2·R`` beats; a beat written in cycle c is
  readable from c + 1, and an ideal host's beats are always there in time: the first is written with the
  descriptor).
  ``s_0 = 1``; ``s_t = max(s_{t−1} + R + d_t, a_{t−1} + 1)``: the loader is free after the previous load and the
  shadow registers are free from the cycle after the previous tile's first row transfers; ``d_t = 1`` when tile t is
  the first of a job (its descriptor transfers the cycle after the previous job's last weight beat, when the
  loader is idle, and its first beat the cycle after that), else 0.
- ``a_t``: first activation row of tile t: ``a_0 = max(s_0 + R, acts_from)``;
  ``a_t = max(s_t + R, a_{t−1} + M_{t−1})``. Rows transfer back to back, ``a_t … a_t + M_t − 1``; a row's result
  (last K-tile only) transfers ``L`` cycles after it. ``acts_from`` (default 0) is the cycle from which the host
  offers activation rows.
- ``p_j``: the cycle the weight port takes weight beat j (all jobs' beats numbered in order; beat ``j = t·R + b``
  goes into the shadow registers in cycle ``w_j = s_t + b``). The weight buffer holds ``D = 2·R`` beats; the
  port takes a beat while it has room, and a beat loaded in cycle c frees its place from cycle c + 1:
  ``p_j = j`` for ``j < D``, ``p_j = max(p_{j−1} + 1, w_{j−D} + 1)`` after. So a host that sends every weight
  beat before its first activation row completes only if there are ``n ≤ R + D = 3·R`` of them (three tiles:
  one in the shadow registers, two in the buffer); they transfer in cycles ``0 … n − 1`` and the host offers its
  first row in cycle ``acts_from = n``. With more, the loader waits for a row that waits for the weights.

Counters over the window from cycle 0 to the last result transfer ``E`` (inclusive): ``cycles = E + 1``,
``busy_cycles = Σ M_t``, ``stall_weight`` = the cycles from 1 on in which the array waited for a load
(``R`` before the first tile, ``max(0, s_t + R − a_{t−1} − M_{t−1})`` before tile t), ``stall_input = a_0 − s_0 −
R`` (the cycles the engine wanted a row before ``acts_from``), ``stall_output = 0``, ``jobs_done`` = the number of
jobs. ``macs`` and ``zero_skips`` depend on the data (:func:`sim.gemm.golden.mac_counts`); their sum does not depend
on the activations.

For one job of ``T = kt·nt`` tiles the recurrence has the closed form (:func:`job_cycles`):
``P = max(M, R + 1)``, ``cycles = R + 1 + (T − 1)·P + M + L``, ``stall_weight = R + (T − 1)·(P − M)``.

Output-stationary engine (``cfg.dataflow == "os"``; every function dispatches on it). A job's tiles are its
N-tiles × M-tiles (``rows × cols`` of C), each ``S = ⌈K/block⌉`` steps (one activation and one weight beat each),
``m_t = min(rows, M − mm·rows)`` real rows. The steps of tile t run from ``f_t`` to its last step ``l_t``:
``f_0 = 1``, ``l_0 = f_0 + S_0 − 1``; ``l_t = max(l_{t−1} + S_t, l_{t−1} + R)`` (a last step waits ``R`` cycles
after the previous one: one result row per cycle leaves the core) and ``f_t = l_{t−1} + 1``, except ``f_t = l_t``
when ``S_t = 1`` (the only step is the last one). Result row i < m_t leaves in
cycle ``l_t + cols + 1 + i`` (``pe_pipeline = 0``). Counters: ``busy_cycles = Σ S_t`` (steps), ``stall_weight = Σ_{t≥1} max(0, R − S_t)``
(the held last steps), ``stall_input = stall_output = 0``. ``row_starts`` are the ``f_t``, ``loads`` is empty,
``weight_accepts`` are the step cycles (a step takes one weight and one activation beat): ``f_t … f_t + S_t − 2``
and ``l_t``. ``acts_from`` must be 0 (the two streams are joined). With ``pe_pipeline = p`` every result row leaves
``p`` cycles later (``l_t + cols + 1 + p + i``). One job of ``mt·nt`` tiles (:func:`job_cycles`): ``P = max(S, R)``,
``cycles = S + (mt·nt − 1)·P + cols + p + m_last + 1`` with ``m_last = M − (mt − 1)·R``.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from hw import checks
from gen.gemm.config import check_config, check_dims

__all__ = ["Prediction", "tiles", "os_tiles", "predict", "job_cycles", "ideal_cycles", "utilization", "speedup"]


def _os(cfg):
    return getattr(cfg, "dataflow", "ws") == "os"


def tiles(cfg, k, n):
    """``(kt, nt)``: the ceil-divided K-tiles (``k`` deep) and N-tiles (``n_tile`` wide: ``cols``, or ``cols·block``
    with weights sparse along N) of a job."""
    _, k, n, _ = check_dims(cfg, 1, k, n)
    return -(-k // cfg.k), -(-n // getattr(cfg, "n_tile", cfg.cols))


def os_tiles(cfg, m, k, n):
    """Output-stationary job: ``(steps, mt, nt)``: K-blocks per tile ``⌈K/block⌉``, M-tiles, N-tiles."""
    m, k, n, _ = check_dims(cfg, m, k, n)
    return -(-k // cfg.block), -(-m // cfg.rows), -(-n // cfg.cols)


@dataclass(frozen=True)
class Prediction:
    """Predicted timing of a sequence of jobs (cycle numbers relative to the first descriptor transfer)."""
    cycles: int               # cycle 0 … last result transfer, inclusive
    busy_cycles: int
    stall_input: int
    stall_output: int
    stall_weight: int
    jobs_done: int
    loads: list               # s_t: cycle the loader takes the first weight beat of each tile
    row_starts: list          # a_t: first activation row cycle of each tile
    result_cycles: list       # transfer cycle of every result beat, in order
    weight_accepts: list      # p_j: transfer cycle of every weight beat at the port, in order

    def __repr__(self):
        # a summary: the per-tile and per-beat lists run to tens of thousands of entries
        return (f"Prediction(cycles={self.cycles}, busy_cycles={self.busy_cycles}, stall_input={self.stall_input}, "
                f"stall_output={self.stall_output}, stall_weight={self.stall_weight}, jobs_done={self.jobs_done}, "
                f"tiles={len(self.row_starts)}, loads={len(self.loads)}, result_beats={len(self.result_cycles)})")

    def counters(self):
        """The data-independent counters, as the engine names them."""
        return {"cycles": self.cycles, "busy_cycles": self.busy_cycles, "stall_input": self.stall_input,
                "stall_output": self.stall_output, "stall_weight": self.stall_weight, "jobs_done": self.jobs_done}


def _check(cfg, m, k, n):
    """M, K, N as the engine checks a descriptor (:func:`gen.gemm.config.check_dims`); returns them as ints."""
    return check_dims(cfg, m, k, n)[:3]


def _jobs(cfg, jobs):
    """``jobs`` as a non-empty list of checked ``(M, K, N)`` int triples."""
    check_config(cfg)
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Iterable):
        checks.fail("jobs", jobs, f"is a {type(jobs).__name__}, not a list", "a list of (M, K, N) jobs", exc=TypeError)
    jobs = list(jobs)
    if not jobs:
        checks.fail("jobs", jobs, "is empty", "at least one (M, K, N) job")
    for i, job in enumerate(jobs):
        if isinstance(job, (str, bytes)) or not isinstance(job, Iterable) or len(tuple(job)) != 3:
            checks.fail(f"jobs[{i}]", job, "is not an (M, K, N) triple", "three integers", exc=TypeError)
    return [_check(cfg, *job) for job in jobs]


def _predict_os(cfg, jobs) -> Prediction:
    rows = cfg.rows
    tile_steps, tile_rows = [], []
    for m, k, n in jobs:
        steps, mt, nt = os_tiles(cfg, m, k, n)
        for _ in range(nt):
            for mm in range(mt):
                tile_steps.append(steps)
                tile_rows.append(min(rows, m - mm * rows))
    starts, results, steps_at, last = [], [], [], None
    stall_weight = 0
    for t, (steps, m_valid) in enumerate(zip(tile_steps, tile_rows)):
        # a one-step tile's first step is its last, held like any last step
        first = 1 if last is None else (last + 1 if steps > 1 else last + rows)
        end = first + steps - 1 if last is None else max(first + steps - 1, last + rows)
        if last is not None:
            stall_weight += max(0, rows - steps)
        starts.append(first)
        steps_at += [first + i for i in range(steps - 1)] + [end]
        last = end
        results += [end + cfg.cols + 1 + getattr(cfg, "pe_pipeline", 0) + i for i in range(m_valid)]
    return Prediction(cycles=results[-1] + 1, busy_cycles=sum(tile_steps), stall_input=0, stall_output=0,
                      stall_weight=stall_weight, jobs_done=len(jobs), loads=[], row_starts=starts,
                      result_cycles=results, weight_accepts=steps_at)


def _weight_accepts(rows, loads):
    """``p_j`` of every weight beat (module docstring): the port takes beat j once the ``2·rows``-beat buffer has
    room, i.e. the cycle after beat ``j − 2·rows`` was loaded."""
    depth = 2 * rows
    loaded = [s + b for s in loads for b in range(rows)]
    accepts = []
    for j in range(len(loaded)):
        p = accepts[-1] + 1 if accepts else 0
        accepts.append(max(p, loaded[j - depth] + 1) if j >= depth else p)
    return accepts


def predict(cfg, jobs, *, acts_from=0, steps=None) -> Prediction:
    """Run the recurrence over ``jobs``, a list of ``(M, K, N)`` sent back to back by an ideal host, which offers
    activation rows from cycle ``acts_from`` on (WS; 0: from the start).

    ``steps`` (activation-sparse engines, ``act_mode = "lossless"``): one ``(kt, M)`` array per job, the steps of
    every row in every K-tile (:func:`sim.gemm.golden.act_steps`; ``None``: one step per row). A row then occupies
    the issuer for its steps, tile t's rows for ``U_t = Σ steps`` cycles (``M_t`` replaced by ``U_t`` in the
    recurrence), ``busy_cycles = Σ U_t`` and a result leaves ``L`` cycles after its row's last step."""
    jobs = _jobs(cfg, jobs)
    if steps is not None:
        steps = [checks.check_int_array(f"steps[{i}]", s, ndim=2) for i, s in enumerate(steps)]
        if len(steps) != len(jobs) or any(s.shape != (tiles(cfg, k, n)[0], m) or (s < 1).any()
                                          for s, (m, k, n) in zip(steps, jobs)):
            raise ValueError("steps must hold one (k_tiles, M) array of positive step counts per job")
    if _os(cfg):
        if acts_from:
            raise ValueError(f"acts_from = {acts_from}: the output-stationary engine joins activations and weights")
        return _predict_os(cfg, jobs)
    rows, lat = cfg.rows, cfg.rows + cfg.cols + getattr(cfg, "pe_pipeline", 0)
    tile_rows, tile_last_k, tile_ends, job_first = [], [], [], []
    for j, (m, k, n) in enumerate(jobs):
        kt, nt = tiles(cfg, k, n)
        for nn in range(nt):
            for kk in range(kt):
                job_first.append(nn == 0 and kk == 0)
                # ends: issue offset of each row's last step inside its tile
                ends = list(range(m)) if steps is None else [int(e) - 1 for e in steps[j][kk].cumsum()]
                tile_rows.append(ends[-1] + 1)
                tile_ends.append(ends)
                tile_last_k.append(kk == kt - 1)
    loads, starts, results = [], [], []
    stall_weight = 0
    for t, m in enumerate(tile_rows):
        if t == 0:
            s = 1
            a = max(s + rows, acts_from)
            stall_weight += rows
            stall_input = a - (s + rows)
        else:
            s = max(loads[-1] + rows + job_first[t], starts[-1] + 1)
            free = starts[-1] + tile_rows[t - 1]          # first cycle the issuer has no rows left
            a = max(s + rows, free)
            stall_weight += a - free
        loads.append(s)
        starts.append(a)
        if tile_last_k[t]:
            results += [a + e + lat for e in tile_ends[t]]
    end = starts[-1] + tile_rows[-1] - 1 + lat
    return Prediction(cycles=end + 1, busy_cycles=sum(tile_rows), stall_input=stall_input, stall_output=0,
                      stall_weight=stall_weight, jobs_done=len(jobs), loads=loads, row_starts=starts,
                      result_cycles=results, weight_accepts=_weight_accepts(rows, loads))


def job_cycles(cfg, m, k, n):
    """Closed form of :func:`predict` for one job: cycles from its descriptor to its last result, inclusive."""
    m, k, n = _check(cfg, m, k, n)
    if _os(cfg):
        steps, mt, nt = os_tiles(cfg, m, k, n)
        return (steps + (mt * nt - 1) * max(steps, cfg.rows) + cfg.cols + getattr(cfg, "pe_pipeline", 0)
                + m - (mt - 1) * cfg.rows + 1)
    kt, nt = tiles(cfg, k, n)
    period = max(m, cfg.rows + 1)
    return cfg.rows + 1 + (kt * nt - 1) * period + m + cfg.rows + cfg.cols + getattr(cfg, "pe_pipeline", 0)


def ideal_cycles(cfg, m, k, n):
    """The ideal bound: ceil-tiled MACs / multipliers = ``M · kt · nt`` (one activation row per cycle); for OS
    ``mt · nt · ⌈K/block⌉`` (one K-block of a whole tile per cycle)."""
    m, k, n = _check(cfg, m, k, n)
    if _os(cfg):
        steps, mt, nt = os_tiles(cfg, m, k, n)
        return steps * mt * nt
    kt, nt = tiles(cfg, k, n)
    return m * kt * nt


def utilization(cfg, m, k, n):
    """``ideal_cycles / job_cycles`` of one job (multiplier-busy share of the job's cycles)."""
    return ideal_cycles(cfg, m, k, n) / job_cycles(cfg, m, k, n)


def speedup(sparse_cfg, dense_cfg, m, k, n):
    """``job_cycles(dense) / job_cycles(sparse)`` for the same GEMM."""
    return job_cycles(dense_cfg, m, k, n) / job_cycles(sparse_cfg, m, k, n)
