"""Off-engine traffic of GEMM jobs, and splitting a GEMM into the jobs an engine config accepts.

**Traffic** (:func:`job_traffic`): the bytes of A, W and C that cross the engine's ports for one job, from the
job protocol of docs/gemm.md (what the host must fetch from DRAM or a buffer outside the engine; the engine keeps
nothing between jobs):

- WS: the engine holds one weight tile (plus two in its weight buffer) and ``max_m × cols`` partial sums, no
  activations, so A is re-streamed once per N-tile: ``nt · kt · M`` activation beats of ``rows·block`` elements
  (K padded to whole tiles) → ``A = nt · M · kt·k · act_bits / 8``; every weight tile once,
  ``kt · nt · rows`` beats of ``cols · keep`` compressed entries (value + index) →
  ``W = kt·rows · nt·cols · keep · (weight_bits + index_bits) / 8``; ``C = nt · M · cols · result_bits / 8``
  (padded columns included: the result beat is ``cols`` wide). Activation-sparse engines: a beat holds
  ``cols · group·keep`` entries (weights along K) or ``cols · block·keep`` (weights along N, whose N-tile and
  result beat are ``n_tile = cols·block`` wide).
- OS: each output tile streams its K-blocks of A and W: A once per N-tile (``nt · mt·rows · S·block`` elements,
  rows padded to whole M-tiles, ``S = ⌈K/block⌉``) and W once per M-tile (``mt · S · nt·cols · keep`` entries);
  C as in WS.

Bytes are exact beat payloads (bits / 8, not rounded); bus framing (valid/ready, descriptors) is not counted.

**Splitting** (:func:`split_jobs`): a GEMM larger than the config's ``max_m`` / ``max_n`` runs as several jobs,
row blocks of at most ``max_m`` rows times column blocks of at most ``max_n`` columns, each an independent job with
the same result as the whole (outputs do not depend on other rows or columns). K cannot be split exactly: the
engine's ReLU/requantization applies per job, so partial sums never leave it; ``K > max_k`` is an error unless
``split_k=True`` (the cycle and traffic estimates of ``perf``): then K runs in parts of at most ``max_k`` whose
results the host would add (exact only on a config without ReLU and requantization, and with C moved once per
part).
"""

from hw import checks
from gen.gemm.config import check_config

__all__ = ["split_jobs", "job_traffic", "TRAFFIC_KEYS"]

TRAFFIC_KEYS = ("a_bytes", "w_bytes", "c_bytes")


def split_jobs(cfg, m, k, n, *, name="GEMM", split_k=False):
    """``[(m0, n0, M_j, K_j, N_j), ...]``: the jobs of an ``M × K × N`` GEMM on ``cfg``, row blocks outer (then
    column blocks, then K parts when ``split_k``).

    Raises
    ------
    ValueError
        M, K or N < 1, or ``K > max_k`` without ``split_k`` (naming the GEMM and the option that would fit it).
    """
    check_config(cfg)
    for dim, value in (("M", m), ("K", k), ("N", n)):
        checks.check_int(f"{name}: {dim}", value, 1)
    checks.check_bool("split_k", split_k)
    if split_k:
        return [(m0, n0, min(cfg.max_m, m - m0), min(cfg.max_k, k - k0), min(cfg.max_n, n - n0))
                for m0 in range(0, m, cfg.max_m) for n0 in range(0, n, cfg.max_n) for k0 in range(0, k, cfg.max_k)]
    if k > cfg.max_k:
        raise ValueError(f"{name} = {m},{k},{n}: K = {k} is larger than max_k = {cfg.max_k} of {cfg.top}: allowed "
                         f"K ≤ max_k (the engine cannot split K, its ReLU/requantization applies per job; "
                         f"--set max_k={k} sizes the engine for it)")
    return [(m0, n0, min(cfg.max_m, m - m0), k, min(cfg.max_n, n - n0))
            for m0 in range(0, m, cfg.max_m) for n0 in range(0, n, cfg.max_n)]


def job_traffic(cfg, m, k, n) -> dict:
    """``{"a_bytes", "w_bytes", "c_bytes"}`` (floats, bytes) of one job ``M × K × N`` on ``cfg`` (module docstring)."""
    check_config(cfg)
    n_tile = getattr(cfg, "n_tile", cfg.cols)
    nt = -(-n // n_tile)
    entry = cfg.weight_bits + cfg.index_bits
    c = nt * m * n_tile * cfg.result_bits / 8
    if getattr(cfg, "dataflow", "ws") == "os":
        steps, mt = -(-k // cfg.block), -(-m // cfg.rows)
        a = nt * mt * cfg.rows * steps * cfg.block * cfg.act_bits / 8
        w = mt * steps * nt * cfg.cols * cfg.keep * entry / 8
    else:
        kt = -(-k // cfg.k)
        a = nt * m * kt * cfg.k * cfg.act_bits / 8
        # entries per PE of a weight beat: keep, group·keep (act_keep along K), block·keep (weights along N)
        per_pe = cfg.keep * (cfg.block if getattr(cfg, "weight_axis", "k") == "n" else getattr(cfg, "group", 1))
        w = kt * cfg.rows * nt * cfg.cols * per_pe * entry / 8
    return {"a_bytes": a, "w_bytes": w, "c_bytes": c}
