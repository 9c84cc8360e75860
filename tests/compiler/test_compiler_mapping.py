"""Sparse RRAM mapping strategies (gen/compiler/sparse_map.py): exact MVM through hw.formats.mvm, statistics, edges."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.compiler.metrics import mapping_stats
from gen.compiler.prune import as_matrix, prune
from gen.compiler.quantize import quantize_symmetric
from gen.compiler.rram_map import check_routing, columns_per_output, map_dense
from gen.compiler.sparse_map import STRATEGIES, dense_stats, map_layer, parse_strategy, plan_layer, shared_slot_starts
from hw.formats.mapping import CrossbarGeometry, input_planes
from hw.formats.mvm import lossless_adc_bits, mvm
from sim.common.strategies import crossbar_geometries

SPARSE = ("ou-sparse", "kernel-reorder", "bit-squeeze")
# every strategy and every composition of the sparse ones
ALL = ["dense"] + ["+".join(c) for r in (1, 2, 3) for c in itertools.combinations(SPARSE, r)]
PRUNINGS = [("none", {}), ("magnitude", {"ratio": 0.5}), ("magnitude", {"ratio": 0.9}), ("nm", {"keep": 2, "block": 4}),
            ("nm", {"keep": 1, "block": 3}), ("pattern", {"k": 4, "P": 3}), ("pattern", {"k": 2, "P": 8, "connectivity": 0.3}),
            ("ou", {"ratio": 0.5, "ou_rows": 3, "outputs_per_group": 2}), ("sense", {})]


@st.composite
def layers(draw):
    geometry = draw(crossbar_geometries())
    conv = draw(st.booleans())
    n = draw(st.integers(1, 12))
    shape = (n, draw(st.integers(1, 6)), 3, 3) if conv else (n, draw(st.integers(1, 60)))
    input_bits = draw(st.integers(1, 8))
    return dict(geometry=geometry, shape=shape, weight_bits=draw(st.integers(2, 8)),
                pruning=draw(st.sampled_from(PRUNINGS)), input_bits=input_bits,
                input_signed=draw(st.booleans()) if input_bits > 1 else False, dac_bits=draw(st.sampled_from([1, 2])),
                zero_outputs=draw(st.integers(0, 2)), seed=draw(st.integers(0, 2**32 - 1)))


def quantized_matrix(p, rng):
    w = rng.laplace(size=p["shape"]) * rng.lognormal(0, 0.5, size=(p["shape"][0],) + (1,) * (len(p["shape"]) - 1))
    w[rng.integers(0, p["shape"][0], size=p["zero_outputs"])] = 0            # all-zero output channels
    name, params = p["pruning"]
    mask, _ = prune(w, name, params)
    q, _ = quantize_symmetric(np.where(mask, w, 0), bits=p["weight_bits"])
    return as_matrix(q).astype(np.int64)


def random_inputs(p, rng, k, batch=3):
    bits = p["input_bits"]
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if p["input_signed"] else (0, (1 << bits) - 1)
    return rng.integers(lo, hi + 1, size=(batch, k))


def test_every_strategy_computes_x_times_w_exactly():
    """Ideal tile (lossless ADC) == x @ Wq for every strategy and composition, with shared slots and with one column
    group per slot; planner statistics == built mapping. Shared slots must actually put two outputs on one
    bitline in some of the generated layers (counted here), or the property would not cover them."""
    seen = {"examples": 0, "shared": 0}
    check_every_strategy(seen)
    print(f"layers with a bitline serving two outputs: {seen['shared']} of {seen['examples']}")
    assert seen["shared"] >= 10, seen


@settings(max_examples=200)
@given(p=layers())
def check_every_strategy(seen, p):
    rng = np.random.default_rng(p["seed"])
    w = quantized_matrix(p, rng)
    x = random_inputs(p, rng, w.shape[0])
    planes = len(input_planes(p["input_bits"], p["input_signed"], p["dac_bits"]))
    g = p["geometry"]
    kw = dict(input_bits=p["input_bits"], input_signed=p["input_signed"], dac_bits=p["dac_bits"])
    stats, single = {}, {}
    cache = {}
    shared = False
    for strategy in ALL:
        plan = plan_layer(w, g, strategy=strategy, weight_bits=p["weight_bits"], cache=cache)
        mapping = plan.mapping()
        y = mvm(mapping, x, **kw)
        assert y.shape == (3, w.shape[1])
        np.testing.assert_array_equal(y, x @ w, err_msg=strategy)
        np.testing.assert_array_equal(mvm(mapping, x, adc_bits=lossless_adc_bits(g.ou_rows, g.cell_bits, p["dac_bits"]),
                                          **kw), x @ w, err_msg=strategy)
        measured = mapping_stats(mapping)
        conv, k, n = measured.pop("conv_max_per_xbar"), measured.pop("k"), measured.pop("n")
        assert {k: plan.stats[k] for k in measured} == measured, strategy
        assert (k, n) == w.shape
        # the tile's conversion cycles: one per OU unless a group sends two outputs to one accumulator bank
        assert conv >= measured["ous_max_per_xbar"] and (conv == measured["ous_max_per_xbar"] or strategy != "dense")
        assert mapping.adc_conversions(planes) == int(mapping.ou_col_mask.sum()) * planes == plan.stats["adc_per_plane"] * planes
        # fill: every converted cell is a mapped one; without bit-squeeze's masks, every mapped cell is converted
        mapped = plan.stats["mapped_cells"]
        assert measured["cells_used"] <= mapped <= mapping.n_xbars * g.xbar_rows * g.xbar_cols
        assert mapped == measured["cells_used"] or "bit-squeeze" in strategy
        sharing = mapping.shared_bitlines()
        assert not sharing or plan.stats["slots"] == "shared", strategy
        shared |= sharing > 0
        stats[strategy] = measured
        if strategy in ("ou-sparse", "kernel-reorder+bit-squeeze"):
            # one column group per slot (the packing before v2): exact too, never fewer crossbars, never sharing
            plan1 = plan_layer(w, g, strategy=strategy, weight_bits=p["weight_bits"], slots="single", cache=cache)
            mapping1 = plan1.mapping()
            np.testing.assert_array_equal(mvm(mapping1, x, **kw), x @ w, err_msg=strategy)
            assert mapping1.shared_bitlines() == 0 and plan1.stats["slots"] == "single"
            assert rank(plan.stats) <= rank(plan1.stats), strategy
            single[strategy] = mapping_stats(mapping1)
    seen["examples"] += 1
    seen["shared"] += shared
    # output reordering is invisible: every output's non-zero weights are somewhere in the column table
    for strategy in ALL:
        assert stats[strategy]["nonzero_cells"] == stats["dense"]["nonzero_cells"], strategy
    for key in ("ous", "adc_per_plane", "cells_used"):
        assert single["ou-sparse"][key] <= stats["dense"][key], key
    assert rank(stats["kernel-reorder"]) <= rank(stats["ou-sparse"])
    assert rank(stats["bit-squeeze"]) <= rank(stats["ou-sparse"])
    assert stats["bit-squeeze"]["adc_per_plane"] <= stats["ou-sparse"]["adc_per_plane"] or \
        stats["bit-squeeze"]["crossbars"] < stats["ou-sparse"]["crossbars"]
    assert rank(stats["kernel-reorder+bit-squeeze"]) <= rank(stats["bit-squeeze"])
    # dense closed form == map_dense; every cell of the weight image is mapped and converted
    per_output = columns_per_output(weight_bits=p["weight_bits"], cell_bits=g.cell_bits, encoding="differential")
    closed = dense_stats(*w.shape, g, per_output=per_output, nonzero_cells=stats["dense"]["nonzero_cells"])
    assert closed.pop("mapped_cells") == stats["dense"]["cells_used"] == w.size * per_output
    assert closed == stats["dense"]


def rank(s):
    """What the planner minimizes: crossbars, then ADC conversions, then OUs."""
    return (s["crossbars"], s["adc_per_plane"], s["ous"])


@settings(max_examples=60)
@given(p=layers(), error=st.integers(1, 4))
def test_bit_sparse_rounding_is_bounded_and_exact(p, error):
    rng = np.random.default_rng(p["seed"])
    w = quantized_matrix(p, rng)
    x = random_inputs(p, rng, w.shape[0])
    for strategy in ("bit-squeeze", "kernel-reorder+bit-squeeze"):
        plan = plan_layer(w, p["geometry"], strategy=strategy, weight_bits=p["weight_bits"], round_error=error)
        wr = plan.weights
        assert np.abs(wr - w).max(initial=0) <= error
        assert ((wr == 0) | (w != 0)).all()                       # pruned zeros stay zero
        assert (np.sign(wr) * np.sign(w) >= 0).all()             # no sign flips
        report = plan.info["rounding"]
        assert report["changed"] == int((wr != w).sum()) and report["max_abs_error"] <= error
        assert report["nonzero_slices_after"] <= report["nonzero_slices_before"]
        y = mvm(plan.mapping(), x, input_bits=p["input_bits"], input_signed=p["input_signed"], dac_bits=p["dac_bits"])
        np.testing.assert_array_equal(y, x @ wr)


@pytest.mark.parametrize("strategy", ALL)
@pytest.mark.parametrize("shape", [(0, 5), (7, 0), (0, 0)])
def test_empty_layers(strategy, shape):
    mapping = map_layer(np.zeros(shape, dtype=int), CrossbarGeometry(xbar_rows=16, xbar_cols=16, ou_rows=4, ou_cols=4),
                        strategy=strategy)
    assert mapping.n_xbars == 0 and mapping.n_ous == 0
    y = mvm(mapping, np.zeros((2, shape[0]), dtype=int))
    np.testing.assert_array_equal(y, np.zeros((2, shape[1]), dtype=np.int64))


@pytest.mark.parametrize("strategy", ALL)
def test_all_zero_weights_take_no_crossbar(strategy, seed):
    mapping = map_layer(np.zeros((30, 5), dtype=int), CrossbarGeometry(xbar_rows=16, xbar_cols=16, ou_rows=4, ou_cols=4),
                        strategy=strategy)
    assert (mapping.n_xbars == 0) == (strategy != "dense")
    x = np.random.default_rng(seed).integers(-128, 128, size=(2, 30))
    np.testing.assert_array_equal(mvm(mapping, x), np.zeros((2, 5), dtype=np.int64))


@pytest.mark.parametrize("strategy", ALL)
def test_multi_crossbar_layer_with_partial_ous(strategy, seed):
    """K = 100 rows on 32-row crossbars with 7-row OUs (neither divides), 20 outputs × 8 bitlines on 24 columns."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(100, 20)) * (rng.random((100, 20)) < 0.6)
    w[:, 3] = 0
    g = CrossbarGeometry(xbar_rows=32, xbar_cols=24, ou_rows=7, ou_cols=6, cell_bits=2)
    mapping = map_layer(w, g, strategy=strategy)
    assert mapping.n_xbars > 1
    x = rng.integers(-128, 128, size=(4, 100))
    np.testing.assert_array_equal(mvm(mapping, x), x @ w)
    # compacted strategies use whole OU column positions only: 24 // 6 = 4 per crossbar
    if strategy != "dense":
        assert mapping.ou_col_group.max() < 4
    if "bit-squeeze" in strategy:                                # an all-zero output is never converted
        assert not (mapping.ou_col_mask & (mapping.ou_col_output == 3)).any()


def test_kernel_reorder_groups_outputs_with_equal_zero_rows():
    """Outputs 0, 2, 4, 6 share one zero pattern and 1, 3, 5, 7 another: with 2 outputs per column group (ou_cols 8,
    4 bitlines per output at 4-bit cells), reordering pairs equal patterns and halves the stored rows."""
    k = 18
    a, b = np.zeros(k, dtype=int), np.zeros(k, dtype=int)
    a[:9], b[9:] = 5, -7
    w = np.stack([a if n % 2 == 0 else b for n in range(8)], axis=1) * np.arange(1, 9)
    g = CrossbarGeometry(xbar_rows=64, xbar_cols=64, ou_rows=9, ou_cols=8, cell_bits=4)
    plain, reordered = plan_layer(w, g, strategy="ou-sparse"), plan_layer(w, g, strategy="kernel-reorder")
    assert plain.stats["drives_per_plane"] == 4 * 18 and reordered.stats["drives_per_plane"] == 4 * 9
    assert sorted(reordered.info["output_order"]) == list(range(8))
    x = np.random.default_rng(1).integers(-128, 128, size=(2, k))
    np.testing.assert_array_equal(mvm(reordered.mapping(), x), x @ w)


def test_bit_squeeze_masks_zero_slices():
    """Weights below 4 use only slice 0 of 2-bit cells: only those bitlines are converted."""
    w = np.array([[1, -2], [3, 0], [-1, 2]])
    g = CrossbarGeometry(xbar_rows=8, xbar_cols=8, ou_rows=4, ou_cols=8, cell_bits=2)
    squeezed, plain = plan_layer(w, g, strategy="bit-squeeze"), plan_layer(w, g, strategy="ou-sparse")
    assert plain.stats["adc_per_plane"] == 8 * 2                          # 2 outputs × 8 bitlines, one OU each
    assert squeezed.stats["adc_per_plane"] == 4                           # slice-0 +/− of both outputs
    np.testing.assert_array_equal(mvm(squeezed.mapping(), np.array([[1, 2, 3]])), np.array([[1, 2, 3]]) @ w)


def test_strategy_errors():
    g = CrossbarGeometry(xbar_rows=8, xbar_cols=8, ou_rows=4, ou_cols=4)
    w = np.ones((4, 2), dtype=int)
    with pytest.raises(ValueError, match=r"mapping strategy 'foo' \(in 'ou-sparse\+foo'\) is not known: allowed dense, "):
        parse_strategy("ou-sparse+foo")
    with pytest.raises(ValueError, match="dense does not compose"):
        parse_strategy("dense+bit-squeeze")
    with pytest.raises(ValueError, match="needs encoding 'differential', not 'offset'"):
        map_layer(w, g, strategy="ou-sparse", encoding="offset")
    with pytest.raises(ValueError, match="round_error = 2 needs the bit-squeeze strategy"):
        map_layer(w, g, strategy="ou-sparse", round_error=2)
    with pytest.raises(ValueError, match=r"weight W\[0, 0\] = 9 does not fit 4-bit"):
        map_layer(np.full((2, 2), 9), g, strategy="bit-squeeze", weight_bits=4)
    with pytest.raises(ValueError, match="weights must be integers"):
        map_layer(np.ones((2, 2)), g, strategy="ou-sparse")
    assert parse_strategy("bit-squeeze+kernel-reorder") == {"kernel-reorder", "bit-squeeze"}
    assert set(STRATEGIES) == {"dense", "bit-slice", *SPARSE}


def test_dense_offset_encoding_still_maps():
    w = np.array([[3, -4], [0, 7]])
    plan = plan_layer(w, CrossbarGeometry(xbar_rows=8, xbar_cols=16, ou_rows=2, ou_cols=4), strategy="dense",
                      encoding="offset")
    assert mapping_stats(plan.mapping())["nonzero_cells"] == plan.stats["nonzero_cells"]
    np.testing.assert_array_equal(mvm(plan.mapping(), np.array([[5, -6]])), np.array([[5, -6]]) @ w)


def test_map_dense_unchanged(seed):
    """map_layer('dense') is map_dense, cell for cell."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(40, 9))
    g = CrossbarGeometry(xbar_rows=16, xbar_cols=24, ou_rows=5, ou_cols=6)
    a, b = map_layer(w, g, strategy="dense"), map_dense(w, g)
    for name in ("levels", "ou_inputs", "ou_col_mask", "ou_col_output", "ou_col_shift", "ou_col_sign"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


# ---- shared slots (mapping format v2's per-OU routing) --------------------------------------------------------

def reference_starts(rows, xbar_rows, ou_rows):
    """Shared-slot packing written out row group by row group: the capacities of one slot's row groups repeat,
    and a group takes whole row groups from the first free one until its rows fit."""
    caps = [min(ou_rows, xbar_rows - r) for r in range(0, xbar_rows, ou_rows)]
    starts, index = [], 0
    for count in rows:
        slot, rg = divmod(index, len(caps))
        starts.append(slot * xbar_rows + rg * ou_rows)
        while count > 0:
            count -= caps[index % len(caps)]
            index += 1
    return starts


@settings(max_examples=100)
@given(rows=st.lists(st.integers(0, 60), max_size=12), xbar_rows=st.integers(1, 40), data=st.data())
def test_shared_slot_starts_match_the_row_group_walk(rows, xbar_rows, data):
    ou_rows = data.draw(st.integers(1, xbar_rows))
    assert shared_slot_starts(rows, xbar_rows=xbar_rows, ou_rows=ou_rows).tolist() == \
        reference_starts(rows, xbar_rows, ou_rows)


def test_shared_slots_fill_the_remainder_of_a_slot(seed):
    """8 outputs, each 6 non-zero rows of its own, 4-bit cells (4 bitlines per int8 output): a column group (OU
    8 wide) is 2 outputs with 12 compacted rows. One group per slot leaves 4 of a slot's 16 wordlines empty; shared,
    the next group starts on the next OU row group (wordline 12), so 4 groups take 3 slots instead of 4, and the
    bitlines of slot 0 serve the outputs of group 0 in row groups 0-2 and those of group 1 in row group 3."""
    rng = np.random.default_rng(seed)
    k, n = 48, 8
    w = np.zeros((k, n), dtype=np.int64)
    for j in range(n):
        w[6 * j:6 * j + 6, j] = rng.integers(1, 128, size=6) * rng.choice([-1, 1], size=6)
    g = CrossbarGeometry(xbar_rows=16, xbar_cols=8, ou_rows=4, ou_cols=8, cell_bits=4)
    single = plan_layer(w, g, strategy="ou-sparse", slots="single")
    shared = plan_layer(w, g, strategy="ou-sparse")
    assert (single.stats["crossbars"], shared.stats["crossbars"]) == (4, 3)
    assert single.stats["mapped_cells"] == shared.stats["mapped_cells"] == 4 * 12 * 8
    m = shared.mapping()
    x = rng.integers(-128, 128, size=(3, k))
    np.testing.assert_array_equal(mvm(m, x), x @ w)
    np.testing.assert_array_equal(mvm(single.mapping(), x), x @ w)
    assert m.shared_bitlines() > 0 and single.mapping().shared_bitlines() == 0
    on_xbar0 = m.ou_xbar == 0
    # slot 0 (crossbar 0): group 0 = outputs 0, 1 in row groups 0, 1, 2; group 1 = outputs 2, 3 from row group 3 on
    outputs = {int(rg): sorted(set(m.ou_col_output[o].tolist())) for o, rg in
               zip(np.flatnonzero(on_xbar0), m.ou_row_group[on_xbar0])}
    assert outputs == {0: [0, 1], 1: [0, 1], 2: [0, 1], 3: [2, 3]}
    rows = map_report_rows(w, g)
    assert rows["single"]["fill"] == pytest.approx(384 / (4 * 16 * 8))
    assert rows["shared"]["fill"] == pytest.approx(384 / (3 * 16 * 8))


def map_report_rows(w, g):
    """The compiler's report rows of one fc layer ``w`` with one and with shared slots."""
    from gen.compiler.networks import Layer
    from gen.compiler.report import map_strategies

    layer = Layer("fc", "fc", w.shape[0], w.shape[1])
    return {slots: map_strategies(layer, w.T, g, strategies=["ou-sparse"], weight_bits=8, slots=slots)["ou-sparse"]
            for slots in ("single", "shared")}


def test_table_writer_rejects_routing_the_tile_would_reject():
    """The compiler's check before any table is written: a routing entry out of range (the tile's BAD_ROUTE) is a
    one-line ValueError naming the entry, never a table."""
    w = np.array([[3, -4], [0, 7], [5, 1]])
    g = CrossbarGeometry(xbar_rows=8, xbar_cols=16, ou_rows=2, ou_cols=8)
    m = map_layer(w, g, strategy="ou-sparse")
    assert check_routing(m, weight_bits=8) is m
    out = m.ou_col_output.copy()
    out[0, 0] = 2                                                  # an output >= N
    with pytest.raises(ValueError, match=r"^TileMapping.ou_col_output\[0, 0\] = 2 is invalid: allowed -1 … 1 "
                                         r"\(outputs\)$"):
        check_routing(m.replace(ou_col_output=out), weight_bits=8)
    shift = m.ou_col_shift.copy()
    shift[0, 1] = 8                                                # a slice shift >= weight_bits
    with pytest.raises(ValueError, match=r"^TileMapping.ou_col_shift\[0, 1\] = 8 is invalid: allowed 0 … 7 "
                                         r"\(weight_bits - 1; the tile rejects it with BAD_ROUTE\)$"):
        check_routing(m.replace(ou_col_shift=shift), weight_bits=8)
    sign = m.ou_col_sign.copy()
    sign[0, 2] = 0
    with pytest.raises(ValueError, match=r"^TileMapping.ou_col_sign\[0, 2\] = 0 is invalid: allowed -1 or \+1$"):
        check_routing(m.replace(ou_col_sign=sign), weight_bits=8)


def test_mapping_file_loader_rejects_bad_routing(tmp_path, seed):
    """A shared-slot mapping round-trips through the mapping file (sim.rram.tables save/load); a file whose routing
    sends a column to an output >= N, or a converted column to -1, is rejected in one line."""
    from sim.rram.tables import load_mapping, save_mapping

    rng = np.random.default_rng(seed)
    w = np.zeros((48, 8), dtype=np.int64)
    for j in range(8):
        w[6 * j:6 * j + 6, j] = rng.integers(1, 128, size=6)
    g = CrossbarGeometry(xbar_rows=16, xbar_cols=8, ou_rows=4, ou_cols=8, cell_bits=4)
    m = map_layer(w, g, strategy="ou-sparse")
    assert m.shared_bitlines() > 0
    save_mapping(tmp_path / "good.npz", m)
    loaded = load_mapping(tmp_path / "good.npz")
    for name in ("levels", "ou_inputs", "ou_col_mask", "ou_col_output", "ou_col_shift", "ou_col_sign"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(m, name))
    for value, message in ((8, r"^TileMapping.ou_col_output\[1, 3\] = 8 is invalid: allowed -1 … 7 \(outputs\)$"),
                           (-1, r"^TileMapping.ou_col_mask\[1, 3\] = True converts a column whose ou_col_output is "
                                r"-1 \(unused\)$")):
        out = m.ou_col_output.copy()
        out[1, 3] = value
        save_mapping(tmp_path / "bad.npz", m.replace(ou_col_output=out))
        with pytest.raises(ValueError, match=message) as error:
            load_mapping(tmp_path / "bad.npz")
        assert "\n" not in str(error.value)
