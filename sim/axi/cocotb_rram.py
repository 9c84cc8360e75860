"""cocotb tests of an RRAM tile behind the AXI wrapper, driven only through its AXI ports with cocotbext-axi
(run by tests/axi/test_axi_cocotb.py).

Write-verify programming, table load and MVMs as AXI4-Stream frames packed by :mod:`sim.rram.driver`; outputs one
frame per vector (``tlast`` = the beat's ``last``), the fault log one beat per frame; every output word, fault
address and register (read over AXI4-Lite) against :class:`sim.rram.golden.TileGolden`.
"""

import itertools

import cocotb
import numpy as np

from gen.compiler.rram_map import map_dense
from gen.rram.config import RramTileConfig
from hw.rram import beats
from sim.axi.env import SLVERR, AxiEnv
from sim.common.tbenv import settings
from sim.rram import driver
from sim.rram.golden import TileGolden
from sim.rram.tables import footprint, tables_of


async def _idle(env, within=20_000):
    """Sources drained and STATUS.busy low."""
    await env.drained()
    for _ in range(within):
        if not (await env.read("STATUS")) >> beats.STATUS_BITS["busy"] & 1:
            return
    raise AssertionError("tile still busy")


async def _check_registers(env, golden, cfg):
    mask = (1 << cfg.counter_bits) - 1
    for name, value in golden.counters.items():
        got = await env.value(name.upper())
        assert got == value & mask, f"register {name.upper()} = {got}, golden {value}"
    status = await env.read("STATUS")
    expected = ((golden.tables_valid << beats.STATUS_BITS["tables_valid"])
                | (golden.fault_overflow << beats.STATUS_BITS["fault_overflow"])
                | (golden.error << beats.STATUS_BITS["error"]))
    assert status == expected, f"STATUS = {status:#x}, golden {expected:#x}"


@cocotb.test()
async def program_and_mvm_through_axi(dut):
    """Program a small layer (write-verify, the fault log popped over AXI4-Stream and exact), load its tables,
    MVMs under random gaps and backpressure with every output word against the golden, a wrong-length vector
    (BAD_VECTOR, no frame), every register exact, unmapped and read-only accesses answering SLVERR, no protocol
    violation."""
    s = settings(RramTileConfig)
    cfg, rng = s.config, s.rng
    env = AxiEnv(dut, cfg, seed=s.seed, gap=0.3, stall=0.4)
    await env.start()
    popping = [False]
    env.sinks["faults"].set_pause_generator(
        (not popping[0]) or r for r in (rng.random() < 0.3 for _ in itertools.count()))
    golden = TileGolden(cfg)
    await env.unmapped_rejected()

    k, n = min(10, cfg.input_capacity), min(3, cfg.output_capacity)
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    w = rng.integers(lo, hi + 1, size=(k, n)) * (rng.random((k, n)) < 0.7)
    mapping = map_dense(w, cfg.geometry, weight_bits=cfg.weight_bits, encoding=cfg.encoding)
    mask = footprint(mapping)
    golden.program(mapping.levels, mask)
    env.send("program", driver.program_beats(cfg, mapping.levels, mask))
    await _idle(env)
    expected_faults = golden.pop_faults()
    popping[0] = True
    faults = [driver.faults_from_beats(cfg, await env.recv("faults"))[0] for _ in expected_faults]
    assert faults == expected_faults, f"fault log {faults}, golden {expected_faults}"
    popping[0] = False

    tables = tables_of(cfg, mapping)
    assert golden.load_tables(tables) == 0
    env.send("tables", driver.table_beats(cfg, tables))
    await _idle(env)
    ilo, ihi = ((-(1 << (cfg.input_bits - 1)), (1 << (cfg.input_bits - 1)) - 1) if cfg.input_signed
                else (0, (1 << cfg.input_bits) - 1))
    xs = rng.integers(ilo, ihi + 1, size=(3, mapping.n_inputs))
    for x in xs:
        env.send("inputs", driver.input_beats(cfg, x))
    for i, x in enumerate(xs):
        words = await env.recv("outputs")
        assert len(words) == mapping.n_outputs, f"vector {i}: frame of {len(words)} beats"
        y = driver.outputs_from_beats(cfg, words, mapping.n_outputs)[0]
        want = golden.mvm(x)
        np.testing.assert_array_equal(y, want, err_msg=f"vector {i}: y = {y}, golden {want}")
    env.send("inputs", driver.input_beats(cfg, xs[0][:-1]))        # one element short
    assert golden.mvm(xs[0][:-1]) is None
    await _idle(env)
    assert golden.error == beats.ERROR_CODES["BAD_VECTOR"]
    assert env.sinks["outputs"].empty(), "output frame for a rejected vector"
    await _check_registers(env, golden, cfg)
    assert await env.write("STATUS", 0) == SLVERR
    await _check_registers(env, golden, cfg)
    await env.unmapped_rejected()
    env.check_protocol()
    assert env.handshakes["m_axis_outputs"] == len(xs) * mapping.n_outputs
