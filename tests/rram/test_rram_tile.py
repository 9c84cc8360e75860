"""RramTile in the Amaranth simulator: a whole session (write-verify, tables, MVMs) bit-exact with the tile golden,
the fault log and every register exact, every transfer on the closed-form cycle model."""

import dataclasses

import numpy as np
import pytest

from gen.compiler.rram_map import map_dense
from gen.rram.config import RramTileConfig
from gen.rram.verilog import build
from hw.rram import beats
from sim.rram import driver
from sim.rram.tables import footprint, program_cells, random_mapping, tables_of
from sim.rram.golden import TileGolden
from gen.rram import perf
from sim.common.amaranth_bench import Bench, bound
from sim.common.amaranth_streams import get_all, put_all

CONFIGS = {
    "c2_ou5x4_s4_lossy": RramTileConfig(xbar_rows=16, xbar_cols=16, n_xbars=2, ou_rows=5, ou_cols=4, adc_bits=3,
                                        input_bits=4, weight_bits=4),
    "c1_ou4x3_u3_dac2_offset": RramTileConfig(xbar_rows=12, xbar_cols=12, n_xbars=2, cell_bits=1, ou_rows=4,
                                              ou_cols=3, adc_bits=4, dac_bits=2, input_bits=3, input_signed=False,
                                              weight_bits=3, encoding="offset"),
}
# Write-verify that fails: a write misses (±1 level) with probability 24000/65536, so with max_iters = 2 a
# healthy cell needs a retry about 1 time in 3 and is logged about 1 time in 10; 8 % of the cells are stuck. The
# fault log holds 3 entries, so further faulty cells are only counted (FAULT_DROPPED, overflow flag).
FAULTY = dataclasses.replace(CONFIGS["c2_ou5x4_s4_lossy"], pulse_error=24000, read_noise=1, stuck_sa0=0.04,
                             stuck_sa1=0.04, max_iters=2, fault_depth=3)


def session(cfg, k, n, seed, *, vectors=2, routed=False):
    """A dense k × n mapping of random weights (or, ``routed``, a random v2 schedule: shared bitlines, several
    outputs per OU) and ``vectors`` random input vectors."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
    if routed:
        mapping = random_mapping(cfg, rng, n_inputs=k, n_outputs=n)
    else:
        w = rng.integers(lo, hi + 1, size=(k, n))
        mapping = map_dense(w, cfg.geometry, weight_bits=cfg.weight_bits, encoding=cfg.encoding)
    xlo, xhi = ((-(1 << (cfg.input_bits - 1)), (1 << (cfg.input_bits - 1)) - 1) if cfg.input_signed
                else (0, (1 << cfg.input_bits) - 1))
    return mapping, rng.integers(xlo, xhi + 1, size=(vectors, k))


def expected(cfg, mapping, x):
    """The tile golden over the session: per program beat its writes and whether it is logged, the fault log,
    the outputs and the final golden state (counters, status)."""
    golden = TileGolden(cfg)
    writes, logged = [], []
    for xbar, row, col, level in program_cells(cfg, mapping.levels, footprint(mapping)).tolist():
        before = golden.counters["verify_iters"]
        logged.append(not golden.program_cell(xbar, row, col, level))
        writes.append(golden.counters["verify_iters"] - before)
    faults = list(golden.fault_log)
    tables = tables_of(cfg, mapping)
    assert golden.load_tables(tables) == 0
    y = np.array([golden.mvm(v) for v in x])
    return golden, writes, logged, faults, tables, y


def model_cycles(cfg, mapping, writes, logged, n_table, n_vectors):
    """Transfer cycles of the session by the cycle model (:mod:`gen.rram.perf`), the first program beat at 0:
    program beats, table beats, each vector's first input and last output, and the cycle count at the end."""
    t, program = 0, []
    for w, bad in zip(writes, logged):
        program.append(t)
        t += perf.program_cycles(w, logged=bad)
    table = list(range(t, t + n_table))
    t += n_table + perf.TABLE_LATENCY       # the last table beat's stage 1, then the loader may see a vector
    # the vectors are offered back to back: the second loads while the first computes (stream_schedule)
    sched = perf.stream_schedule(cfg, mapping, n_vectors)
    first_in = [t + a for a, _ in sched]
    last_out = [t + b for _, b in sched]
    assert last_out[0] - first_in[0] + 1 == perf.mvm_cycles(cfg, mapping)
    return dict(program=program, table=table, first_in=first_in, last_out=last_out, end=last_out[-1] + 1)


def run_session(cfg, k, n, seed, **kw):
    """Program a mapping's footprint (the fault log popped afterwards), load its tables, run the MVMs back to back;
    check every output, fault-log entry, register and transfer cycle."""
    mapping, x = session(cfg, k, n, seed, **kw)
    golden, writes, logged, faults, tables, y = expected(cfg, mapping, x)
    table_beats = driver.table_beats(cfg, tables)
    model = model_cycles(cfg, mapping, writes, logged, len(table_beats), len(x))
    dut = build(cfg)
    bench = Bench(dut, within=bound(model["end"]), model=model["end"])
    out = {}

    async def host(ctx):
        out["program"], now = await put_all(ctx, dut.program, driver.program_beats(cfg, mapping.levels,
                                                                                   footprint(mapping)), bench=bench)
        out["table"], now = await put_all(ctx, dut.tables, table_beats, start=now, bench=bench)
        out["inputs"] = []
        for v in x:
            cycles, now = await put_all(ctx, dut.inputs, driver.input_beats(cfg, v), start=now, bench=bench)
            out["inputs"].append(cycles)

    async def fault_reader(ctx):
        # pop the log only once programming is over (the tables follow the last cell's write-verify), so that it
        # fills and overflows as the golden's does
        await bench.until(ctx, lambda: "table" in out, what="the table beats")
        words, _, _ = await get_all(ctx, dut.faults, len(faults), bench=bench)
        out["faults"] = driver.faults_from_beats(cfg, words)
        for _ in range(4):
            _, _, valid = await ctx.tick().sample(dut.faults.valid)
            assert not valid, "the fault log holds more entries than the golden's"

    async def consumer(ctx):
        words, out["out_cycles"], _ = await get_all(ctx, dut.outputs, n * len(x), bench=bench)
        out["y"] = driver.outputs_from_beats(cfg, words, n)
        # registers as of the edge of the last output transfer (CYCLES: every cycle up to that one)
        out["regs"] = {}
        for addr, (reg, _) in beats.REGISTERS.items():
            ctx.set(dut.reg_addr, addr)
            out["regs"][reg] = ctx.get(dut.reg_data)

    for testbench in (host, fault_reader, consumer):
        bench.add(testbench)
    bench.run()

    assert out["faults"] == faults, "the fault log (xbar, row, col) differs from the golden's"
    regs = out["regs"]
    for reg, value in golden.counters.items():
        assert regs[reg.upper()] == value, f"{reg.upper()}: RTL {regs[reg.upper()]}, golden {value}"
    np.testing.assert_array_equal(out["y"], y)
    b = beats.STATUS_BITS
    status = (golden.tables_valid << b["tables_valid"]) | (golden.fault_overflow << b["fault_overflow"]) \
        | (golden.error << b["error"])
    assert regs["STATUS"] == status, f"STATUS {regs['STATUS']:#x}, golden {status:#x} (and not busy)"
    assert out["program"] == model["program"], "program beats not where write-verify's writes put them"
    assert out["table"] == model["table"]
    assert [c[0] for c in out["inputs"]] == model["first_in"]
    assert [out["out_cycles"][(i + 1) * n - 1] for i in range(len(x))] == model["last_out"]
    assert regs["CYCLES"] == model["end"]
    return golden, writes, logged


@pytest.mark.parametrize("name", CONFIGS)
def test_tile_mvm_and_cycle_model(name, seed):
    """Ideal crossbars: every cell verifies at its first write, MVMs bit-exact, every transfer on the model."""
    cfg = CONFIGS[name]
    golden, writes, logged = run_session(cfg, 11, 2, seed)
    assert set(writes) == {1} and not any(logged)
    assert golden.counters["fault_count"] == 0


def test_tile_write_verify_retries_and_fault_log(seed):
    """Pulse errors and stuck cells: retried writes, cells logged as faulty beyond what the log holds, read noise;
    the fault log, FAULT_COUNT/FAULT_DROPPED/VERIFY_ITERS/CELLS_PROGRAMMED, overflow and CYCLES exact."""
    cfg = dataclasses.replace(FAULTY, seed=seed % (2**31 - 1), fault_seed=seed % 2**32)
    golden, writes, logged = run_session(cfg, 24, 2, seed)
    # the paths under test were taken (each fails with probability far below 1e-9 on 192 cells)
    assert any(w > 1 and not bad for w, bad in zip(writes, logged)), "no cell verified after a retry"
    assert golden.counters["fault_dropped"] > 0, "the fault log never overflowed"
    assert golden.counters["verify_iters"] > len(writes)


V2 = {
    # 4 crossbars (8 × 12, 3 × 4 OUs), one ADC per crossbar, offset encoding: an OU's columns route to 2 outputs
    "x4_adc1_offset": (RramTileConfig(xbar_rows=8, xbar_cols=12, n_xbars=4, ou_rows=3, ou_cols=4, adcs_per_xbar=1,
                                      adc_bits=4, input_bits=4, weight_bits=4, encoding="offset"), 11, 6, False),
    # random v2 routing (shared bitlines, up to 4 outputs per OU), 2 ADCs of 4, 2-bit DAC, unsigned inputs
    "routed_adc2_dac2": (RramTileConfig(xbar_rows=12, xbar_cols=12, n_xbars=2, ou_rows=4, ou_cols=4, adcs_per_xbar=2,
                                        adc_bits=3, dac_bits=2, input_bits=5, input_signed=False, weight_bits=4,
                                        max_outputs=5, max_inputs=9), 9, 5, True),
}


@pytest.mark.parametrize("name", V2)
def test_tile_v2_parallel_lanes_stream(name, seed):
    """Parallel lanes with ADC sharing and per-OU routing: 8 vectors back to back, outputs bit-exact, STALLS and
    BUSYx exact, every first input and last output on stream_schedule."""
    cfg, k, n, routed = V2[name]
    golden, _, _ = run_session(cfg, k, n, seed, vectors=8, routed=routed)
    assert golden.counters["mvms"] == 8
    if routed:      # (one ADC never stalls: every column takes its own cycle anyway)
        assert golden.counters["stalls"] > 0, "no OU routed to two outputs: the stall rule was not exercised"
    assert golden.counters["busy3" if cfg.n_xbars == 4 else "busy1"] > 0


def test_steps_just_in_time(seed):
    """K = 1 right after the tables (ideal host): the lanes read their first entry 1 cycle after its conversion
    steps (ConversionSteps, 4 cycles behind the table beat) reach the lane; outputs, STALLS and cycles exact."""
    cfg, _, n, _ = V2["routed_adc2_dac2"]
    golden, _, _ = run_session(cfg, 1, n, seed, vectors=2, routed=True)
    assert golden.counters["mvms"] == 2


def test_table_latency_status_and_next_beats(seed):
    """docs/rram.md "Timing", table beats: a bad OU entry (BAD_ROUTE) at edge t changes STATUS[7:4] and ERRORS at
    t + 1 + TABLE_LATENCY's edge (read in cycle t + 2, unchanged in t + 1), STATUS.busy is 1 in the cycle after
    every table beat; after the last table beat at t a program beat transfers at t + 2, and after a valid load the
    loader sees a vector at t + 2 (first beat t + 3); the load after the bad one and its MVM are bit-exact."""
    cfg = CONFIGS["c2_ou5x4_s4_lossy"]
    mapping, x = session(cfg, 11, 2, seed, vectors=1)
    golden = TileGolden(cfg)
    golden.program(mapping.levels, footprint(mapping))
    good = tables_of(cfg, mapping)
    bad = good.select(slice(None))
    bad.ou_col_output = np.array(bad.ou_col_output)
    bad.ou_col_output[0, 0] = good.n_outputs            # route to output N: BAD_ROUTE
    assert golden.load_tables(bad) == beats.ERROR_CODES["BAD_ROUTE"]
    xbar, row, col, level = program_cells(cfg, mapping.levels, footprint(mapping))[0].tolist()
    golden.program_cell(xbar, row, col, level)
    assert golden.load_tables(good) == 0
    y = golden.mvm(x[0])
    dut = build(cfg)
    bench = Bench(dut, within=20000)
    out, seen = {}, []
    status, errors = beats.REGISTER_ADDR["STATUS"], beats.REGISTER_ADDR["ERRORS"]

    async def until_idle(ctx, now):
        """Cycles until STATUS.busy reads 0 (write-verify of the last cell over): the cycle it does."""
        while True:
            ctx.set(dut.reg_addr, status)
            if not ctx.get(dut.reg_data) & 1:
                return now
            await ctx.tick()
            now += 1

    async def host(ctx):
        _, now = await put_all(ctx, dut.program, driver.program_beats(cfg, mapping.levels, footprint(mapping)),
                               bench=bench)
        now = await until_idle(ctx, now)
        out["bad"], now = await put_all(ctx, dut.tables, driver.table_beats(cfg, bad), start=now, bench=bench)
        cell_beat = beats.pack_beats(beats.program_layout(beats.params_of(cfg)),
                                     {"xbar": [xbar], "row": [row], "col": [col], "level": [level]})
        out["cell"], now = await put_all(ctx, dut.program, cell_beat, start=now, bench=bench)
        now = await until_idle(ctx, now)
        out["good"], now = await put_all(ctx, dut.tables, driver.table_beats(cfg, good), start=now, bench=bench)
        out["inputs"], now = await put_all(ctx, dut.inputs, driver.input_beats(cfg, x[0]), start=now, bench=bench)

    async def monitor(ctx):
        while True:     # per cycle: (STATUS, ERRORS) as read in that cycle
            ctx.set(dut.reg_addr, status)
            st = ctx.get(dut.reg_data)
            ctx.set(dut.reg_addr, errors)
            seen.append((st, ctx.get(dut.reg_data)))
            await ctx.tick()

    async def consumer(ctx):
        words, _, _ = await get_all(ctx, dut.outputs, len(y), bench=bench)
        out["y"] = driver.outputs_from_beats(cfg, words, len(y))

    bench.add(host)
    bench.add(consumer)
    bench.add(monitor, background=True)
    bench.run()
    np.testing.assert_array_equal(out["y"][0], y)
    code = beats.STATUS_BITS["error"]
    t = out["bad"][1]       # the bad OU entry, right after the HEADER
    assert [(st >> code & 0xF, e) for st, e in seen[t:t + 3]] == [(0, 0), (0, 0), (beats.ERROR_CODES["BAD_ROUTE"], 1)]
    for c in out["bad"] + out["good"]:
        assert seen[c + 1][0] & 1, f"STATUS.busy low in the cycle after the table beat at {c}"
    for c in (out["bad"][-1], out["good"][-1]):
        assert not seen[c + 2][0] & 1, f"STATUS.busy high 2 cycles after the last table beat at {c}"
    assert out["cell"][0] == out["bad"][-1] + 1 + perf.TABLE_LATENCY
    assert out["inputs"][0] == out["good"][-1] + 1 + perf.TABLE_LATENCY + perf.INPUT_START
    assert seen[out["good"][-1] + 1][0] >> beats.STATUS_BITS["tables_valid"] & 1 == 0
    assert seen[out["good"][-1] + 2][0] >> beats.STATUS_BITS["tables_valid"] & 1 == 1
    assert seen[-1][1] == golden.counters["errors"] == 1
