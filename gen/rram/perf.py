"""Exact cycle model of the RRAM tile (docs/rram.md, "Timing"), and the limit it is measured against.

Counts clock cycles with an ideal host (no input gaps, no output backpressure) and the crossbar model's latency of 2
(command handshake at edge t, response handshake at edge t + 2). Cycle numbers are handshake edges, as the stream
helpers count them.

- Program beat: ``1 + 4·writes`` cycles to the next one, 1 more when the cell fails write-verify (logged or, with a
  full fault log, dropped): :func:`program_cycles`. Table beat: 1 cycle; its effects (STATUS, ERRORS, the queue
  write) come :data:`TABLE_LATENCY` cycles after its handshake, and a program beat or the loader waits for them.
- MVM: each crossbar's lane spends ``W_x = n_planes · Σ_{OU o on x} conv(o)`` cycles in its conversion stage, with
  ``conv(o)`` = Σ over its groups of ``adcs_per_xbar`` converted columns of the most distinct outputs the group
  sends to one accumulator bank (at least 1; :func:`ou_conversion_cycles`); ``ceil(converted / adcs_per_xbar)``
  when no group routes two outputs to one bank (dense and compacted mappings);
  the lanes run at once, so an isolated MVM takes ``K + max_x W_x + N + MVM_OVERHEAD`` cycles from its first input
  beat to its last output beat, both included (:func:`mvm_cycles`).
- Vectors back to back: :func:`stream_schedule` (three overlapped stages: input loading, the lanes, the drain; two
  halves of the input buffer and of the accumulators).

The limit (:func:`limit_cycles`): ``L = n_planes · max_x Σ_o ceil(converted_o / adcs_per_xbar) + K + N`` for an
isolated MVM, ``n_planes · max_x Σ_o ceil(converted_o / adcs_per_xbar)`` per vector in a stream.
"""

import numpy as np

from hw import checks
from hw.formats.mapping import conversion_cycles

__all__ = ["INPUT_START", "TABLE_LATENCY", "LANE_FILL", "MVM_OVERHEAD", "program_cycles", "ou_conversion_cycles", "lane_cycles", "mvm_cycles",
           "stream_schedule", "schedule", "stream_total", "compute_cycles", "stream_cycles_per_vector", "limit_cycles", "stream_limit_per_vector", "old_mvm_cycles",
           "report"]

INPUT_START = 1     # cycles from the loader seeing a vector to its first beat's handshake
TABLE_LATENCY = 1
"""Cycles from a table beat's handshake (edge t) to the edge its checks' results and writes take effect (t + 1:
STATUS, ERRORS, tables valid and the OU queue change then, visible from cycle t + 2): the registered beat's stage 1
(:meth:`hw.rram.controller.RramController._table_load`). Until then no program beat transfers and the loader does
not see a vector: after the last table beat at t, a program beat transfers at t + 1 + TABLE_LATENCY at the
earliest, and the loader sees a vector at t + 1 + TABLE_LATENCY (its first beat one cycle later, INPUT_START)."""
LANE_FILL = 10
"""Cycles from the lanes' start to their last accumulator write, beyond ``W_x``: queue read (1), its register (1), input-buffer read
(1), READ_OU handshake (1) and crossbar latency (2), the adder pipeline (3: registered selection, chunk sums, bank
sums), the accumulator read-modify-write (1)
(:class:`hw.rram.lane.CrossbarLane`)."""
START = 1           # the vector's last input beat → the lanes start (the half is marked full, then seen)
FINISH = 1          # the lanes' last accumulator write → the vector is computed
DRAIN_START = 2     # computed → the drain reads y[0] → y[0] is offered
MVM_OVERHEAD = START + LANE_FILL + FINISH + DRAIN_START
"""Cycles an isolated MVM adds to ``K + max_x W_x + N``: starting the lanes, their pipeline fill, the hand-offs."""
EMPTY_OVERHEAD = START + 1 + DRAIN_START    # no OU scheduled at all: the lanes are idle at once


def program_cycles(writes, *, logged=False) -> int:
    """Cycles from a program beat's handshake to the next program beat's handshake, for a cell that took
    ``writes`` write-verify iterations (1 … max_iters): accept (1) + per write WRITE (1), READ_CELL (1), response
    (2), i.e. ``1 + 4·writes``, plus 1 for a cell that failed (``logged``: pushed into the fault log, or counted
    as dropped when the log is full; the push cycle is the same)."""
    writes = checks.check_int("writes", writes, 1, 255, allowed="1 … 255 (max_iters)")
    return 1 + 4 * writes + bool(checks.check_bool("logged", logged))


def ou_conversion_cycles(mask, outputs, adcs: int) -> np.ndarray:
    """Conversion-stage cycles of every OU activation (:func:`hw.formats.mapping.conversion_cycles`): groups of
    ``adcs`` converted columns, each taking the most distinct outputs it sends to one accumulator bank.
    ``mask``, ``outputs``: ``(n_ous, ou_cols)``."""
    mask = np.asarray(mask, dtype=bool)
    outputs = np.asarray(outputs, dtype=np.int64)
    adcs = checks.check_int("adcs", adcs, 1, 64)
    return np.array([conversion_cycles(mask[o], outputs[o], adcs) for o in range(mask.shape[0])], dtype=np.int64)


def _schedule_of(mapping):
    checks.check_attrs("mapping", mapping, ("n_inputs", "n_outputs", "ou_xbar", "ou_col_mask", "ou_col_output"),
                       "a TileMapping (or an object with its n_inputs, n_outputs, ou_xbar, ou_col_mask and "
                       "ou_col_output)")
    return np.asarray(mapping.ou_xbar, dtype=np.int64)


def lane_cycles(cfg, mapping) -> np.ndarray:
    """``W_x`` of every crossbar: its conversion-stage cycles per MVM (``n_planes · Σ conv(o)``), shape (n_xbars,)."""
    checks.check_attrs("cfg", cfg, ("n_xbars", "n_planes", "adcs"), "an RramTileConfig")
    xbar = _schedule_of(mapping)
    conv = ou_conversion_cycles(mapping.ou_col_mask, mapping.ou_col_output, cfg.adcs)
    return cfg.n_planes * np.bincount(xbar, weights=conv, minlength=cfg.n_xbars).astype(np.int64)


def _compute(cfg, mapping) -> int:
    """Cycles from the lanes' start to the vector being computed."""
    return compute_cycles(int(lane_cycles(cfg, mapping).max()) if len(mapping.ou_xbar) else 0)


def compute_cycles(busiest: int) -> int:
    """Cycles from the lanes' start to the vector being computed, given ``max_x W_x`` (0: nothing scheduled)."""
    return LANE_FILL + FINISH + busiest if busiest else 1


def mvm_cycles(cfg, mapping) -> int:
    """Cycles of an isolated MVM (the tile idle, the tables loaded) from its first input beat's handshake to its
    last output beat's handshake, both included: ``K + max_x W_x + N + MVM_OVERHEAD`` (``K + N + EMPTY_OVERHEAD``
    when no OU is scheduled)."""
    k, n = int(mapping.n_inputs), int(mapping.n_outputs)
    return k + START + _compute(cfg, mapping) + DRAIN_START + n


def stream_schedule(cfg, mapping, n_vectors: int) -> list[tuple[int, int]]:
    """``(first input beat, last output beat)`` handshake cycles of ``n_vectors`` vectors offered back to back by an
    ideal host, the loader seeing the first vector at cycle 0 (its first beat at :data:`INPUT_START`):
    :func:`schedule` of the mapping's K, N and busiest lane."""
    return schedule(int(mapping.n_inputs), int(mapping.n_outputs), _compute(cfg, mapping), n_vectors)


def schedule(k: int, n: int, compute: int, n_vectors: int) -> list[tuple[int, int]]:
    """The stream recurrence for K inputs, N outputs and ``compute`` cycles per vector (:func:`compute_cycles`).

    e: the loader sees vector v; s: the lanes start; f: computed; r: the drain starts; d: its last output:
    ``e_v = max(e_{v-1} + K + 1, f_{v-2} + 1)``, ``s_v = max(e_v + K + START, f_{v-1} + 1, d_{v-2} + 1)``,
    ``f_v = s_v + compute``, ``r_v = max(f_v + 1, d_{v-1} + 1)``, ``d_v = r_v + 1 + N``.
    """
    n_vectors = checks.check_int("n_vectors", n_vectors, 1, 10**7)
    e, s, f, d, out = [], [], [], [], []
    for v in range(n_vectors):
        ev = 0 if v == 0 else e[-1] + k + 1
        if v >= 2:
            ev = max(ev, f[v - 2] + 1)
        sv = ev + k + START
        if v >= 1:
            sv = max(sv, f[v - 1] + 1)
        if v >= 2:
            sv = max(sv, d[v - 2] + 1)
        fv = sv + compute
        rv = fv + 1 if v == 0 else max(fv + 1, d[v - 1] + 1)
        dv = rv + DRAIN_START - 1 + n
        e.append(ev), s.append(sv), f.append(fv), d.append(dv)
        out.append((ev + INPUT_START, dv))
    return out


def stream_total(k: int, n: int, busiest: int, n_vectors: int) -> int:
    """Cycles of ``n_vectors`` back to back, first input beat to last output beat, both included."""
    sched = schedule(k, n, compute_cycles(busiest), n_vectors)
    return sched[-1][1] - sched[0][0] + 1


def stream_cycles_per_vector(cfg, mapping, n_vectors: int = 8) -> float:
    """Cycles per vector of ``n_vectors`` back to back: from the first vector's first input beat to the last
    vector's last output beat, both included, divided by ``n_vectors``."""
    sched = stream_schedule(cfg, mapping, n_vectors)
    return (sched[-1][1] - sched[0][0] + 1) / n_vectors


def _busiest(cfg, mapping) -> int:
    checks.check_attrs("cfg", cfg, ("n_xbars", "n_planes", "adcs"), "an RramTileConfig")
    xbar = _schedule_of(mapping)
    conv = -(-np.asarray(mapping.ou_col_mask, dtype=bool).sum(axis=1) // cfg.adcs)
    return cfg.n_planes * int(np.bincount(xbar, weights=conv, minlength=cfg.n_xbars).max()) if len(xbar) else 0


def limit_cycles(cfg, mapping) -> int:
    """``L = n_planes · max_x Σ_{OU o on x} ceil(converted_o / adcs_per_xbar) + K + N``: the analog reads and
    conversions of the busiest crossbar, loading the inputs, emitting the outputs."""
    return _busiest(cfg, mapping) + int(mapping.n_inputs) + int(mapping.n_outputs)


def stream_limit_per_vector(cfg, mapping) -> int:
    """``n_planes · max_x Σ_o ceil(converted_o / adcs_per_xbar)``: the per-vector limit once I/O overlaps."""
    return _busiest(cfg, mapping)


def old_mvm_cycles(cfg, mapping) -> int:
    """The sequential controller this tile replaced (sparsegen ≤ v1 mapping format): ``K + N + n_planes · (1 +
    Σ_o (ou_rows + ou_cols + 6 + 2·converted_o)) + 2N``, for the comparison in ``make bench``."""
    converted = np.asarray(mapping.ou_col_mask).sum(axis=1)
    per_plane = 1 + int(sum(cfg.ou_rows + cfg.ou_cols + 6 + 2 * int(c) for c in converted))
    return int(mapping.n_inputs) + int(mapping.n_outputs) + cfg.n_planes * per_plane + 2 * int(mapping.n_outputs)


def report(cfg, mapping, n_vectors: int = 8) -> dict:
    """The figures ``rram-perf`` prints: model and limit for an isolated MVM and per vector of a stream."""
    mvm, limit = mvm_cycles(cfg, mapping), limit_cycles(cfg, mapping)
    per_vector, stream_limit = stream_cycles_per_vector(cfg, mapping, n_vectors), stream_limit_per_vector(cfg, mapping)
    return {"mvm_cycles": mvm, "limit_cycles": limit, "mvm_ratio": mvm / limit if limit else float("nan"),
            "stream_cycles_per_vector": per_vector, "stream_limit_per_vector": stream_limit,
            "stream_ratio": per_vector / stream_limit if stream_limit else float("nan"), "vectors": n_vectors,
            "lane_cycles": [int(v) for v in lane_cycles(cfg, mapping)], "old_mvm_cycles": old_mvm_cycles(cfg, mapping),
            "n_ous": int(len(mapping.ou_xbar)), "K": int(mapping.n_inputs), "N": int(mapping.n_outputs)}
