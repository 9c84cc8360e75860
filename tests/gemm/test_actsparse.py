"""Activation sparsity (docs/gemm-actsparse.md): the A-DBB rule and lossless steps against loop references, the
golden model and counters, the cycle model with steps, config rules and `perf --act-density --json`; weights
along N: their format (hw.formats.nm_n), config, golden and the headline speedup."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from gen.cli import main
from gen.config import load_config
from gen.gemm import perf
from gen.gemm.cli import act_perf, dense_twin, weight_only_twin
from gen.gemm.config import GemmConfig
from hw.formats.actsparse import adbb_prune, row_steps, step_slots
from hw.formats.nm_n import check_n, compress_n, decompress_n, prune_n
from sim.gemm import golden
from sim.systolic.golden import random_acts, random_nm_weights


def adbb_loop(A, act_keep, block):
    """Loop reference of the A-DBB rule: per block, sort lanes by (−|a|, lane), keep the first act_keep."""
    out = np.zeros_like(A)
    for m in range(A.shape[0]):
        for b in range(0, A.shape[1], block):
            lanes = list(range(b, min(b + block, A.shape[1])))
            for i in sorted(lanes, key=lambda i: (-abs(int(A[m, i])), i))[:act_keep]:
                out[m, i] = A[m, i]
    return out


def test_adbb_rule_hand_examples():
    A = np.array([[3, -3, 0, 2,   -128, 127, -127, 5,   0, 0, 0, 0,   7, 7, 7, 7]])
    assert adbb_prune(A, act_keep=2, block=4).tolist() == [[3, -3, 0, 0, -128, 127, 0, 0, 0, 0, 0, 0, 7, 7, 0, 0]]
    assert adbb_prune(A, act_keep=1, block=4).tolist() == [[3, 0, 0, 0, -128, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]]
    # ragged K: the last block is short
    assert adbb_prune(np.array([[1, 2, 3, 4, 9, -9]]), act_keep=1, block=4).tolist() == [[0, 0, 0, 4, 9, 0]]


@pytest.mark.parametrize("block", [2, 4, 8])
def test_adbb_and_steps_against_loops(block, seed):
    rng = np.random.default_rng(seed)
    A = random_acts(rng, m=9, k=37, act_bits=6, act_signed=True)
    A = golden.act_stimulus(rng, A, act_bits=6, act_signed=True, block=block)
    for act_keep in range(1, block + 1):
        assert np.array_equal(adbb_prune(A, act_keep=act_keep, block=block), adbb_loop(A, act_keep, block))
        steps = row_steps(A, act_keep=act_keep, block=block, k_tile=2 * block, mode="lossless")
        for kk in range(steps.shape[0]):
            for m in range(A.shape[0]):
                part = A[m, kk * 2 * block:(kk + 1) * 2 * block]
                need = [-(-np.count_nonzero(part[i:i + block]) // act_keep) for i in range(0, len(part), block)]
                assert steps[kk, m] == max(1, *need)
        # lossless: the steps' slots hold every non-zero exactly once, in position order
        blocks = np.zeros((9, -(-37 // block) * block), np.int64)
        blocks[:, :37] = A
        blocks = blocks.reshape(9, -1, block)
        total = np.zeros_like(blocks)
        for step in range(-(-block // act_keep)):
            values, positions = step_slots(blocks, act_keep=act_keep, step=step, mode="lossless")
            for j in range(act_keep):
                total += (positions[..., j:j + 1] == np.arange(block)) * values[..., j:j + 1]
        assert np.array_equal(total, blocks)


CFG = GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24, max_m=8, max_k=40, max_n=10, act_keep=1)


def test_golden_modes_and_counts(seed):
    rng = np.random.default_rng(seed)
    W = random_nm_weights(rng, k=40, n=7, keep=2, block=4, weight_bits=8, density=0.8)[:37]
    A = golden.act_stimulus(rng, random_acts(rng, m=5, k=37, act_bits=8, act_signed=True), act_bits=8,
                            act_signed=True, block=4)
    lossless = dataclasses.replace(CFG, act_mode="lossless")
    assert np.array_equal(golden.gemm_engine(lossless, A, W), A @ W)                 # bit-exact with dense
    pruned = adbb_loop(A, 1, 4)
    assert np.array_equal(golden.gemm_engine(CFG, A, W), pruned @ W)
    macs, skips = golden.mac_counts(CFG, A, W)
    assert macs == np.count_nonzero(pruned) * 7
    # every step offers rows·keep slots per column; kt = ceil(37 / 16) = 3 K-tiles, one step per row (A-DBB)
    assert macs + skips == 3 * 5 * CFG.rows * CFG.keep * 7
    macs, skips = golden.mac_counts(lossless, A, W)
    assert macs == np.count_nonzero(A) * 7
    assert macs + skips == int(golden.act_steps(lossless, A).sum()) * CFG.rows * CFG.keep * 7


def test_cycle_model_with_steps():
    """One step per row: the model is the weight-only recurrence on k = rows·group·block; steps stretch tiles."""
    assert CFG.k == 16 and perf.tiles(CFG, 40, 10) == (3, 4)
    one = perf.predict(CFG, [(5, 40, 10)])
    assert one.cycles == perf.job_cycles(CFG, 5, 40, 10)
    steps = np.ones((3, 5), np.int64)
    assert perf.predict(CFG, [(5, 40, 10)], steps=[steps]) == one
    steps[1, 2] = 3                      # row 2 of K-tile 1 takes three steps: +2 cycles in each of the 4 N-tiles
    longer = perf.predict(CFG, [(5, 40, 10)], steps=[steps])
    assert longer.busy_cycles == one.busy_cycles + 8 and longer.cycles == one.cycles + 8
    with pytest.raises(ValueError, match="steps"):
        perf.predict(CFG, [(5, 40, 10)], steps=[np.ones((2, 5), np.int64)])


def test_config_rules():
    for kwargs, text in (({"act_keep": 3, "keep": 2}, "act_keep = 3"), ({"act_keep": 1, "dataflow": "os"}, "ws"),
                         ({"act_keep": 1, "overflow": "saturate"}, "saturate"), ({"act_mode": "lossy"}, "act_mode")):
        with pytest.raises(ValueError, match=text):
            GemmConfig(**({"keep": 2, "block": 4} | kwargs))
    with pytest.raises(ValueError, match="does not divide"):
        GemmConfig(keep=3, block=4, act_keep=2)
    assert GemmConfig(keep=2, block=4, act_keep=1).top.endswith("_a1")
    assert dense_twin(load_config("gemm_8x8_2of4_act1of4")).multipliers == 128


def test_perf_act_density_json(capsys):
    """The headline: 2:4 weights × A-DBB on the 8x8 engine; JSON with cycles, dense_cycles and speedup."""
    assert main(["perf", "--config", "gemm_8x8_2of4_act2of4", "--gemm", "256,256,64", "--act-density", "0.5",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"cycles", "dense_cycles", "speedup"} <= out.keys()
    assert out["speedup"] == pytest.approx(out["dense_cycles"] / out["cycles"])
    cfg = load_config("gemm_8x8_2of4_act1of4")
    o = act_perf(cfg, (256, 256, 64), 0.5)
    assert o["speedup"] >= 3.8 and o["speedup_vs_weight_only"] >= 1.9
    lossless = act_perf(load_config("gemm_8x8_2of4_act1of4", {"act_mode": "lossless"}), (64, 256, 64), 0.05)
    assert lossless["cycles"] < lossless["weight_only_cycles"]


def test_balance_channels_is_a_permutation_that_helps_lossless(seed):
    """Channels of very different densities (as after ReLU): the snake rearrangement is a permutation, keeps A·W,
    and does not make a lossless row slower (here it makes the job faster)."""
    from sim.gemm.driver import balance_channels

    rng = np.random.default_rng(seed)
    cfg = dataclasses.replace(CFG, act_mode="lossless", max_m=64, max_k=64)
    density = np.repeat([0.9, 0.05], 32)                    # dense channels first: blocks all dense or all sparse
    A = np.where(rng.random((64, 64)) < density, rng.integers(1, 100, (64, 64)), 0)
    perm = balance_channels(A, block=cfg.block)
    assert sorted(perm.tolist()) == list(range(64))
    before = int(golden.act_steps(cfg, A).sum())
    after = int(golden.act_steps(cfg, A[:, perm]).sum())
    print(f"lossless steps: {before} in channel order, {after} balanced")
    assert after < before
    W = rng.integers(-5, 5, (64, 3))
    assert np.array_equal(A[:, perm] @ W[perm], A @ W)
    assert sorted(balance_channels(A[:, :37], block=4).tolist()) == list(range(37))


@pytest.mark.parametrize("argv, text", [
    (["--config", "gemm_8x8_2of4_act1of4", "--gemm", "64,64,64", "--act-density", "1.5"], "--act-density = 1.5"),
    (["--config", "gemm_8x8_2of4_os", "--gemm", "64,64,64", "--act-density", "0.5"], "weight-stationary"),
    (["--config", "gemm_8x8_2of4", "--set", "act_keep=3", "--gemm", "8,8,8", "--json"], "act_keep = 3"),
])
def test_perf_act_errors_are_one_line(capsys, argv, text):
    assert main(["perf", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sparsegen: error: ") and text in err and len(err.strip().splitlines()) == 1, err


# weights keep:block along N (weight_axis = "n", docs/gemm-actsparse.md "Weights along N"): hw.formats.nm_n against
# the loop reference of the rule (A-DBB's, along the rows of W), hypothesis round trips; the engine's config,
# golden and counts
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
    assert np.array_equal(P, adbb_loop(W, keep, block))     # the same rule along the rows of W
    values, indices = compress_n(P, keep=keep, block=block)
    assert values.shape == (W.shape[0], -(-W.shape[1] // block), keep)
    assert ((indices >= 0) & (indices < block)).all()
    assert all(len(set(row)) == keep for row in indices.reshape(-1, keep).tolist())
    back = decompress_n(values, indices, block=block)
    assert np.array_equal(back[:, :W.shape[1]], P) and not back[:, W.shape[1]:].any()
    # a pruned matrix is its own prune
    assert np.array_equal(prune_n(P, keep=keep, block=block), P)


OUTER = GemmConfig(rows=2, cols=3, keep=2, block=4, acc_bits=24, max_m=16, max_k=40, max_n=30, act_keep=2,
                   weight_axis="n")


def test_outer_config_rules():
    with pytest.raises(ValueError, match=r"^GemmConfig.weight_axis = 'n' needs act_keep > 0"):
        GemmConfig(keep=2, block=4, weight_axis="n")
    with pytest.raises(ValueError, match="weight_axis"):
        GemmConfig(keep=2, block=4, act_keep=2, weight_axis="m")
    # no divisor rule along N: 3 slots on 2:4 weights (6 multipliers per PE)
    cfg = GemmConfig(keep=2, block=4, act_keep=3, weight_axis="n")
    assert (cfg.multipliers, cfg.n_tile, cfg.k, cfg.group) == (4 * 4 * 6, 16, 16, 1)
    assert cfg.top.endswith("_a3_wn")
    assert dataclasses.replace(cfg, pe_pipeline=4).latency == 4 + 4 + 4
    assert GemmConfig(keep=2, block=4, act_keep=2, pe_pipeline=3).latency == 4 + 4 + 3
    with pytest.raises(ValueError, match="pe_pipeline = 5"):
        dataclasses.replace(cfg, pe_pipeline=5)
    head = load_config("gemm_8x8_2of4_act2of4")
    assert (head.weight_axis, head.rows, head.cols, head.multipliers, head.k, head.n_tile) == ("n", 8, 4, 128, 32, 16)
    assert dense_twin(head).multipliers == weight_only_twin(head).multipliers == load_config("gemm_8x8_2of4").multipliers
    assert load_config("gemm_8x8_2of4_act2of4_k").weight_axis == "k"


def test_outer_golden_and_counts(seed):
    rng = np.random.default_rng(seed)
    A = golden.act_stimulus(rng, random_acts(rng, m=9, k=37, act_bits=8, act_signed=True), act_bits=8,
                            act_signed=True, block=4)
    W = prune_n(rng.integers(-128, 128, size=(37, 23)), keep=2, block=4)
    for mode in ("adbb", "lossless"):
        cfg = dataclasses.replace(OUTER, act_mode=mode)
        Ae = adbb_loop(A, 2, 4) if mode == "adbb" else A
        assert np.array_equal(golden.gemm_engine(cfg, A, W), Ae @ W)
        macs, skips = golden.mac_counts(cfg, A, W)
        # keep products per activation slot over the 6 N-blocks of N = 23
        assert macs == np.count_nonzero(Ae) * 2 * 6
        assert macs + skips == int(golden.act_steps(cfg, A).sum()) * cfg.rows * 2 * 2 * 6
    # weights must be keep:block along N: a K-axis 2:4 matrix is rejected naming the row and N-block
    Wk = random_nm_weights(rng, k=40, n=23, keep=2, block=4, weight_bits=8, density=1.0)[:37]
    bad = np.argwhere(np.count_nonzero(np.pad(Wk, ((0, 0), (0, 1))).reshape(37, 6, 4), axis=2) > 2)[0]
    with pytest.raises(ValueError, match=rf"^W row {bad[0]}, N-block {bad[1]} "):
        golden.gemm_engine(OUTER, A, Wk)


def test_outer_headline_speedup():
    """2:4 along N × A-DBB 2:4 (gemm_8x8_2of4_act2of4): ≥ 1.9× weight-only 2:4 and ≥ 3.8× dense, 128 multipliers."""
    o = act_perf(load_config("gemm_8x8_2of4_act2of4"), (256, 256, 64), 0.5)
    print(o)
    assert o["multipliers"] == 128
    assert o["speedup"] >= 3.8 and o["speedup_vs_weight_only"] >= 1.9
    # at equal pe_pipeline: the shipped weight-only preset
    assert o["weight_only_cycles"] == perf.job_cycles(load_config("gemm_8x8_2of4"), 256, 256, 64)
    # the K-axis design of the same sparsities is no faster than weight-only (docs/gemm-actsparse.md)
    k_axis = act_perf(load_config("gemm_8x8_2of4_act2of4_k"), (256, 256, 64), 0.5)
    assert k_axis["cycles"] == k_axis["weight_only_cycles"]
