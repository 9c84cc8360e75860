"""Beat packing (hw/bits.py, hw/systolic/beats.py) against the bit formulas written in README "Beat formats"."""

import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gen import SystolicConfig
from hw import bits
from hw.systolic import beats
from sim.systolic import golden


def field(word, offset, width, signed):
    """Bits [offset, offset+width) of ``word``, sign-extended when ``signed``: the README's definition."""
    value = (word >> offset) & ((1 << width) - 1)
    return value - (1 << width) if signed and value >> (width - 1) else value


configs = st.builds(
    lambda rows, cols, block, keep_frac, act_bits, act_signed, weight_bits: SystolicConfig(
        rows=rows, cols=cols, block=block, keep=max(1, round(keep_frac * block)), act_bits=act_bits,
        act_signed=act_signed, weight_bits=weight_bits, acc_bits=64),
    st.integers(1, 5), st.integers(1, 5), st.sampled_from([1, 2, 4, 8, 16]), st.floats(0, 1),
    st.integers(2, 16), st.booleans(), st.integers(2, 16))


@settings(max_examples=60)
@given(cfg=configs, seed=st.integers(0, 2**32 - 1))
def test_beats_follow_readme_formulas(cfg, seed):
    rng = np.random.default_rng(seed)
    W = golden.random_nm_weights(rng, k=cfg.k, n=cfg.cols, keep=cfg.keep, block=cfg.block,
                                 weight_bits=cfg.weight_bits, density=0.7)
    A = golden.random_acts(rng, m=3, k=cfg.k, act_bits=cfg.act_bits, act_signed=cfg.act_signed)
    values, indices = golden.compress_nm(W, keep=cfg.keep, block=cfg.block)

    for m, word in enumerate(beats.act_beats(cfg, A)):
        assert word < 1 << (cfg.k * cfg.act_bits)
        for i in range(cfg.k):
            assert field(word, i * cfg.act_bits, cfg.act_bits, cfg.act_signed) == A[m, i]

    E = cfg.weight_bits + cfg.index_bits
    load = beats.weight_beats(cfg, values, indices)
    assert len(load) == cfg.rows
    for r, word in enumerate(load):
        assert word < 1 << (cfg.cols * cfg.keep * E)
        for c in range(cfg.cols):
            for j in range(cfg.keep):
                base = (c * cfg.keep + j) * E
                assert field(word, base, cfg.weight_bits, True) == values[r, c, j]
                position = field(word, base + cfg.weight_bits, cfg.index_bits, False) if cfg.index_bits else j
                assert position == indices[r, c, j]

    C = rng.integers(-(1 << 63), (1 << 63) - 1, size=(4, cfg.cols), dtype=np.int64, endpoint=True)
    words = beats.result_beats(cfg, C)
    for m, word in enumerate(words):
        assert [field(word, c * 64, 64, True) for c in range(cfg.cols)] == C[m].tolist()
    assert np.array_equal(beats.results_from_beats(cfg, words), C)


def test_pack_rejects_values_that_do_not_fit():
    cfg = SystolicConfig(rows=2, cols=2, keep=2, block=4)
    A = np.zeros((2, cfg.k), dtype=np.int64)
    A[1, 5] = 128
    with pytest.raises(ValueError, match=r"beat 1, element \(5,\) = 128 does not fit 8 signed bits"):
        beats.act_beats(cfg, A)


def test_dense_weights_need_positional_slots():
    cfg = SystolicConfig(rows=1, cols=1, keep=4, block=4)
    with pytest.raises(ValueError, match="slot 0 must hold position 0"):
        beats.weight_beats(cfg, np.zeros((1, 1, 4), dtype=np.int64), np.array([[[1, 0, 2, 3]]]))


def test_unpack_inverts_pack_for_nested_struct_layouts():
    layout = beats.weight_layout(cols=3, keep=2, weight_bits=5, index_bits=3)
    rng = random.Random(7)
    values = np.array([[[rng.randint(-16, 15) for _ in range(2)] for _ in range(3)] for _ in range(4)])
    index = np.array([[[rng.randint(0, 7) for _ in range(2)] for _ in range(3)] for _ in range(4)])
    out = bits.unpack(layout, bits.pack(layout, {"value": values, "index": index}))
    assert np.array_equal(out["value"], values) and np.array_equal(out["index"], index)
