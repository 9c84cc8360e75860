"""RramTile in the Amaranth simulator: MVMs bit-exact with the tile golden, and the closed-form cycle model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from gen.compiler.rram_map import map_dense
from gen.rram.config import RramTileConfig
from gen.rram.verilog import build
from hw.rram import beats
from sim.rram import driver
from sim.rram.tables import footprint, tables_of
from sim.rram.golden import TileGolden
from gen.rram import perf
from sim.common.amaranth_streams import get_all, put_all

CONFIGS = {
    "c2_ou5x4_s4_lossy": RramTileConfig(xbar_rows=16, xbar_cols=16, n_xbars=2, ou_rows=5, ou_cols=4, adc_bits=3,
                                        input_bits=4, weight_bits=4),
    "c1_ou4x3_u3_dac2_offset": RramTileConfig(xbar_rows=12, xbar_cols=12, n_xbars=2, cell_bits=1, ou_rows=4,
                                              ou_cols=3, adc_bits=4, dac_bits=2, input_bits=3, input_signed=False,
                                              weight_bits=3, encoding="offset"),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_tile_mvm_and_cycle_model(name, seed):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(seed)
    k, n = 11, 2
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    w = rng.integers(lo, hi + 1, size=(k, n))
    mapping = map_dense(w, cfg.geometry, weight_bits=cfg.weight_bits, encoding=cfg.encoding)
    xlo, xhi = ((-(1 << (cfg.input_bits - 1)), (1 << (cfg.input_bits - 1)) - 1) if cfg.input_signed
                else (0, (1 << cfg.input_bits) - 1))
    x = rng.integers(xlo, xhi + 1, size=(2, k))
    golden = TileGolden(cfg)
    mask = footprint(mapping)
    golden.program(mapping.levels, mask)
    tables = tables_of(cfg, mapping)
    assert golden.load_tables(tables) == 0
    expected = np.array([golden.mvm(v) for v in x])

    dut = build(cfg)
    out = {}

    async def producer(ctx):
        cycles, now = await put_all(ctx, dut.program, driver.program_beats(cfg, mapping.levels, mask))
        out["program"] = cycles
        _, now = await put_all(ctx, dut.tables, driver.table_beats(cfg, tables), start=now)
        out["inputs"] = []
        for v in x:
            cycles, now = await put_all(ctx, dut.inputs, driver.input_beats(cfg, v), start=now)
            out["inputs"].append(cycles)
        out["start"] = now

    async def consumer(ctx):
        words, cycles, _ = await get_all(ctx, dut.outputs, n * len(x))
        out["y"], out["out_cycles"] = driver.outputs_from_beats(cfg, words, n), cycles
        await ctx.tick()
        out["regs"] = {}
        for addr, (reg, _) in beats.REGISTERS.items():
            ctx.set(dut.reg_addr, addr)
            out["regs"][reg] = ctx.get(dut.reg_data)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    np.testing.assert_array_equal(out["y"], expected)
    for reg, value in golden.counters.items():
        assert out["regs"][reg.upper()] == value, reg
    # Program beats: back to back, each cell verified in one write.
    assert np.diff(out["program"]).tolist() == [perf.program_cycles(1)] * (len(out["program"]) - 1)
    # Each MVM takes the closed form from its first input beat to its last output beat (MVM 1 waits for MVM 0).
    for i in range(len(x)):
        first_in, last_out = out["inputs"][i][0], out["out_cycles"][(i + 1) * n - 1]
        assert last_out - first_in + 1 == perf.mvm_cycles(cfg, mapping), i
