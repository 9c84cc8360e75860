"""CrossbarMirror on its own: fault maps, vectorized writes, OU reads against the tile's golden column sums."""

import numpy as np
import pytest

from gen.compiler.rram_map import map_dense
from hw.formats.mapping import CrossbarGeometry
from hw.formats.mvm import column_sums, lossless_adc_bits
from sim.rram.xbar import CrossbarMirror
from hw.formats.faults import fault_map


def test_fault_map(seed):
    shape = (3, 64, 48)
    stuck = fault_map(seed, 0.08, 0.04, shape, cell_bits=2)
    assert stuck == fault_map(seed, 0.08, 0.04, shape, cell_bits=2)          # seeded
    assert stuck == sorted(stuck) and len({s[:3] for s in stuck}) == len(stuck)
    levels = np.array([s[3] for s in stuck])
    assert set(levels) <= {0, 3}
    n = np.prod(shape)
    for count, rate in ((np.sum(levels == 0), 0.08), (np.sum(levels == 3), 0.04)):
        sigma = np.sqrt(n * rate * (1 - rate))
        assert abs(count - n * rate) < 6 * sigma, f"{count} stuck cells, expected about {n * rate:.0f}"
    assert fault_map(seed, 0.0, 0.0, shape, cell_bits=4) == []
    assert len(fault_map(seed, 0.5, 0.5, (1, 4, 4), cell_bits=1)) == 16
    with pytest.raises(ValueError, match="sum at most 1"):
        fault_map(seed, 0.7, 0.5, shape, cell_bits=2)
    with pytest.raises(ValueError, match="expected \\(n_xbars, rows, cols\\)"):
        fault_map(seed, 0.1, 0.1, (4, 4), cell_bits=2)


def test_write_many_equals_sequential_writes(seed):
    rng = np.random.default_rng(seed)
    kw = dict(n_xbars=2, xbar_rows=8, xbar_cols=6, cell_bits=2, ou_rows=3, ou_cols=4, dac_bits=1, adc_bits=4,
              pulse_error=30000, stuck=fault_map(seed, 0.1, 0.1, (2, 8, 6), cell_bits=2), seed=int(seed % 1000))
    a, b = CrossbarMirror(**kw), CrossbarMirror(**kw)
    n = 300                                       # many cells written more than once
    x, r, c, lvl = rng.integers(0, 2, n), rng.integers(0, 8, n), rng.integers(0, 6, n), rng.integers(0, 4, n)
    done = a.write_many(x, r, c, lvl)
    seq = [b.write(int(x[i]), int(r[i]), int(c[i]), int(lvl[i])) for i in range(n)]
    assert list(done) == [s is not None for s in seq]
    assert np.array_equal(a.levels, b.levels) and a.writes_missed == b.writes_missed > 0
    for xx, rr, cc, level in kw["stuck"]:
        assert a.levels[xx, rr, cc] == level
    # Misses land exactly one level off target, clamped.
    landed = np.array([s for s in seq if s is not None])
    target = lvl[done]
    assert np.all(np.abs(landed - target) <= 1)


@pytest.mark.parametrize("cell_bits,dac_bits,ou", [(2, 1, (9, 8)), (4, 2, (4, 4)), (1, 1, (5, 3))])
def test_read_ou_matches_tile_golden(cell_bits, dac_bits, ou, seed):
    """Ideal programming then every scheduled OU read: codes equal the tile golden's column sums, clipped."""
    rng = np.random.default_rng(seed)
    g = CrossbarGeometry(xbar_rows=20, xbar_cols=24, cell_bits=cell_bits, ou_rows=ou[0], ou_cols=ou[1])
    mapping = map_dense(rng.integers(-128, 128, size=(30, 5)), g, weight_bits=8)
    lossless = lossless_adc_bits(g.ou_rows, cell_bits, dac_bits)
    for adc_bits in (lossless, lossless - 1):
        mirror = CrossbarMirror.from_geometry(g, n_xbars=mapping.n_xbars, dac_bits=dac_bits, adc_bits=adc_bits)
        mirror.program(mapping.levels)
        assert np.array_equal(mirror.levels, mapping.levels)
        drive = rng.integers(0, 1 << dac_bits, size=(1, mapping.n_inputs))
        want = np.minimum(column_sums(mapping, drive)[0], (1 << adc_bits) - 1)          # (n_ous, ou_cols)
        present = mapping.ou_cols_of() < g.xbar_cols
        for o in range(mapping.n_ous):
            idx = mapping.ou_inputs[o]
            got = mirror.read_ou(int(mapping.ou_xbar[o]), int(mapping.ou_row_group[o]),
                                 int(mapping.ou_col_group[o]), np.where(idx >= 0, drive[0, np.maximum(idx, 0)], 0))
            assert np.array_equal(got, np.where(present[o], want[o], 0)), f"OU {o}"


def test_read_noise_range_and_order(seed):
    kw = dict(n_xbars=1, xbar_rows=4, xbar_cols=8, cell_bits=2, ou_rows=4, ou_cols=8, dac_bits=1, adc_bits=8,
              read_noise=5, seed=int(seed % 1000))
    m = CrossbarMirror(**kw)
    m.program(np.full((1, 4, 8), 3))
    codes = np.array([m.read_ou(0, 0, 0, [1, 1, 1, 1]) for _ in range(400)])      # sums are 12
    noise = codes - 12
    assert noise.min() == -5 and noise.max() == 5
    assert abs(noise.mean()) < 0.5
    # Out-of-range OUs still consume ou_cols draws: the next read equals a reference that read 8 columns' worth.
    a, b = CrossbarMirror(**kw), CrossbarMirror(**kw)
    assert list(a.read_ou(0, 7, 0, [1] * 4)) == [0] * 8
    b.read_ou(0, 0, 0, [1] * 4)
    assert np.array_equal(a.read_ou(0, 0, 0, [1] * 4), b.read_ou(0, 0, 0, [1] * 4))


def test_bad_arguments():
    kw = dict(n_xbars=1, xbar_rows=4, xbar_cols=4, cell_bits=2, ou_rows=2, ou_cols=2, dac_bits=1, adc_bits=3)
    with pytest.raises(ValueError, match="CrossbarMirror.ou_rows = 5 is out of range"):
        CrossbarMirror(**dict(kw, ou_rows=5))
    with pytest.raises(ValueError, match="stuck\\[0\\]"):
        CrossbarMirror(**dict(kw, stuck=[(0, 4, 0, 1)]))
    m = CrossbarMirror(**kw)
    with pytest.raises(ValueError, match="drive must be 2 values"):
        m.read_ou(0, 0, 0, [2, 0])
    with pytest.raises(ValueError, match="write 1 = "):
        m.write_many([0, 0], [0, 9], [0, 0], [1, 1])
