"""The crossbar's LFSR: maximal polynomial, the numpy mirror against the documented step rule and the RTL."""

import random

import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from hw.rram.lfsr import LFSR, MAX_SEED, PERIOD, TAPS, WIDTH, seed_state
from sim.rram.lfsr import LfsrMirror


def _polymulmod(a, b, mod, deg):
    """a · b mod ``mod`` in GF(2)[x] (ints as coefficient bit vectors)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a >> deg & 1:
            a ^= mod
    return out


def test_polynomial_is_primitive():
    # Characteristic polynomial of b[k] = b[k-28] ^ b[k-31]: x^31 + x^3 + 1. The period 2^31 - 1 is a prime, so
    # x has order exactly 2^31 - 1 (the stream is maximal) iff x^(2^31 - 1) = 1 and x != 1.
    assert TAPS == (28, 31) and WIDTH == 31 and PERIOD == 2**31 - 1
    poly = (1 << 31) | (1 << (31 - 28)) | 1
    result, base, e = 1, 0b10, PERIOD
    while e:
        if e & 1:
            result = _polymulmod(result, base, poly, 31)
        base = _polymulmod(base, base, poly, 31)
        e >>= 1
    assert result == 1


def test_mirror_follows_documented_step_rule(seed):
    """``new = state[27] ^ state[30]; state = (state << 1 | new) & mask``; draws take bits LSB first."""
    s0 = random.Random(seed).randrange(MAX_SEED + 1)
    mirror = LfsrMirror(s0, stream=3)
    state = seed_state(s0, 3)
    assert mirror.state == state
    rng = random.Random(seed + 1)
    for _ in range(200):
        n = rng.choice([1, 2, 16, 17, 27, 28, 29, 31, 32, 60, 100])
        expected = 0
        for i in range(n):
            new = (state >> 27 ^ state >> 30) & 1
            state = ((state << 1) | new) & PERIOD
            expected |= new << i
        assert mirror.draw(n) == expected
        assert mirror.state == state


def test_seed_state():
    assert seed_state(0) == 1 and seed_state(MAX_SEED) == PERIOD
    states = {seed_state(s, k) for s in range(50) for k in range(4)}
    assert len(states) == 200 and 0 not in states
    with pytest.raises(ValueError, match="seed = 2147483647 is out of range"):
        seed_state(PERIOD)
    with pytest.raises(TypeError, match="seed = 1.0 is a float, not an integer"):
        seed_state(1.0)
    with pytest.raises(ValueError, match="stream = 256"):
        seed_state(1, 256)


@pytest.mark.parametrize("bits", [1, 17, 28, 31, 45, 128])
def test_rtl_matches_mirror(bits, seed):
    rng = random.Random(seed)
    s0, stream = rng.randrange(MAX_SEED + 1), rng.randrange(4)
    dut = LFSR(bits=bits, seed=s0, stream=stream)
    mirror = LfsrMirror(s0, stream)
    assert dut.init_state == mirror.state
    checked = []

    async def bench(ctx):
        for _ in range(150):
            en = rng.random() < 0.6
            ctx.set(dut.en, en)
            got = ctx.get(dut.draw)
            if en:
                want = mirror.draw(bits)
                checked.append(got == want)
                assert got == want, f"draw {len(checked) - 1}: RTL {got:#x}, mirror {want:#x}"
            await ctx.tick()
        ctx.set(dut.en, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) > 50


def test_rtl_reset_restores_seed_state():
    dut = LFSR(bits=5, seed=42)
    top = Module()
    top.domains.sync = sync = ClockDomain()
    top.submodules.lfsr = dut
    seen = {}

    async def bench(ctx):
        seen["first"] = ctx.get(dut.draw)
        ctx.set(dut.en, 1)
        for _ in range(7):
            await ctx.tick()
        seen["moved"] = ctx.get(dut.draw)
        ctx.set(dut.en, 0)
        ctx.set(sync.rst, 1)
        await ctx.tick()
        ctx.set(sync.rst, 0)
        seen["after"] = ctx.get(dut.draw)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["first"] == LfsrMirror(42).draw(5) == seen["after"]
    assert seen["moved"] == LfsrMirror(42).draws(8, 5)[7]
