"""Float physics model (gen/rram/analog.py): exact reduction to the integer golden MVM, device-effect statistics,
write-verify, faults, IR drop and parameter validation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen.compiler.rram_map import map_dense
from hw.formats.mapping import CrossbarGeometry
from gen.rram.analog import PhysicsParams, analog_mvm, ir_segments, physics_mvm, program
from gen.rram.sweep import mapping_for, rel_rms_error, workload
from hw.formats.mvm import column_sums, lossless_adc_bits, mvm
from sim.common.strategies import crossbar_geometries


@st.composite
def problems(draw):
    geometry = draw(crossbar_geometries())
    cell_bits = geometry.cell_bits
    input_bits = draw(st.integers(1, 8))
    dac_bits = draw(st.sampled_from([1, 2, 3]))
    lossless = lossless_adc_bits(geometry.ou_rows, cell_bits, dac_bits)
    return dict(geometry=geometry, k=draw(st.integers(1, 60)), n=draw(st.integers(1, 10)),
                weight_bits=draw(st.integers(2, 8)), encoding=draw(st.sampled_from(["differential", "offset"])),
                input_bits=input_bits, input_signed=draw(st.booleans()) if input_bits > 1 else False,
                dac_bits=dac_bits, adc_bits=draw(st.sampled_from([None, lossless, max(1, lossless - 1),
                                                                  max(1, lossless - 3), lossless + 2])),
                density=draw(st.sampled_from([0.0, 0.3, 1.0])), seed=draw(st.integers(0, 2**32 - 1)),
                params=PhysicsParams.ideal(g_max_us=draw(st.floats(1.0, 200.0)), on_off=draw(st.floats(1.5, 1e4)),
                                           v_step=draw(st.floats(0.01, 1.0)), write_verify=draw(st.booleans())))


def _random_problem(p):
    rng = np.random.default_rng(p["seed"])
    wlo, whi = -(1 << (p["weight_bits"] - 1)), (1 << (p["weight_bits"] - 1)) - 1
    w = rng.integers(wlo, whi + 1, size=(p["k"], p["n"])) * (rng.random((p["k"], p["n"])) < p["density"])
    xlo, xhi = ((-(1 << (p["input_bits"] - 1)), (1 << (p["input_bits"] - 1)) - 1) if p["input_signed"]
                else (0, (1 << p["input_bits"]) - 1))
    x = rng.integers(xlo, xhi + 1, size=(3, p["k"]))
    return w, x, map_dense(w, p["geometry"], weight_bits=p["weight_bits"], encoding=p["encoding"])


@settings(max_examples=120)
@given(p=problems())
def test_ideal_physics_equals_integer_golden(p):
    """No noise, no faults, no IR drop, Gmin subtracted: bit-identical to hw.formats.mvm.mvm, lossless or lossy ADC,
    for any Gmax, on/off ratio and DAC voltage step."""
    w, x, mapping = _random_problem(p)
    run = dict(input_bits=p["input_bits"], input_signed=p["input_signed"], dac_bits=p["dac_bits"],
               adc_bits=p["adc_bits"])
    y = physics_mvm(mapping, x, p["params"], seed=p["seed"], **run)
    golden = mvm(mapping, x, **run)
    assert y.dtype == np.int64 and y.shape == golden.shape == (3, p["n"])
    np.testing.assert_array_equal(y, golden)
    np.testing.assert_array_equal(physics_mvm(mapping, x[0], p["params"], seed=p["seed"], **run), golden[0])


def test_cross_check_adc_bits(seed):
    """9-row OUs, 2-bit cells, int8 × int8, noise off: a 5-bit ADC is exact, a 4-bit ADC equals the golden's clipping
    (small error on random data), and clips for certain where a column sum exceeds 15 (counted independently from
    the golden column sums)."""
    w, x = workload(seed, 512)                    # 4-bit clipping is rare here: a few column sums per 64 vectors
    mapping = mapping_for(w, 9)
    assert lossless_adc_bits(9, 2) == 5
    y5 = physics_mvm(mapping, x, PhysicsParams.ideal(), seed=seed, adc_bits=5)
    y4 = physics_mvm(mapping, x, PhysicsParams.ideal(), seed=seed, adc_bits=4)
    np.testing.assert_array_equal(y5, x @ w)
    np.testing.assert_array_equal(y4, mvm(mapping, x, adc_bits=4))
    assert rel_rms_error(y4, x @ w) < 0.02
    # certain clipping: nine weights of 127 (three 2-bit slices at level 3) under a vector of -1s (every bit plane
    # drives every row): those slices' column sums are 9 · 3 = 27 > 15
    w_hot = np.vstack([np.full((9, 1), 127), w[9:, :1]])
    x_hot = np.vstack([x[:3], np.full((1, x.shape[1]), -1, dtype=x.dtype)])
    hot = mapping_for(w_hot, 9)
    raw = x_hot[-1:] & 0xFF
    assert sum(int((column_sums(hot, (raw >> b) & 1) > 15).sum()) for b in range(8)) > 0
    y4_hot = physics_mvm(hot, x_hot, PhysicsParams.ideal(), seed=seed, adc_bits=4)
    np.testing.assert_array_equal(y4_hot, mvm(hot, x_hot, adc_bits=4))
    np.testing.assert_array_equal(physics_mvm(hot, x_hot, PhysicsParams.ideal(), seed=seed, adc_bits=5), x_hot @ w_hot)
    assert y4_hot[-1, 0] != (x_hot @ w_hot)[-1, 0]


def test_differential_pairs_cancel_gmin_without_reference():
    """Without the Gmin reference every driven row adds Gmin/ΔG levels to both columns of a differential pair, so
    with an unbounded ADC and Gmin/ΔG an integer (on/off 4, 2-bit cells: Gmin = ΔG) the result is still exact;
    the offset encoding's reference column (sign −1, one column per four slices) does not cancel it."""
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, size=(40, 5))
    x = rng.integers(-128, 128, size=(4, 40))
    geometry = CrossbarGeometry(xbar_rows=32, xbar_cols=32, ou_rows=8, ou_cols=8, cell_bits=2)
    params = PhysicsParams.ideal(on_off=4.0, subtract_gmin=False)
    diff = map_dense(w, geometry, encoding="differential")
    np.testing.assert_array_equal(physics_mvm(diff, x, params), x @ w)
    offset = map_dense(w, geometry, encoding="offset")
    # slices at shifts 0, 2, 4, 6 (+1 each) and the reference at shift 6 (−1): each input adds 1 + 4 + 16 = 21·x.
    expected = x @ w + 21 * x.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(physics_mvm(offset, x, params), expected)


def _sweep_error(seed, params, ou_rows=32, adc_bits=None, vectors=16):
    w, x = workload(seed, vectors)
    return rel_rms_error(physics_mvm(mapping_for(w, ou_rows), x, params, seed=seed, adc_bits=adc_bits), x @ w)


def test_error_grows_with_programming_sigma(seed):
    errors = [_sweep_error(seed, PhysicsParams(prog_sigma=s, read_sigma=0.0)) for s in (0.0, 0.01, 0.03, 0.1)]
    assert errors[0] == 0
    # seeded statistical property: measured ratios are > 15× and > 2× over many seeds
    assert errors[1] < errors[2] / 4 and errors[2] < errors[3] / 1.5


def test_error_grows_with_read_noise(seed):
    errors = [_sweep_error(seed, PhysicsParams(prog_sigma=0.0, read_sigma=s)) for s in (0.0, 0.01, 0.1)]
    assert errors[0] == 0 and errors[1] < errors[2] / 5


def test_write_verify_reduces_error(seed):
    off = _sweep_error(seed, PhysicsParams(prog_sigma=0.03))
    on = _sweep_error(seed, PhysicsParams(prog_sigma=0.03, write_verify=True))
    assert on < off / 5


def test_programming_statistics(seed):
    """Without write-verify the programmed error is N(0, σ_p · range); with it every working cell ends inside the
    band unless it used up all its draws, and the fraction outside is about (1 − q)^max_iters."""
    w, _ = workload(seed, 1)
    mapping = mapping_for(w, 9)
    cells = mapping.levels.size
    params = PhysicsParams(prog_sigma=0.05)
    tile = program(mapping, params, seed)
    span = params.g_max_us - params.g_min_us
    error = tile.g_us - params.target_us(mapping.levels, 2)
    assert abs(error.std() / (0.05 * span) - 1) < 5 * math.sqrt(0.5 / cells) + 0.01
    assert abs(error.mean()) < 5 * 0.05 * span / math.sqrt(cells)
    assert (tile.draws == 1).all() and (tile.stuck == 0).all()

    verified = program(mapping, params.replace(write_verify=True, verify_tolerance=0.02, verify_max_iters=6), seed)
    inside = verified.within_tolerance()
    assert (inside | (verified.draws == 6)).all()
    assert ((verified.draws >= 1) & (verified.draws <= 6)).all()
    q = math.erf(0.02 / 0.05 / math.sqrt(2))
    p_out = (1 - q) ** 6
    outside = int((~inside).sum())
    assert abs(outside - p_out * cells) < 5 * math.sqrt(p_out * cells) + 1
    assert (np.abs(verified.g_us - params.target_us(mapping.levels, 2))[inside] <= 0.02 * span).all()


def test_prog_poly_sigma():
    """aihwkit's form: σ_p = max(0, Σ c_i (G/Gmax)^i) µS."""
    params = PhysicsParams(prog_sigma=0.0, prog_poly=(0.1, 0.2, -0.5))
    g = np.array([1.0, 5.0, 10.0])
    u = g / 10.0
    np.testing.assert_allclose(params.prog_sigma_us(g), np.maximum(0, 0.1 + 0.2 * u - 0.5 * u**2))
    assert params.prog_sigma_us(np.array([10.0]))[0] == 0.0
    # measured: cells at level 3 (G = Gmax) are exact, cells at level 0 (G = 1 µS) spread by σ = 0.115 µS
    geometry = CrossbarGeometry(xbar_rows=64, xbar_cols=64, ou_rows=8, ou_cols=8, cell_bits=2)
    w = np.where(np.arange(64)[:, None] % 2 == 0, 3, 0) * np.ones((64, 32), dtype=int)
    mapping = map_dense(w, geometry, weight_bits=3)
    tile = program(mapping, params, 3)
    target = params.target_us(mapping.levels, 2)
    top, bottom = mapping.levels == 3, mapping.levels == 0
    assert (tile.g_us[top] == target[top]).all()
    assert abs((tile.g_us[bottom] - target[bottom]).std() / (0.1 + 0.02 - 0.005) - 1) < 0.05


def test_stuck_at_faults(seed):
    w, x = workload(seed, 8)
    mapping = mapping_for(w, 9)
    clean = program(mapping, PhysicsParams.ideal(), seed)
    assert (clean.stuck == 0).all()
    np.testing.assert_array_equal(analog_mvm(clean, x, adc_bits=5), x @ w)

    params = PhysicsParams.ideal(sa0_rate=0.03, sa1_rate=0.01)
    tile = program(mapping, params, seed)
    cells = mapping.levels.size
    for code, rate, conductance in ((1, 0.03, params.g_min_us), (2, 0.01, params.g_max_us)):
        count = int((tile.stuck == code).sum())
        assert abs(count - rate * cells) < 5 * math.sqrt(rate * cells)
        assert (tile.g_us[tile.stuck == code] == conductance).all()
        assert (tile.draws[tile.stuck == code] == 0).all()
    # The faulty tile computes exactly the integer model of its faulty levels.
    faulty = np.where(tile.stuck == 1, 0, np.where(tile.stuck == 2, 3, mapping.levels)).astype(np.uint8)
    np.testing.assert_array_equal(analog_mvm(tile, x, adc_bits=5), mvm(mapping.replace(levels=faulty), x, adc_bits=5))
    # Every cell stuck at Gmax: the tile computes with all levels at the maximum.
    all_on = program(mapping, PhysicsParams.ideal(sa1_rate=1.0), seed)
    np.testing.assert_array_equal(analog_mvm(all_on, x), mvm(mapping.replace(levels=np.full_like(mapping.levels, 3)), x))
    # The fault map of a seed does not depend on the noise settings.
    noisy = program(mapping, params.replace(prog_sigma=0.05, write_verify=True), seed)
    np.testing.assert_array_equal(noisy.stuck, tile.stuck)


def test_ir_drop():
    assert ir_segments(4, 3).tolist() == [[5, 6, 7], [4, 5, 6], [3, 4, 5], [2, 3, 4]]
    rng = np.random.default_rng(11)
    w = rng.integers(-128, 128, size=(128, 16))
    x = rng.integers(-128, 128, size=(8, 128))
    mapping = mapping_for(w, 128)
    off = program(mapping, PhysicsParams.ideal(), 0)
    assert off.read_conductance() is off.g_us                    # IR drop off is the identity
    np.testing.assert_array_equal(analog_mvm(off, x), x @ w)
    on = program(mapping, PhysicsParams.ideal(wire_r_ohm=50.0), 0)
    np.testing.assert_array_equal(on.g_us, off.g_us)
    g = on.read_conductance()
    # cell (0, 127): 128 wordline + 128 bitline segments of 50 Ω in series with the cell
    assert g[0, 0, 127] == pytest.approx(on.g_us[0, 0, 127] / (1 + on.g_us[0, 0, 127] * 50e-6 * 256), rel=1e-12)
    assert (g < on.g_us).all()
    errors = [rel_rms_error(analog_mvm(program(mapping, PhysicsParams.ideal(wire_r_ohm=r), 0), x), x @ w)
              for r in (10.0, 100.0, 1000.0)]
    assert 0 < errors[0] < errors[1] < errors[2]


def test_seeds_reproduce():
    w, x = workload(5, 4)
    mapping = mapping_for(w, 16)
    params = PhysicsParams(sa0_rate=0.01)
    a = physics_mvm(mapping, x, params, seed=9)
    np.testing.assert_array_equal(a, physics_mvm(mapping, x, params, seed=9))
    assert not np.array_equal(a, physics_mvm(mapping, x, params, seed=10))
    tile = program(mapping, params.replace(prog_sigma=0.0, read_sigma=0.1), 1)
    reads = [analog_mvm(tile, x, seed=s) for s in (1, 2)]
    assert not np.array_equal(*reads)                              # read noise is fresh for every read


@pytest.mark.parametrize("changes, error, message", [
    ({"on_off": 1.0}, ValueError, r"PhysicsParams.on_off = 1.0 is out of range: allowed \(1 … 1000000.0\]"),
    ({"g_max_us": -2}, ValueError, r"PhysicsParams.g_max_us = -2 is out of range: allowed \(0 … 1000\]"),
    ({"prog_sigma": 1.5}, ValueError, r"PhysicsParams.prog_sigma = 1.5 is out of range: allowed \[0 … 1\]"),
    ({"read_sigma": float("nan")}, ValueError, r"PhysicsParams.read_sigma = nan is not finite"),
    ({"read_sigma": "1%"}, TypeError, r"PhysicsParams.read_sigma = '1%' is a str, not a number"),
    ({"verify_max_iters": 0}, ValueError, r"PhysicsParams.verify_max_iters = 0 is out of range: allowed \[1 … 1000\]"),
    ({"verify_max_iters": 2.0}, TypeError, r"PhysicsParams.verify_max_iters = 2.0 is a float, not an integer"),
    ({"verify_tolerance": 0}, ValueError, r"PhysicsParams.verify_tolerance = 0.0 is out of range: allowed \(0 … 1\]"),
    ({"sa0_rate": 0.7, "sa1_rate": 0.6}, ValueError, r"PhysicsParams.sa0_rate \+ sa1_rate = 1.29\d* is out of range"),
    ({"wire_r_ohm": -1}, ValueError, r"PhysicsParams.wire_r_ohm = -1 is out of range"),
    ({"write_verify": 1}, TypeError, r"PhysicsParams.write_verify = 1 is a int, not a bool: allowed True or False"),
    ({"prog_poly": [0.1]}, TypeError, r"PhysicsParams.prog_poly = \[0.1\] is a list, not a tuple"),
    ({"prog_poly": (0.0,) * 9}, ValueError, r"PhysicsParams.prog_poly = \(0.0, .* has 9 coefficients: allowed a tuple"),
    ({"prog_poly": (0.1,)}, ValueError,
     r"PhysicsParams.prog_sigma = 0.03 is set with prog_poly = \(0.1,\): allowed one of the two"),
    ({"prog_sigma": 0, "prog_poly": (0.1, 2e3)}, ValueError, r"PhysicsParams.prog_poly\[1\] = 2000.0 is out of range"),
])
def test_params_validation(changes, error, message):
    with pytest.raises(error, match=message):
        PhysicsParams(**changes)


def test_params_store_numpy_scalars_as_python_values():
    params = PhysicsParams(g_max_us=np.float32(20.0), verify_max_iters=np.int64(5), write_verify=np.bool_(True),
                           prog_sigma=0, prog_poly=(np.float64(0.5),))
    assert (type(params.g_max_us), type(params.verify_max_iters), type(params.write_verify)) == (float, int, bool)
    assert params == PhysicsParams(g_max_us=20.0, verify_max_iters=5, write_verify=True, prog_sigma=0, prog_poly=(0.5,))


def test_mvm_input_validation():
    mapping = mapping_for(np.ones((10, 2), dtype=int), 9)
    tile = program(mapping, PhysicsParams.ideal(), 0)
    with pytest.raises(ValueError, match="the mapping expects"):
        analog_mvm(tile, np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match=r"x\[0, 3\] = -129 does not fit 8-bit signed inputs"):
        analog_mvm(tile, np.array([[0, 0, 0, -129] + [0] * 6]))
    with pytest.raises(ValueError, match="adc_bits = 0 is out of range"):
        analog_mvm(tile, np.zeros(10, dtype=int), adc_bits=0)
    with pytest.raises(ValueError, match="x must be integers"):
        analog_mvm(tile, np.zeros(10))
