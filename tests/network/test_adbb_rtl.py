"""The digits CNN on an A-DBB GEMM engine's RTL (Verilator): every layer bit-exact with the int8 golden whose GEMMs
prune A as the engine does (:func:`sim.network.actsparse.adbb_gemm`), the classes too, with the host's im2col in
either K order. Slow (a Verilator build)."""

import dataclasses

import numpy as np
import pytest

from gen.network.data import digits
from gen.network.spec import load
from sim.network.actsparse import adbb_gemm, adbb_predict
from sim.network.golden import int8_forward
from sim.network.rtl import gemm_config, run_rtl


@pytest.mark.slow
@pytest.mark.parametrize("k_order", ["cij", "ijc"])
def test_adbb_network_on_rtl(seed, k_order):
    q = load("digits-int8")
    xt, _ = digits("test")
    pick = np.sort(np.random.default_rng(seed).choice(len(xt), 2, replace=False))
    print(f"seed {seed}: test images {pick.tolist()}")
    # dense 4:4 × A-DBB 2:4; the activation-sparse engine has no PE pipeline (docs/gemm-actsparse.md)
    cfg = dataclasses.replace(gemm_config(q), act_keep=2, act_mode="adbb", pe_pipeline=0, name=None)
    r = run_rtl(q, xt[pick], sim="verilator", seed=seed, config=cfg, k_order=k_order)
    golden = int8_forward(q, xt[pick], gemm=adbb_gemm(2), k_order=k_order)
    dense = int8_forward(q, xt[pick])
    for layer, got, want in zip(q.layers, r.outputs, golden, strict=True):
        np.testing.assert_array_equal(got, want, err_msg=f"layer {layer.name}")
    assert not np.array_equal(golden[0], dense[0]), "A-DBB changed nothing: the comparison is too weak"
    np.testing.assert_array_equal(r.predictions, adbb_predict(q, xt[pick], 2, k_order=k_order))
    assert r.bit_exact and r.cycles["total"] > 0
