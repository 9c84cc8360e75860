"""The AXI wrapper's generic paths in the Amaranth simulator, on a small component of its own: an input port as a
read-write register, byte strobes, AW/W in either order, SLVERR with nothing written, a stream passed through."""

import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.axi.designs import axi_wrap
from hw.axi.wrapper import OKAY, SLVERR


class Toy(wiring.Component):
    """``echo = mode + 1`` (40 bits), ``o`` = ``s`` (12-bit beats, combinational)."""

    def __init__(self):
        super().__init__({"mode": In(40), "echo": Out(40), "s": In(stream.Signature(12)),
                          "o": Out(stream.Signature(12))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.echo.eq(self.mode + 1)
        wiring.connect(m, wiring.flipped(self.s), wiring.flipped(self.o))
        return m


def _wrapper():
    return axi_wrap(Toy(), name="toy_axi", meanings={"mode": "a mode", "echo": "mode + 1"})


def test_toy_map():
    wrapper = _wrapper()
    Fragment.get(wrapper, None)          # elaborates (a design that is never simulated would warn as unused)
    regmap = wrapper.regmap
    assert [(r.name, r.offset, r.access) for r in regmap.registers] == [
        ("MODE_LO", 0, "rw"), ("MODE_HI", 4, "rw"), ("ECHO_LO", 8, "r"), ("ECHO_HI", 12, "r")]
    assert regmap["MODE_HI"].fields[0].width == 8


@pytest.mark.parametrize("aw_first", [True, False])
def test_toy_through_axi_lite(aw_first):
    dut = _wrapper()
    sim = Simulator(dut)
    log = []

    async def tick(ctx):
        ctx.set(dut.aclk, 1)
        await ctx.delay(5e-9)
        ctx.set(dut.aclk, 0)
        await ctx.delay(5e-9)

    async def write(ctx, addr, data, strb=0xF):
        first, second = ((dut.s_axil_awvalid, dut.s_axil_awready), (dut.s_axil_wvalid, dut.s_axil_wready))
        if not aw_first:
            first, second = second, first
        ctx.set(dut.s_axil_awaddr, addr)
        ctx.set(dut.s_axil_wdata, data)
        ctx.set(dut.s_axil_wstrb, strb)
        for valid, ready in (first, second):       # one channel after the other, one cycle apart
            ctx.set(valid, 1)
            while not ctx.get(ready):
                await tick(ctx)
            await tick(ctx)
            ctx.set(valid, 0)
        ctx.set(dut.s_axil_bready, 1)
        for _ in range(10):
            if ctx.get(dut.s_axil_bvalid):
                resp = ctx.get(dut.s_axil_bresp)
                await tick(ctx)
                ctx.set(dut.s_axil_bready, 0)
                return resp
            await tick(ctx)
        raise AssertionError("no write response")

    async def read(ctx, addr):
        ctx.set(dut.s_axil_araddr, addr)
        ctx.set(dut.s_axil_arvalid, 1)
        await tick(ctx)
        ctx.set(dut.s_axil_arvalid, 0)
        ctx.set(dut.s_axil_rready, 1)
        for _ in range(10):
            if ctx.get(dut.s_axil_rvalid):
                out = ctx.get(dut.s_axil_rresp), ctx.get(dut.s_axil_rdata)
                await tick(ctx)
                ctx.set(dut.s_axil_rready, 0)
                return out
            await tick(ctx)
        raise AssertionError("no read response")

    async def bench(ctx):
        ctx.set(dut.aresetn, 0)
        await tick(ctx)
        ctx.set(dut.aresetn, 1)
        assert await read(ctx, 0x8) == (OKAY, 1)                            # echo = mode + 1, mode = 0 after reset
        assert await write(ctx, 0x0, 0x12345678) == OKAY
        assert await write(ctx, 0x4, 0xFFFFFFAB, strb=0b0001) == OKAY
        assert await write(ctx, 0x0, 0xAABBCCDD, strb=0b0101) == OKAY       # bytes 0 and 2 only
        assert ctx.get(dut.inner.mode) == 0xAB_12BB_56DD
        assert await read(ctx, 0x0) == (OKAY, 0x12BB56DD)
        assert await read(ctx, 0x4) == (OKAY, 0xAB)
        assert await read(ctx, 0xC) == (OKAY, 0xAB) and await read(ctx, 0x8) == (OKAY, 0x12BB56DE)
        assert await write(ctx, 0x8, 0) == SLVERR                           # read-only
        assert await write(ctx, 0x10, 0) == SLVERR                          # unmapped
        assert await write(ctx, 0xFFC, 0) == SLVERR
        assert await read(ctx, 0x10) == (SLVERR, 0)
        assert await read(ctx, 0x2) == (OKAY, 0x12BB56DD)                   # address bits 1:0 ignored
        assert ctx.get(dut.inner.mode) == 0xAB_12BB_56DD                    # nothing written by the SLVERRs
        ctx.set(dut.s_axis_s_tdata, 0xFABC)                                 # padding bits 15:12 ignored
        ctx.set(dut.s_axis_s_tvalid, 1)
        ctx.set(dut.m_axis_o_tready, 1)
        await ctx.delay(1e-9)
        assert (ctx.get(dut.m_axis_o_tdata), ctx.get(dut.m_axis_o_tvalid), ctx.get(dut.m_axis_o_tlast),
                ctx.get(dut.s_axis_s_tready)) == (0xABC, 1, 1, 1)
        log.append("done")

    sim.add_testbench(bench)
    sim.run()
    assert log == ["done"]
