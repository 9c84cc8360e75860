"""Tile-mapping format (hw/formats/mapping.py), dense mapping (gen/compiler/rram_map.py) and golden MVM (hw/formats/mvm.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.compiler.rram_map import columns_per_output, map_dense
from hw.formats.mapping import CrossbarGeometry, input_planes
from hw.formats.mvm import lossless_adc_bits, mvm


@st.composite
def problems(draw):
    cell_bits = draw(st.sampled_from([1, 2, 4]))
    xbar_rows = draw(st.integers(2, 40))
    xbar_cols = draw(st.integers(2, 40))
    geometry = CrossbarGeometry(xbar_rows=xbar_rows, xbar_cols=xbar_cols, cell_bits=cell_bits,
                                ou_rows=draw(st.integers(1, xbar_rows)), ou_cols=draw(st.integers(1, xbar_cols)))
    weight_bits = draw(st.integers(2, 8))
    input_bits = draw(st.integers(1, 8))
    input_signed = draw(st.booleans()) if input_bits > 1 else False
    return dict(geometry=geometry, k=draw(st.integers(1, 60)), n=draw(st.integers(1, 12)), weight_bits=weight_bits,
                encoding=draw(st.sampled_from(["differential", "offset"])), input_bits=input_bits,
                input_signed=input_signed, dac_bits=draw(st.sampled_from([1, 2])),
                density=draw(st.sampled_from([0.0, 0.3, 1.0])), seed=draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=150)
@given(p=problems())
def test_dense_mapping_lossless_equals_matmul(p):
    rng = np.random.default_rng(p["seed"])
    wlo, whi = -(1 << (p["weight_bits"] - 1)), (1 << (p["weight_bits"] - 1)) - 1
    w = rng.integers(wlo, whi + 1, size=(p["k"], p["n"])) * (rng.random((p["k"], p["n"])) < p["density"])
    xlo, xhi = ((-(1 << (p["input_bits"] - 1)), (1 << (p["input_bits"] - 1)) - 1) if p["input_signed"]
                else (0, (1 << p["input_bits"]) - 1))
    x = rng.integers(xlo, xhi + 1, size=(3, p["k"]))
    mapping = map_dense(w, p["geometry"], weight_bits=p["weight_bits"], encoding=p["encoding"])
    y = mvm(mapping, x, input_bits=p["input_bits"], input_signed=p["input_signed"], dac_bits=p["dac_bits"])
    np.testing.assert_array_equal(y, x @ w)
    lossless = lossless_adc_bits(p["geometry"].ou_rows, p["geometry"].cell_bits, p["dac_bits"])
    y_adc = mvm(mapping, x, input_bits=p["input_bits"], input_signed=p["input_signed"], dac_bits=p["dac_bits"],
                adc_bits=lossless)
    np.testing.assert_array_equal(y_adc, x @ w)
    # Each row tile repeats the column layout: every output has columns_per_output bitlines per row tile.
    per_output = columns_per_output(weight_bits=p["weight_bits"], cell_bits=p["geometry"].cell_bits,
                                    encoding=p["encoding"])
    row_tiles = -(-p["k"] // p["geometry"].xbar_rows)
    # (per OU row group: the routing repeats on every OU of a column group, so count each bitline once)
    routed = {(int(x), int(c), int(o)) for x, cols, outs, mask in zip(mapping.ou_xbar, mapping.ou_cols_of(),
                                                                      mapping.ou_col_output, mapping.ou_col_mask)
              for c, o, m in zip(cols, outs, mask) if m}
    assert (np.bincount([o for *_, o in routed], minlength=p["n"]).tolist() == [per_output * row_tiles] * p["n"])
    assert mapping.shared_bitlines() == 0


def test_lossy_adc_clips_each_ou_column():
    """A 9-row OU of 2-bit cells sums up to 27 per bit plane: 5 ADC bits are exact, 4 bits clip at 15."""
    geometry = CrossbarGeometry(xbar_rows=18, xbar_cols=16, ou_rows=9, ou_cols=8, cell_bits=2)
    assert lossless_adc_bits(9, 2) == 5 and lossless_adc_bits(128, 2) == 9
    w = np.full((18, 1), 127)                         # every slice level 3 except the top one (level 1)
    x = np.full((1, 18), 127)                         # planes 0..6 all ones
    mapping = map_dense(w, geometry, encoding="differential")
    np.testing.assert_array_equal(mvm(mapping, x, adc_bits=5), x @ w)
    # Independent expectation: each of 2 OUs × 7 planes sees column sums 27 (slices 0-2) and 9 (slice 3);
    # clipped to 15 they contribute 15 instead of 27.
    slice_sum = sum(min(27, 15) << (2 * s) for s in range(3)) + (9 << 6)
    expected = 2 * slice_sum * sum(1 << b for b in range(7))
    assert mvm(mapping, x, adc_bits=4)[0, 0] == expected != (x @ w)[0, 0]


def test_input_planes():
    assert input_planes(8, False, 1) == [(b, 1, False) for b in range(8)]
    assert input_planes(8, True, 1) == [(b, 1, False) for b in range(7)] + [(7, 1, True)]
    assert input_planes(8, True, 2) == [(0, 2, False), (2, 2, False), (4, 2, False), (6, 1, False), (7, 1, True)]
    assert input_planes(5, False, 2) == [(0, 2, False), (2, 2, False), (4, 1, False)]


def test_validate_names_position():
    geometry = CrossbarGeometry(xbar_rows=8, xbar_cols=8, ou_rows=4, ou_cols=4, cell_bits=2)
    mapping = map_dense(np.ones((6, 2), dtype=int), geometry)
    bad_inputs = mapping.ou_inputs.copy()
    bad_inputs[1, 2] = 6
    with pytest.raises(ValueError, match=r"ou_inputs\[1, 2\] = 6 is invalid: allowed -1 … 5"):
        mapping.replace(ou_inputs=bad_inputs).validate()
    bad_levels = mapping.levels.copy()
    bad_levels[0, 3, 1] = 4
    with pytest.raises(ValueError, match=r"levels\[0, 3, 1\] = 4 is invalid: allowed 0 … 3"):
        mapping.replace(levels=bad_levels).validate()
    with pytest.raises(ValueError, match=r"OU 1 repeats"):
        mapping.replace(ou_row_group=np.zeros_like(mapping.ou_row_group),
                        ou_col_group=np.zeros_like(mapping.ou_col_group)).validate()
    with pytest.raises(ValueError, match=r"ou_row_group\[0\] = 2 is invalid: allowed 0 … 1"):
        mapping.replace(ou_row_group=np.full_like(mapping.ou_row_group, 2)).validate()
    with pytest.raises(ValueError, match="does not fit 8-bit two's complement"):
        map_dense(np.array([[200]]), geometry)
    with pytest.raises(ValueError, match="the mapping expects K = 6"):
        mvm(mapping, np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match=r"x\[0, 0\] = 128 is out of range: allowed 8-bit signed"):
        mvm(mapping, np.full((1, 6), 128))
    with pytest.raises(ValueError, match="CrossbarGeometry.cell_bits = 3"):
        CrossbarGeometry(cell_bits=3)


def test_dense_schedule_shape():
    """128×128 crossbars, OU 9×8, 2-bit cells, 8-bit differential: 8 bitlines per output."""
    geometry = CrossbarGeometry()
    w = np.ones((300, 20), dtype=int)
    mapping = map_dense(w, geometry)
    # rows: 3 row tiles (128, 128, 44); columns: 160 bitlines → 2 column tiles (128 + 32)
    assert mapping.n_xbars == 6
    row_groups = [15, 15, 5]                          # ceil(128/9) = 15, ceil(44/9) = 5
    col_groups = [16, 4]
    assert mapping.n_ous == sum(r * c for r in row_groups for c in col_groups)
    assert mapping.adc_conversions(8) == 8 * sum(r * 8 * c for r in row_groups for c in col_groups)
