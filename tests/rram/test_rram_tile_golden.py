"""Tile golden model (sim/rram/golden.py) and host driver (sim/rram/driver.py): ideal = x @ W, lossy = the
integer golden MVM, write-verify fault logs, table checks, beat round trips."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gen.compiler.rram_map import map_dense
from gen.rram.config import RramTileConfig
from hw.rram import beats
from sim.rram import driver
from sim.rram.tables import random_mapping, tables_of
from hw.formats.mapping import TileMapping, accumulator_banks
from hw.formats.mvm import mvm as golden_mvm
from hw.formats.mvm import mvm
from sim.rram.golden import TileGolden


@st.composite
def tiles(draw):
    cell_bits = draw(st.sampled_from([1, 2, 4]))
    rows, cols = draw(st.integers(4, 24)), draw(st.integers(4, 24))
    signed = draw(st.booleans())
    cfg = RramTileConfig(xbar_rows=rows, xbar_cols=cols, n_xbars=draw(st.integers(1, 3)), cell_bits=cell_bits,
                         ou_rows=draw(st.integers(1, rows)), ou_cols=draw(st.integers(1, cols)),
                         adc_bits=draw(st.integers(1, 9)), dac_bits=draw(st.sampled_from([1, 2])),
                         weight_bits=draw(st.integers(2, 8)), input_bits=draw(st.integers(2, 8)), input_signed=signed,
                         encoding=draw(st.sampled_from(["differential", "offset"])))
    assume(cfg.columns_per_output <= cfg.n_xbars * cfg.xbar_cols)     # one output fits
    return cfg, draw(st.integers(0, 2**32 - 1))


def _fitting_problem(cfg, rng):
    for attempt in range(21):
        k, n = (int(rng.integers(1, cfg.input_capacity + 1)), int(rng.integers(1, cfg.output_capacity + 1))) \
            if attempt < 20 else (1, 1)
        lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
        w = rng.integers(lo, hi + 1, size=(k, n)) * (rng.random((k, n)) < 0.7)
        mapping = map_dense(w, cfg.geometry, weight_bits=cfg.weight_bits, encoding=cfg.encoding)
        if mapping.n_xbars <= cfg.n_xbars:
            return w, mapping
    raise AssertionError(f"not even a 1×1 problem fits {cfg}")


def _inputs(cfg, rng, m, k):
    lo, hi = ((-(1 << (cfg.input_bits - 1)), (1 << (cfg.input_bits - 1)) - 1) if cfg.input_signed
              else (0, (1 << cfg.input_bits) - 1))
    return rng.integers(lo, hi + 1, size=(m, k))


@settings(max_examples=60)
@given(problem=tiles())
def test_ideal_tile_equals_matmul_and_integer_golden(problem):
    """With no faults, pulse errors or noise the tile golden is hw.formats.mvm.mvm (ADC clip included), and with a
    lossless ADC exactly x @ W."""
    cfg, seed = problem
    rng = np.random.default_rng(seed)
    w, mapping = _fitting_problem(cfg, rng)
    tile = TileGolden(cfg)
    tile.program(mapping.levels)
    assert tile.fault_log == [] and tile.counters["verify_iters"] == mapping.levels.size
    assert tile.load_tables(tables_of(cfg, mapping)) == 0
    x = _inputs(cfg, rng, 3, mapping.n_inputs)
    y = np.array([tile.mvm(v) for v in x])
    expected = golden_mvm(mapping, x, input_bits=cfg.input_bits, input_signed=cfg.input_signed,
                          dac_bits=cfg.dac_bits, adc_bits=cfg.adc_bits)
    wrap = 1 << cfg.acc_bits
    np.testing.assert_array_equal(y, (expected + wrap // 2) % wrap - wrap // 2)
    if not cfg.adc_clips:
        np.testing.assert_array_equal(y, x @ w)
    assert tile.counters["ou_activations"] == mapping.ou_activations(cfg.n_planes) * len(x)
    assert tile.counters["adc_conversions"] == mapping.adc_conversions(cfg.n_planes) * len(x)


def test_fault_log_is_exactly_the_stuck_cells_off_target(seed):
    """pulse_error = 0: a stuck cell fails write-verify iff its stuck level differs from its target."""
    cfg = RramTileConfig(xbar_rows=16, xbar_cols=16, n_xbars=2, cell_bits=2, ou_rows=4, ou_cols=4, adc_bits=4,
                         stuck_sa0=0.05, stuck_sa1=0.05, fault_seed=seed % 1000, fault_depth=8, max_iters=3)
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 4, size=(2, 16, 16))
    tile = TileGolden(cfg)
    tile.program(levels)
    failing = [(x, r, c) for x, r, c, lvl in cfg.stuck_cells() if lvl != levels[x, r, c]]
    assert tile.counters["fault_count"] == len(failing)
    assert tile.fault_log == failing[:8]
    assert tile.counters["fault_dropped"] == max(0, len(failing) - 8)
    assert tile.fault_overflow == (len(failing) > 8)
    # Each failing cell was written max_iters times, every other cell once.
    assert tile.counters["verify_iters"] == levels.size + (cfg.max_iters - 1) * len(failing)


def test_pulse_errors_are_retried():
    """With pulse errors, cells that miss are rewritten: more write iterations than cells, the image still lands."""
    cfg = RramTileConfig(xbar_rows=16, xbar_cols=16, cell_bits=2, ou_rows=4, ou_cols=4, adc_bits=4,
                         pulse_error=20000, max_iters=20)
    levels = np.random.default_rng(3).integers(0, 4, size=(1, 16, 16))
    tile = TileGolden(cfg)
    tile.program(levels)
    assert tile.counters["verify_iters"] > levels.size
    np.testing.assert_array_equal(tile.mirror.levels, levels)


def _tables(cfg):
    w = np.arange(-6, 6).reshape(4, 3)
    mapping = map_dense(w, cfg.geometry, weight_bits=cfg.weight_bits, encoding=cfg.encoding)
    return mapping, tables_of(cfg, mapping)


@pytest.mark.parametrize("change,error", [
    (lambda t: t.ou_inputs.__setitem__((0, 0), t.n_inputs), "BAD_OU"),
    (lambda t: t.ou_row_group.__setitem__(0, 99), "BAD_OU"),
    (lambda t: t.ou_col_output.__setitem__((0, 0), t.n_outputs), "BAD_ROUTE"),
    (lambda t: t.ou_col_output.__setitem__((0, 1), -2), "BAD_ROUTE"),
    (lambda t: t.ou_col_shift.__setitem__((0, 0), 8), "BAD_ROUTE"),
    (lambda t: (t.ou_col_mask.__setitem__((0, 0), True), t.ou_col_output.__setitem__((0, 0), -1)), "UNUSED_COLUMN"),
    (lambda t: setattr(t, "n_ous", t.n_ous + 1), "BAD_SEQUENCE"),
    (lambda t: setattr(t, "n_inputs", 0), "BAD_HEADER"),
])
def test_bad_tables_are_rejected(change, error):
    cfg = RramTileConfig(xbar_rows=16, xbar_cols=16, n_xbars=2, ou_rows=4, ou_cols=4, adc_bits=4)
    mapping, tables = _tables(cfg)
    change(tables)
    tile = TileGolden(cfg)
    assert tile.load_tables(tables) == beats.ERROR_CODES[error]
    assert not tile.tables_valid and tile.counters["errors"] == 1
    assert tile.mvm(np.zeros(mapping.n_inputs, dtype=int)) is None
    assert tile.error == beats.ERROR_CODES["NO_TABLES"]


def test_beats_round_trip(seed):
    """Table and program beats put every field at the offset the layout gives (decoded bit by bit here)."""
    cfg = RramTileConfig(xbar_rows=20, xbar_cols=24, n_xbars=3, ou_rows=5, ou_cols=6, adc_bits=4)
    rng = np.random.default_rng(seed)
    p = beats.params_of(cfg)
    layout = dict(beats.ou_entry_layout(p))
    n = 7
    fields = {"xbar": rng.integers(0, 3, n), "row_group": rng.integers(0, 4, n), "col_group": rng.integers(0, 4, n),
              "inputs": rng.integers(-1, cfg.input_capacity, (n, 5)), "mask": rng.integers(0, 64, n)}
    words = beats.table_beats(p, beats.TABLE_OU, fields)
    body = dict(beats.table_layout(p))["body"].offset
    w = beats.widths(p)
    for b, word in enumerate(words):
        assert word & 3 == beats.TABLE_OU
        entry = word >> body
        for name in ("xbar", "row_group", "col_group", "mask"):
            f = layout[name]
            assert (entry >> f.offset) & ((1 << f.shape.width) - 1) == fields[name][b]
        for r in range(5):
            raw = (entry >> (layout["inputs"].offset + r * w.input_index)) & ((1 << w.input_index) - 1)
            value = raw - (1 << w.input_index) if raw >> (w.input_index - 1) else raw
            assert value == fields["inputs"][b, r]
    levels = rng.integers(0, 4, size=(2, 20, 24))
    got = beats.unpack_beats(beats.program_layout(p), driver.program_beats(cfg, levels))
    assert len(got["level"]) == levels.size
    np.testing.assert_array_equal(got["level"], levels.ravel())
    np.testing.assert_array_equal(got["xbar"] * 480 + got["row"] * 24 + got["col"], np.arange(levels.size))


def test_driver_rejects_mappings_that_do_not_fit():
    cfg = RramTileConfig(xbar_rows=16, xbar_cols=16, n_xbars=2, ou_rows=4, ou_cols=4, adc_bits=4, max_outputs=1)
    mapping, _ = _tables(RramTileConfig(xbar_rows=16, xbar_cols=16, n_xbars=2, ou_rows=4, ou_cols=4, adc_bits=4))
    with pytest.raises(ValueError, match="n_outputs = 3 exceeds the tile's capacity: allowed at most 1"):
        tables_of(cfg, mapping)
    other = RramTileConfig(xbar_rows=16, xbar_cols=16, n_xbars=2, ou_rows=4, ou_cols=8, adc_bits=4)
    with pytest.raises(ValueError, match="geometry"):
        tables_of(other, mapping)


def test_a_crossbar_queue_holds_its_ous():
    """More OU entries for one crossbar than its queue holds (row_groups·col_groups = 4 here) is BAD_OU."""
    cfg = RramTileConfig(xbar_rows=8, xbar_cols=8, n_xbars=2, ou_rows=4, ou_cols=4, adc_bits=4, weight_bits=2,
                         cell_bits=2, max_outputs=4)
    mapping = map_dense(np.ones((16, 4), dtype=int), cfg.geometry, weight_bits=2)
    tables = tables_of(cfg, mapping)
    assert cfg.lane_depth == 4 and tables.entries() == 8
    tile = TileGolden(cfg)
    assert tile.load_tables(tables) == 0
    tables.ou_xbar[:] = 0
    assert tile.load_tables(tables) == beats.ERROR_CODES["BAD_OU"]
    assert tile.counters["errors"] == 1


def test_routing_is_per_ou():
    """Mapping format v2: two OUs of one bitline group, in different row groups, route the same bitlines to
    different outputs; the tile golden and the format's mvm agree, and equal the matrix product."""
    cfg = RramTileConfig(xbar_rows=16, xbar_cols=16, n_xbars=1, ou_rows=4, ou_cols=4, adc_bits=4, weight_bits=2,
                         cell_bits=2, input_bits=4, max_outputs=4)
    g = cfg.geometry
    levels = np.zeros((1, 16, 16), dtype=np.uint8)
    rng = np.random.default_rng(5)
    levels[0, :8, :4] = rng.integers(0, 4, size=(8, 4))
    # OU 0: rows 0-3 × bitlines 0-3 → output 0 (G+ on 0, 2; G- on 1, 3); OU 1: rows 4-7, same bitlines → output 1
    mapping = TileMapping(geometry=g, n_inputs=8, n_outputs=2, levels=levels, ou_xbar=np.array([0, 0], np.int32),
                          ou_row_group=np.array([0, 1], np.int32), ou_col_group=np.array([0, 0], np.int32),
                          ou_inputs=np.array([[0, 1, 2, 3], [4, 5, 6, 7]], np.int32),
                          ou_col_mask=np.ones((2, 4), bool),
                          ou_col_output=np.array([[0, 0, 0, 0], [1, 1, 1, 1]], np.int32),
                          ou_col_shift=np.array([[0, 0, 1, 1], [0, 0, 1, 1]], np.uint8),
                          ou_col_sign=np.array([[1, -1, 1, -1], [1, -1, 1, -1]], np.int8)).validate()
    assert mapping.shared_bitlines() == 4
    lv = levels[0].astype(np.int64)
    w = np.zeros((8, 2), dtype=np.int64)
    w[:4, 0] = (lv[:4, 0] - lv[:4, 1]) + 2 * (lv[:4, 2] - lv[:4, 3])
    w[4:8, 1] = (lv[4:8, 0] - lv[4:8, 1]) + 2 * (lv[4:8, 2] - lv[4:8, 3])
    x = rng.integers(-8, 8, size=8)
    tile = TileGolden(cfg)
    tile.program(levels)
    assert tile.load_tables(tables_of(cfg, mapping)) == 0
    np.testing.assert_array_equal(tile.mvm(x), x @ w)
    np.testing.assert_array_equal(mvm(mapping, x, input_bits=4), x @ w)


def test_conversion_cycles_count_outputs_per_adc_group():
    """An OU's conversion cycles: its converted columns in groups of adcs, each group as many cycles as the most
    distinct outputs it sends to one accumulator bank (banks: the least power of two >= adcs)."""
    cc = TileGolden.conversion_cycles
    assert accumulator_banks(8) == 8 and accumulator_banks(3) == 4 and accumulator_banks(1) == 1
    assert cc([1] * 8, [3] * 8, 8) == 1 and cc([1] * 8, [3] * 8, 1) == 8 and cc([1] * 8, [3] * 8, 3) == 3
    assert cc([1] * 8, list(range(8)), 8) == 1                      # 8 outputs, 8 banks: no stall
    assert cc([1] * 8, [0, 0, 0, 1, 1, 2, 2, 2], 8) == 1
    assert cc([1] * 8, [0, 8, 0, 8, 1, 1, 1, 1], 8) == 2            # outputs 0 and 8 share bank 0
    assert cc([1] * 8, [0, 4, 0, 4, 1, 5, 2, 2], 3) == 2 + 2 + 1   # groups (0,4,0) (4,1,5) (2,2), 4 banks
    assert cc([0] * 8, [-1] * 8, 4) == 1 and cc([1, 0, 1, 0], [5, -1, 6, -1], 4) == 1


def _implied_weights(mapping):
    """W[K, N] a v2 mapping computes with a lossless ADC: per converted OU column and driven wordline,
    ``W[input, route.output] += sign · 2**shift · level`` (independent of the golden's loop order)."""
    g = mapping.geometry
    w = np.zeros((mapping.n_inputs, mapping.n_outputs), dtype=np.int64)
    rows, cols = mapping.ou_rows_of(), mapping.ou_cols_of()
    for o in range(mapping.n_ous):
        for r in np.flatnonzero(mapping.ou_inputs[o] >= 0):
            for c in np.flatnonzero(mapping.ou_col_mask[o]):
                level = int(mapping.levels[mapping.ou_xbar[o], rows[o, r], cols[o, c]])
                w[mapping.ou_inputs[o, r], mapping.ou_col_output[o, c]] += \
                    int(mapping.ou_col_sign[o, c]) * (level << int(mapping.ou_col_shift[o, c]))
    return w


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_xbars=st.integers(1, 3), ou=st.sampled_from([(3, 2), (4, 4), (2, 5)]),
       k=st.integers(1, 10), n=st.integers(1, 6), dac_bits=st.sampled_from([1, 2]))
def test_v2_routing_property(seed, n_xbars, ou, k, n, dac_bits):
    """Random v2 schedules (bitlines shared by several outputs, OUs routed to several outputs, repeated inputs):
    the format's mvm with a lossless ADC and the tile golden both equal x @ W for the W the routing implies."""
    cfg = RramTileConfig(xbar_rows=8, xbar_cols=10, n_xbars=n_xbars, ou_rows=ou[0], ou_cols=ou[1], cell_bits=2,
                         weight_bits=4, input_bits=5, dac_bits=dac_bits, max_inputs=10, max_outputs=6,
                         adc_bits=RramTileConfig(ou_rows=ou[0], cell_bits=2, dac_bits=dac_bits).lossless_adc_bits)
    rng = np.random.default_rng(seed)
    mapping = random_mapping(cfg, rng, n_inputs=k, n_outputs=n, ou_fraction=0.7)
    w = _implied_weights(mapping)
    x = rng.integers(-16, 16, size=(3, k))
    np.testing.assert_array_equal(mvm(mapping, x, input_bits=5, dac_bits=dac_bits, adc_bits=cfg.adc_bits), x @ w)
    tile = TileGolden(cfg)
    tile.program(mapping.levels)
    assert tile.load_tables(tables_of(cfg, mapping)) == 0
    np.testing.assert_array_equal(np.array([tile.mvm(v) for v in x]), x @ w)
