"""cocotb tests of a generated RramTile (run by tests/rram/test_rram_tile_cocotb.py).

Settings (:func:`sim.common.tbenv.settings`): the tile's config and the stimulus seed; the knob ``error_codes``
names a JSON file that :func:`bad_input_rejected` writes the error codes the tile's STATUS showed into.
"""

import json
import random

import cocotb
import numpy as np

from gen.compiler.rram_map import map_dense
from gen.rram.config import RramTileConfig
from hw.rram import beats
from sim.common.stream import random_pauses
from sim.common.tbenv import knob, settings
from sim.common.testbench import SOAK_GAP, SOAK_STALL, write_soak_report
from sim.rram.driver import cell_room
from gen.rram import perf
from sim.rram.tables import OU_FIELDS, footprint, load_mapping, random_mapping, tables_of
from hw.formats.mvm import mvm as ideal_mvm
from sim.rram.tb import RramTileTB


async def _start(dut, *, gap, stall):
    s = settings(RramTileConfig)
    tb = RramTileTB(dut, s.config, seed=s.seed, gap=gap, stall=stall)
    await tb.start()
    return tb, s.config, s.rng


def _problem(cfg, rng, *, k=None, n=None, density=0.7):
    """Random W (zeros included, extremes likely) fitting the tile, its dense mapping, and the image to program."""
    k = k or int(rng.integers(1, cfg.input_capacity + 1))
    n = n or int(rng.integers(1, cfg.output_capacity + 1))
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    w = rng.integers(lo, hi + 1, size=(k, n)) * (rng.random((k, n)) < density)
    w[rng.random((k, n)) < 0.05] = lo
    mapping = map_dense(w, cfg.geometry, weight_bits=cfg.weight_bits, encoding=cfg.encoding)
    while mapping.n_xbars > cfg.n_xbars or mapping.n_ous > cfg.ou_table_depth:   # too big: fewer outputs
        w = w[:, :max(1, w.shape[1] // 2)] if w.shape[1] > 1 else w[:max(1, w.shape[0] // 2)]
        mapping = map_dense(w, cfg.geometry, weight_bits=cfg.weight_bits, encoding=cfg.encoding)
    return w, mapping


def _inputs(cfg, rng, m, k):
    lo, hi = ((-(1 << (cfg.input_bits - 1)), (1 << (cfg.input_bits - 1)) - 1) if cfg.input_signed
              else (0, (1 << cfg.input_bits) - 1))
    x = rng.integers(lo, hi + 1, size=(m, k))
    x[0] = hi                                         # every wordline driven at full scale: worst clipping
    if m > 1:
        x[1] = lo
    return x


def _ideal(cfg):
    return cfg.pulse_error == 0 and cfg.read_noise == 0 and not cfg.stuck_cells()


@cocotb.test()
async def program_verify_and_mvm(dut):
    """Write-verify the whole image (fault log exact), load the dense tables, MVMs bit-exact with the golden model."""
    tb, cfg, rng = await _start(dut, gap=0.2, stall=0.3)
    w, mapping = _problem(cfg, rng)
    await tb.program(mapping.levels)
    await tb.idle()
    faults = await tb.pop_faults()
    if cfg.pulse_error == 0:
        # Only stuck cells fail, and exactly those whose stuck level differs from their target.
        stuck = {(x, r, c): lvl for x, r, c, lvl in cfg.stuck_cells() if x < mapping.n_xbars}
        failing = sorted(cell for cell, lvl in stuck.items() if lvl != mapping.levels[cell])
        assert tb.golden.counters["fault_count"] == len(failing)
        assert faults == failing[:cfg.fault_depth], f"fault log {faults}, stuck cells off target {failing}"
    assert await tb.load_tables(tables_of(cfg, mapping)) == 0
    x = _inputs(cfg, rng, 3, mapping.n_inputs)
    ys = [await tb.mvm(v) for v in x]
    regs = await tb.check_registers()
    assert regs["MVMS"] == len(x)
    if _ideal(cfg):
        y_ref = ideal_mvm(mapping, x, input_bits=cfg.input_bits, input_signed=cfg.input_signed,
                          dac_bits=cfg.dac_bits, adc_bits=cfg.adc_bits)
        np.testing.assert_array_equal(np.array(ys), y_ref)
        if not cfg.adc_clips:
            np.testing.assert_array_equal(np.array(ys), x @ w)


@cocotb.test()
async def sparse_schedule_skips_empty_ous(dut):
    """Dense mapping with every all-zero OU dropped: same results, fewer activations, counters exact."""
    tb, cfg, rng = await _start(dut, gap=0.3, stall=0.4)
    w, mapping = _problem(cfg, rng, density=0.15)
    rows, cols = mapping.ou_rows_of(), mapping.ou_cols_of()
    g = cfg.geometry
    keep = []
    for o in range(mapping.n_ous):
        r = rows[o][rows[o] < g.xbar_rows]
        c = cols[o][(cols[o] < g.xbar_cols) & mapping.ou_col_mask[o]]
        keep.append(bool(mapping.levels[mapping.ou_xbar[o]][np.ix_(r, c)].any()))
    keep = np.array(keep, dtype=bool)
    keep[int(rng.integers(mapping.n_ous))] = True          # at least one OU
    sparse = mapping.replace(**{name: getattr(mapping, name)[keep] for name in OU_FIELDS
                                if name != "ou_col_negative"},
                             ou_col_sign=mapping.ou_col_sign[keep]).validate()
    await tb.program(sparse.levels, footprint(sparse))     # only the cells the schedule reads
    assert await tb.load_tables(tables_of(cfg, sparse)) == 0
    x = _inputs(cfg, rng, 2, sparse.n_inputs)
    ys = [await tb.mvm(v) for v in x]
    before = await tb.check_registers()
    planes = cfg.n_planes
    dense_ous = cfg.n_xbars * cfg.row_groups * cfg.col_groups
    assert before["OU_ACTIVATIONS"] == sparse.n_ous * planes * len(x)
    assert before["SKIPPED_OUS"] == (dense_ous - sparse.n_ous) * planes * len(x)
    assert before["ADC_CONVERSIONS"] == sparse.adc_conversions(planes) * len(x)
    if _ideal(cfg):
        np.testing.assert_array_equal(np.array(ys), ideal_mvm(mapping, x, input_bits=cfg.input_bits,
                                                              input_signed=cfg.input_signed, dac_bits=cfg.dac_bits,
                                                              adc_bits=cfg.adc_bits))


@cocotb.test()
async def bad_input_rejected(dut):
    """Bad cells, tables and vectors: each is answered with its documented error code in STATUS (read from the
    tile after each one), nothing is loaded and no partial output leaves; every error code the config can produce
    is produced (all of them when a program beat can address a cell outside the tile)."""
    tb, cfg, rng = await _start(dut, gap=0.2, stall=0.2)
    E = beats.ERROR_CODES
    wid = beats.widths(cfg)

    async def answered(name):
        """The golden model's error is ``name``, and so is the tile's (check_registers compares STATUS)."""
        assert tb.golden.error == E[name], f"the golden model says error {tb.golden.error}, expected {name}"
        await tb.check_registers()

    # Two outputs: the mapping leaves unused bitlines, and a smaller N (1) can leave stale columns.
    w, mapping = _problem(cfg, rng, n=2, density=0.5)
    assert mapping.n_outputs == 2, f"{cfg.top}: two outputs do not fit (the test needs a smaller K range)"
    # The cells are non-volatile: they keep the previous test's levels through reset, so program what is read.
    await tb.program(mapping.levels, footprint(mapping))
    good = tables_of(cfg, mapping)
    x = _inputs(cfg, rng, 1, mapping.n_inputs)[0]

    assert await tb.mvm(x) is None                                 # no tables yet
    await answered("NO_TABLES")
    if cell_room(cfg):
        # the first address beyond the tile along every field that has room
        xbar, row, col = (n if n & (n - 1) else 0 for n in (cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols))
        await tb.program_cell(xbar, row, col, 1)
        await answered("BAD_CELL")

    def bad(**changes):
        t = tables_of(cfg, mapping)
        for name, (index, value) in changes.items():
            getattr(t, name)[index] = value
        return t

    def beyond(limit, bits):
        """``limit`` (one past the largest valid index) when the signed field can carry it, else -2."""
        return limit if limit < 1 << (bits - 1) else -2

    short = tables_of(cfg, mapping).select(slice(0, -1))          # END before the HEADER's OU count
    big = tables_of(cfg, mapping)
    big.n_inputs = cfg.input_capacity + 1
    assert big.n_inputs < 1 << wid.n_inputs, f"{cfg.top}: the HEADER's K field cannot exceed the capacity"
    empty = tables_of(cfg, mapping)
    empty.n_inputs = 0
    converted = np.argwhere(good.ou_col_mask)[0]                   # a converted column of the schedule
    spare = np.argwhere(~good.ou_col_mask & (mapping.ou_cols_of() < cfg.xbar_cols))
    crowded = tables_of(cfg, mapping)                              # every entry on crossbar 0
    crowded.ou_xbar[:] = 0
    cases = [
        ("BAD_OU", bad(ou_inputs=((0, 0), beyond(mapping.n_inputs, wid.input_index)))),     # input index = K
        ("BAD_OU", bad(ou_row_group=(-1, cfg.row_groups))) if (1 << wid.row_group) > cfg.row_groups
        else ("BAD_OU", bad(ou_xbar=(0, cfg.n_xbars))) if (1 << wid.xbar) > cfg.n_xbars
        else ("BAD_OU", bad(ou_inputs=((-1, 0), -2))),
        # routing: a column sent to output N, an output below -1, a shift beyond the weight
        ("BAD_ROUTE", bad(ou_col_output=(tuple(converted), beyond(mapping.n_outputs, wid.output_index)))),
        ("BAD_ROUTE", bad(ou_col_output=(tuple(converted), -2))),
        ("BAD_ROUTE", bad(ou_col_shift=(tuple(converted), cfg.weight_bits))) if (1 << wid.shift) > cfg.weight_bits
        else ("BAD_ROUTE", bad(ou_col_output=((0, 0), -3))),
        # a converted column routed to no output
        ("UNUSED_COLUMN", bad(ou_col_output=(tuple(converted), -1))),
        ("BAD_SEQUENCE", short),
        ("BAD_HEADER", big),                                       # K beyond the capacity
        ("BAD_HEADER", empty),                                     # K = 0
    ]
    if len(spare):                                                 # mask bit on a column routed to -1
        cases.append(("UNUSED_COLUMN", bad(ou_col_mask=(tuple(spare[0]), True))))
    if mapping.n_ous > cfg.lane_depth:                             # one crossbar's queue overflows
        cases.append(("BAD_OU", crowded))
    for name, tables in cases:
        assert await tb.load_tables(tables) == E[name], name
        await answered(name)
        assert await tb.mvm(x) is None                             # tables invalid: no output
        await answered("NO_TABLES")
    assert await tb.load_tables(good) == 0
    await answered("OK")
    assert await tb.mvm(x[:-1] if len(x) > 1 else np.concatenate([x, x])) is None    # wrong length
    await answered("BAD_VECTOR")
    await tb.reserved_table_beat()                                 # kind 2: rejected, the tables stay valid
    await answered("BAD_SEQUENCE")
    assert await tb.mvm(x) is not None                             # still valid: a good vector runs
    await tb.check_registers()
    regs = await tb.check_registers()
    assert regs["ERRORS"] == tb.golden.counters["errors"] == 2 * len(cases) + 3 + cell_room(cfg)
    expected = {code for name, code in E.items() if name != "BAD_CELL" or cell_room(cfg)}
    assert tb.codes_seen == expected, f"error codes seen {sorted(tb.codes_seen)}, expected {sorted(expected)}"
    path = knob("error_codes", "")
    if path:
        with open(path, "w") as f:
            json.dump(sorted(tb.codes_seen), f)


@cocotb.test()
async def routed_stream_cycles_match_model(dut):
    """A random mapping-format-v2 schedule (bitlines shared by several outputs, OUs routed to several outputs):
    with an ideal host, an isolated MVM and 8 vectors back to back take exactly the cycle model's cycles; then
    the same schedule with random gaps and backpressure; every output against the golden, counters exact."""
    tb, cfg, rng = await _start(dut, gap=0.0, stall=0.0)
    k, n = min(cfg.input_capacity, 12), min(cfg.output_capacity, 5)
    mapping = random_mapping(cfg, rng, n_inputs=k, n_outputs=n, ou_fraction=0.3)
    await tb.program(mapping.levels, footprint(mapping))
    await tb.idle()
    await tb.pop_faults()
    assert await tb.load_tables(tables_of(cfg, mapping)) == 0
    await tb.idle()
    src, sink = tb.sources["inputs"], tb.sinks["outputs"]
    for vectors in (1, 8):
        first, done = len(src.handshake_cycles), len(sink.handshake_cycles)
        for v in _inputs(cfg, rng, vectors, k):
            await tb.mvm(v)
        await tb.idle()
        got = sink.handshake_cycles[done + n - 1::n]
        starts = src.handshake_cycles[first::k]
        sched = perf.stream_schedule(cfg, mapping, vectors)
        expected = [(a - sched[0][0] + starts[0], b - sched[0][0] + starts[0]) for a, b in sched]
        assert list(zip(starts, got)) == expected, f"{vectors} vectors: (first input, last output) {list(zip(starts, got))}, model {expected}"
        if vectors == 1:
            assert got[0] - starts[0] + 1 == perf.mvm_cycles(cfg, mapping)
    regs = await tb.check_registers()
    assert regs["MVMS"] == 9
    # the same stream with random input gaps and output backpressure
    sink.set_pause_generator(random_pauses(random.Random(int(rng.integers(2**31))), 0.3))
    src.set_pause_generator(random_pauses(random.Random(int(rng.integers(2**31))), 0.3))
    for v in _inputs(cfg, rng, 4, k):
        await tb.mvm(v)
    await tb.check_registers()


@cocotb.test(skip=not knob("bench_mapping", ""))
async def bench_cycles(dut):
    """``make bench`` section ``rram_perf``: the mapping in the ``bench_mapping`` file from an ideal host, one isolated
    MVM and then ``bench_vectors`` vectors back to back; every output against the golden; the measured cycles
    (first input beat to last output beat, both included) go to the ``bench`` JSON file."""
    tb, cfg, rng = await _start(dut, gap=0.0, stall=0.0)
    mapping = load_mapping(knob("bench_mapping", ""))
    vectors = int(knob("bench_vectors", 8))
    await tb.program(mapping.levels, footprint(mapping))
    assert await tb.load_tables(tables_of(cfg, mapping)) == 0
    await tb.idle()
    src, sink = tb.sources["inputs"], tb.sinks["outputs"]
    measured = {}
    for label, count in (("mvm_cycles", 1), ("stream_cycles", vectors)):
        first = len(src.handshake_cycles)
        for v in _inputs(cfg, rng, count, mapping.n_inputs):
            await tb.mvm(v)
        await tb.idle()
        measured[label] = sink.handshake_cycles[-1] - src.handshake_cycles[first] + 1
    regs = await tb.check_registers()
    measured |= {"vectors": vectors, "STALLS": regs["STALLS"], "OU_ACTIVATIONS": regs["OU_ACTIVATIONS"]}
    with open(knob("bench", ""), "w") as f:
        json.dump(measured, f)


@cocotb.test(skip=not knob("soak_beats", 0))
async def soak(dut):
    """Soak (``make bench``, section ``soak``): write-verify a small layer (fault log popped and exact), load its
    tables, then input vectors with random gaps on every input stream and backpressure on the outputs until at
    least ``soak_beats`` beats have crossed the ports; every output word against the tile golden model (faults,
    pulse errors and read noise included), every register exact at the end. The beat counts go to the
    ``soak_report`` file."""
    tb, cfg, rng = await _start(dut, gap=SOAK_GAP, stall=SOAK_STALL)
    target = knob("soak_beats", 0)
    # a small layer: the tile is sequential, so few OUs per vector keep the cycles per beat low
    w, mapping = _problem(cfg, rng, k=min(8, cfg.input_capacity), n=min(2, cfg.output_capacity))
    await tb.program(mapping.levels, footprint(mapping))
    await tb.idle()
    await tb.pop_faults()
    assert await tb.load_tables(tables_of(cfg, mapping)) == 0
    queued = sum(src.queued for src in tb.sources.values()) + len(tb.sinks["faults"])
    while queued < target:
        for x in _inputs(cfg, rng, 64, mapping.n_inputs):
            await tb.mvm(x)
        queued += 64 * (mapping.n_inputs + mapping.n_outputs)
    await tb.check_registers()
    report = write_soak_report(tb, knob("soak_report", ""))
    assert report["beats"] >= target and report["lost"] == report["duplicated"] == report["unsent"] == 0, report
