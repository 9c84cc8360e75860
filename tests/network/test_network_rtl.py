"""Two test images of the digits CNN end to end through every layer on the GEMM engine's and the RRAM tile's
Verilog (Verilator), one on Icarus: every layer's output equals the int8 golden (asserted inside the simulation
and here), and so does the predicted class."""

import numpy as np
import pytest

from gen.network.data import digits
from gen.network.spec import load
from sim.network.golden import classes_of, int8_forward
from sim.network.rtl import run_rtl

CASES = [("gemm", "verilator", 2), ("rram", "verilator", 2), ("gemm", "icarus", 1)]


@pytest.mark.parametrize("engine, sim, images", CASES, ids=[f"{e}-{s}" for e, s, _ in CASES])
def test_network_on_rtl(engine, sim, images, seed):
    q = load("digits-int8")
    xt, _ = digits("test")
    pick = np.sort(np.random.default_rng(seed).choice(len(xt), images, replace=False))
    r = run_rtl(q, xt[pick], engine=engine, sim=sim, seed=seed)
    golden = int8_forward(q, xt[pick])
    assert len(r.outputs) == len(golden) == len(q.layers)
    for layer, got, want in zip(q.layers, r.outputs, golden):
        np.testing.assert_array_equal(got, want, err_msg=f"layer {layer.name}")
    np.testing.assert_array_equal(r.predictions, classes_of(q, golden[-1]))
    assert r.bit_exact and r.cycles["total"] > 0
    assert (golden[0] > 0).mean() > 0.1, "conv1 left (almost) nothing: the comparison is too weak"
