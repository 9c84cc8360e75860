"""Weights sparse along N (docs/gemm-actsparse.md, "weight_axis = n"): the format of hw.formats.nm_n against loop
references and hypothesis round trips, and the outer-product PE alone in the Amaranth simulator against a numpy
model."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from hw.formats.nm_n import check_n, compress_n, decompress_n, prune_n
from hw.gemm.outer_pe import OuterPE
from sim.common.amaranth_bench import Bench


def prune_loop(W, keep, block):
    """Loop reference: per (row, N-block), sort columns by (−|w|, column), keep the first ``keep``."""
    out = np.zeros_like(W)
    for r in range(W.shape[0]):
        for b in range(0, W.shape[1], block):
            cols = list(range(b, min(b + block, W.shape[1])))
            for c in sorted(cols, key=lambda c: (-abs(int(W[r, c])), c))[:keep]:
                out[r, c] = W[r, c]
    return out


def test_prune_n_hand_examples():
    W = np.array([[3, -3, 0, 2, 7, 7, 7, 7], [-128, 127, -127, 5, 0, 0, 0, 1]])
    assert prune_n(W, keep=2, block=4).tolist() == [[3, -3, 0, 0, 7, 7, 0, 0], [-128, 127, 0, 0, 0, 0, 0, 1]]
    assert prune_n(W, keep=1, block=4).tolist() == [[3, 0, 0, 0, 7, 0, 0, 0], [-128, 0, 0, 0, 0, 0, 0, 1]]
    # ragged N: the last block is short
    assert prune_n(np.array([[1, 2, 3, 4, 9, -9]]), keep=1, block=4).tolist() == [[0, 0, 0, 4, 9, 0]]


def test_check_n_names_row_and_block():
    W = np.zeros((3, 8), np.int64)
    W[2, 5:8] = 1
    with pytest.raises(ValueError, match=r"^W row 2, N-block 1 \(columns 4\.\.7\) has 3 non-zeros: allowed at most 2"):
        check_n(W, keep=2, block=4)
    with pytest.raises(ValueError, match="W row 2, N-block 1"):
        compress_n(W, keep=2, block=4)
    assert check_n(W, keep=3, block=4).dtype == np.int64


def test_compress_n_layout():
    W = np.array([[0, 5, 0, -2, 0, 0, 0, 0]])
    values, indices = compress_n(W, keep=2, block=4)
    assert values.tolist() == [[[5, -2], [0, 0]]]
    assert indices.tolist() == [[[1, 3], [0, 1]]]         # padding: value 0 at the lowest free columns


@settings(max_examples=60, deadline=None)
@given(W=hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=13),
                    elements=st.integers(-128, 127)),
       keep_block=st.sampled_from([(1, 2), (1, 4), (2, 4), (3, 4), (4, 4), (2, 8), (5, 8)]))
def test_prune_compress_round_trip(W, keep_block):
    keep, block = keep_block
    P = prune_n(W, keep=keep, block=block)
    assert np.array_equal(P, prune_loop(W, keep, block))
    values, indices = compress_n(P, keep=keep, block=block)
    assert values.shape == (W.shape[0], -(-W.shape[1] // block), keep)
    assert ((indices >= 0) & (indices < block)).all()
    assert all(len(set(row)) == keep for row in indices.reshape(-1, keep).tolist())
    back = decompress_n(values, indices, block=block)
    assert np.array_equal(back[:, :W.shape[1]], P) and not back[:, W.shape[1]:].any()
    # a pruned matrix is its own prune
    assert np.array_equal(prune_n(P, keep=keep, block=block), P)


PES = {
    "2of4_a2_s8": dict(act_bits=8, act_signed=True, weight_bits=8, acc_bits=12, keep=2, block=4, act_keep=2),
    "1of4_a1_u8": dict(act_bits=8, act_signed=False, weight_bits=8, acc_bits=10, keep=1, block=4, act_keep=1),
    "4of4_a4_s6": dict(act_bits=6, act_signed=True, weight_bits=5, acc_bits=12, keep=4, block=4, act_keep=4),
}


@pytest.mark.parametrize("name", PES)
def test_outer_pe_random_steps(name, seed):
    args = PES[name]
    keep, block, act_keep, acc_bits = args["keep"], args["block"], args["act_keep"], args["acc_bits"]
    dut = OuterPE(**args, count_bits=6)
    rng = np.random.default_rng(seed)
    a_lo, a_hi = ((-(1 << (args["act_bits"] - 1)), (1 << (args["act_bits"] - 1)) - 1) if args["act_signed"]
                  else (0, (1 << args["act_bits"]) - 1))
    w_lo, w_hi = -(1 << (args["weight_bits"] - 1)), (1 << (args["weight_bits"] - 1)) - 1
    half = 1 << (acc_bits - 1)
    steps = 300

    def random_weights():
        W = rng.integers(w_lo, w_hi, size=(block, block), endpoint=True)
        return prune_n(np.where(rng.random(W.shape) < 0.2, 0, W), keep=keep, block=block)

    async def bench(ctx):
        active = shadow = np.zeros((block, block), np.int64)
        psum_out, counts, swapped = np.zeros(block, np.int64), (0, 0), 0
        for _ in range(steps):
            en, we, swap = rng.random() < 0.8, rng.random() < 0.2, rng.random() < 0.15
            W = random_weights()
            values, indices = compress_n(W, keep=keep, block=block)
            for kr in range(block):
                for e in range(keep):
                    ctx.set(dut.w_data[kr * keep + e].value, int(values[kr, 0, e]))
                    if keep < block:
                        ctx.set(dut.w_data[kr * keep + e].index, int(indices[kr, 0, e]))
            vals = [int(v) if rng.random() > 0.3 else 0 for v in rng.integers(a_lo, a_hi, size=act_keep,
                                                                               endpoint=True)]
            pos = rng.integers(0, block, size=act_keep).tolist()
            psum_in = rng.integers(-half, half, size=block)
            macs_in, zeros_in = int(rng.integers(0, 20)), int(rng.integers(0, 20))
            for j in range(act_keep):
                ctx.set(dut.slots_in[j], {"value": vals[j], "pos": pos[j]})
            for c in range(block):
                ctx.set(dut.psum_in[c], int(psum_in[c]))
            ctx.set(dut.macs_in, macs_in)
            ctx.set(dut.zeros_in, zeros_in)
            ctx.set(dut.en, en)
            ctx.set(dut.w_we, we)
            ctx.set(dut.swap_in, swap)
            await ctx.tick()
            if en:
                used = shadow if swap else active
                total = psum_in + sum(vals[j] * used[pos[j]] for j in range(act_keep))
                psum_out = ((total + half) % (2 * half)) - half
                filled = sum(v != 0 for v in vals)
                counts = ((macs_in + filled * keep) % 64, (zeros_in + (act_keep - filled) * keep) % 64)
                if swap:
                    active, swapped = shadow, swapped + 1
                if we:
                    shadow = W
            assert [ctx.get(dut.psum_out[c]) for c in range(block)] == psum_out.tolist()
            assert (ctx.get(dut.macs_out), ctx.get(dut.zeros_out)) == counts
        assert swapped > 10

    tb = Bench(dut, within=steps + 1, why="1 tick per step, nothing awaits the PE")
    tb.add(bench)
    tb.run()
