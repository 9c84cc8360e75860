"""CrossbarModel in the Amaranth simulator: every response against CrossbarMirror, backpressure, timing, checks."""

import gc
import random
from types import SimpleNamespace

import pytest

from hw.rram.crossbar import CrossbarModel, Op
from hw.formats.mvm import lossless_adc_bits
from sim.rram.xbar import CrossbarMirror
from hw.formats.faults import fault_map
from sim.common.amaranth_bench import Bench, bound
from sim.common.amaranth_streams import get_all, put_all
from sim.rram.crossbar_tb import encode, expected_words, random_commands

# Constructors that raise leave a never-elaborated Elaboratable behind; Amaranth warns about it at exit.
pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.fixture(autouse=True)
def collect_unused_models():
    """Collect those here, under the filter above, rather than during whichever test runs next."""
    yield
    gc.collect()


def params_for(name, seed):
    """Parameter sets: the random parts (stuck map, LFSR seed) follow the test's seed."""
    s = seed % (2**31 - 1)
    base = {
        # OU rows partial at the edge (16 = 9 + 7), ADC one bit short of lossless: clipping; no faults.
        "16x16_c2_ou9x8_clip": dict(n_xbars=2, xbar_rows=16, xbar_cols=16, cell_bits=2, ou_rows=9, ou_cols=8,
                                     dac_bits=1, adc_bits=4),
        # Partial bitline groups (10 = 4 + 4 + 2), 2-bit DAC, every fault on.
        "12x10_c4_ou4x4_faults": dict(n_xbars=3, xbar_rows=12, xbar_cols=10, cell_bits=4, ou_rows=4, ou_cols=4,
                                      dac_bits=2, adc_bits=8, pulse_error=20000, read_noise=3),
        # Binary cells, writes always miss, noise of 1 at a lossless ADC.
        "16x16_c1_ou4x4_always_miss": dict(n_xbars=1, xbar_rows=16, xbar_cols=16, cell_bits=1, ou_rows=4, ou_cols=4,
                                           dac_bits=1, adc_bits=3, pulse_error=65536, read_noise=1),
        # One OU covers the whole crossbar; noise far above the signal: clamps at both ends.
        "5x7_c2_whole_ou_loud": dict(n_xbars=1, xbar_rows=5, xbar_cols=7, cell_bits=2, ou_rows=5, ou_cols=7,
                                     dac_bits=3, adc_bits=5, read_noise=40),
        # Smallest model: 1-bit fields, so out-of-range xbar indices are the only bad addresses.
        "1x1_c1_tiny": dict(n_xbars=1, xbar_rows=1, xbar_cols=1, cell_bits=1, ou_rows=1, ou_cols=1, dac_bits=1,
                              adc_bits=1, pulse_error=30000, read_noise=1),
    }[name]
    p = dict(base, seed=s)
    if name.endswith(("faults", "always_miss")):
        p["stuck"] = fault_map(seed, 0.05, 0.05, (p["n_xbars"], p["xbar_rows"], p["xbar_cols"]),
                               cell_bits=p["cell_bits"])
    return p


NAMES = ["16x16_c2_ou9x8_clip", "12x10_c4_ou4x4_faults", "16x16_c1_ou4x4_always_miss", "5x7_c2_whole_ou_loud",
         "1x1_c1_tiny"]


def simulate(params, commands, *, seed, gap, stall):
    """Run ``commands`` through a CrossbarModel; return (response words, cmd cycles, rsp cycles, stalls)."""
    dut = CrossbarModel(**params)
    words = encode(params, commands)
    n_rsp = sum(op in (Op.READ_CELL.value, Op.READ_OU.value) for op, *_ in commands)
    prng, crng = random.Random(seed), random.Random(seed + 1)
    out = {}
    # full rate: one command per cycle, the last response 2 cycles after the last command (the model's latency)
    model = len(commands) + 2
    bench = Bench(dut, within=bound(model, gap=gap, stall=stall), model=model)
    # get_all expects a View payload; rsp's is a plain unsigned Signal.
    rsp = SimpleNamespace(valid=dut.rsp.valid, ready=dut.rsp.ready,
                          payload=SimpleNamespace(as_value=lambda: dut.rsp.payload))

    async def producer(ctx):
        out["cmd_cycles"], _ = await put_all(ctx, dut.cmd, words, rng=prng, gap=gap, bench=bench)

    async def consumer(ctx):
        out["words"], out["rsp_cycles"], out["stalls"] = await get_all(ctx, rsp, n_rsp, rng=crng, stall=stall,
                                                                       bench=bench)
        for _ in range(4):        # nothing more may come out
            assert not ctx.get(dut.rsp.valid), "a response beyond the expected count"
            await ctx.tick()

    bench.add(producer)
    bench.add(consumer)
    bench.run()
    return out, n_rsp


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("gap,stall", [(0.3, 0.4), (0.0, 0.0)], ids=["gaps_backpressure", "full_rate"])
def test_crossbar_matches_mirror(name, gap, stall, seed):
    params = params_for(name, seed)
    rng = random.Random(seed)
    commands = random_commands(params, 300, rng)
    mirror = CrossbarMirror(**params)
    expected = expected_words(params, commands, mirror)
    out, n_rsp = simulate(params, commands, seed=seed, gap=gap, stall=stall)
    assert len(out["words"]) == len(expected) == n_rsp
    for i, (got, want) in enumerate(zip(out["words"], expected)):
        assert got == want, f"response {i}: got {got:#x}, mirror {want:#x}"
    assert len(out["cmd_cycles"]) == len(commands)
    if stall:
        assert out["stalls"] > 0, "backpressure was never exercised"
    else:
        # Full rate: one command per cycle, each response two cycles after its command.
        assert out["cmd_cycles"] == list(range(len(commands)))
        reads = [t for t, (op, *_) in zip(out["cmd_cycles"], commands) if op in (1, 2)]
        assert out["rsp_cycles"] == [t + 2 for t in reads]
    if params.get("pulse_error"):
        assert mirror.writes_missed > 0, "no write missed its target: the pulse-error path was not exercised"


def test_program_then_read_every_ou(seed):
    """Program every cell with writes (pulse errors on), read back every cell and every OU."""
    params = params_for("12x10_c4_ou4x4_faults", seed)
    rng = random.Random(seed)
    n, rows, cols = params["n_xbars"], params["xbar_rows"], params["xbar_cols"]
    cmds = [(0, x, r, c, rng.randrange(16), ()) for x in range(n) for r in range(rows) for c in range(cols)]
    cmds += [(1, x, r, c, 0, ()) for x in range(n) for r in range(rows) for c in range(cols)]
    cmds += [(2, x, g, h, 0, tuple(rng.randrange(4) for _ in range(4))) for x in range(n) for g in range(3)
             for h in range(3)]
    mirror = CrossbarMirror(**params)
    expected = expected_words(params, cmds, mirror)
    out, n_rsp = simulate(params, cmds, seed=seed, gap=0.1, stall=0.2)
    assert out["words"] == expected and len(expected) == n_rsp == n * rows * cols + n * 9
    # Stuck cells kept their level, the others hold what was written, up to one level off.
    for x, r, c, lvl in params["stuck"]:
        assert mirror.levels[x, r, c] == lvl


def test_lossless_adc_bits():
    for ou_rows, cell_bits, dac_bits in [(9, 2, 1), (4, 4, 2), (128, 1, 1), (1, 1, 1), (16, 4, 8)]:
        dut = CrossbarModel(n_xbars=1, xbar_rows=128, xbar_cols=8, cell_bits=cell_bits, ou_rows=ou_rows, ou_cols=8,
                            dac_bits=dac_bits, adc_bits=8)
        assert dut.lossless_adc_bits == lossless_adc_bits(ou_rows, cell_bits, dac_bits)
        full = ou_rows * ((1 << cell_bits) - 1) * ((1 << dac_bits) - 1)
        assert full < 1 << dut.lossless_adc_bits and (full == 0 or full >= 1 << (dut.lossless_adc_bits - 1))


BASE = dict(n_xbars=1, xbar_rows=8, xbar_cols=8, cell_bits=2, ou_rows=4, ou_cols=4, dac_bits=1, adc_bits=4)


@pytest.mark.parametrize("change,error,match", [
    (dict(cell_bits=3), ValueError, "cell_bits = 3"),
    (dict(ou_rows=9), ValueError, "ou_rows = 9 is out of range: allowed 1 … 8"),
    (dict(pulse_error=65537), ValueError, "pulse_error = 65537"),
    (dict(read_noise=-1), ValueError, "read_noise = -1"),
    (dict(seed=2**31 - 1), ValueError, "seed = 2147483647"),
    (dict(adc_bits=1.5), TypeError, "adc_bits = 1.5 is a float, not an integer"),
    (dict(stuck=[(0, 8, 0, 1)]), ValueError, r"stuck\[0\].row = 8 is out of range"),
    (dict(stuck=[(0, 1, 1, 4)]), ValueError, r"stuck\[0\].level = 4"),
    (dict(stuck=[(0, 1, 1, 3), (0, 1, 1, 0)]), ValueError, r"stuck\[1\] repeats cell"),
    (dict(stuck=[(0, 1, 1)]), ValueError, r"stuck\[0\] = \(0, 1, 1\) is not"),
])
def test_bad_parameters(change, error, match):
    with pytest.raises(error, match=match):
        CrossbarModel(**dict(BASE, **change))


def test_keyword_only():
    with pytest.raises(TypeError):
        CrossbarModel(1, 8, 8, 2, 4, 4, 1, 4)
