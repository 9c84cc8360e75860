"""The cocotbext-axi side of a wrapped design: clock and reset, the AXI4-Lite master, one AXI4-Stream source or
sink per stream with seeded pause generators, a protocol checker on every channel the design drives, and register
access by name (the map from :func:`gen.axi.verilog.register_map_of`, the one definition).
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiResp, AxiStreamBus, AxiStreamFrame, AxiStreamSink,
                           AxiStreamSource)

from gen.axi.verilog import register_map_of
from sim.common.stream import random_pauses, timeout_error

__all__ = ["AxiEnv", "OKAY", "SLVERR"]

OKAY, SLVERR = AxiResp.OKAY, AxiResp.SLVERR


class AxiEnv:
    """Drives one wrapped DUT (``<top>_axi``) through its AXI ports only.

    Parameters
    ----------
    dut : cocotb handle
    cfg : config
        The wrapped design's config (the map and the stream widths come from :func:`gen.axi.verilog.register_map_of`).
    seed : int
        Seeds each stream's pause pattern independently.
    gap, stall : float
        Probability per cycle of a ``tvalid`` gap on every source and of ``tready`` low on every sink.

    Attributes
    ----------
    regmap : hw.axi.regmap.RegisterMap
    sources, sinks : dict
        ``AxiStreamSource`` / ``AxiStreamSink`` by stream name.
    violations : list of str
        Protocol violations seen (a ``*valid`` dropped, or its payload changed, before its handshake).
    """

    def __init__(self, dut, cfg, *, seed, gap=0.3, stall=0.3):
        self.dut, self.cfg = dut, cfg
        self.regmap, self.axis, widths = register_map_of(cfg)
        self.beat_bytes = {name: bits // 8 for name, bits in widths.items()}
        self.rng = random.Random(seed)
        self.gap, self.stall = gap, stall
        self.sources, self.sinks, self.violations = {}, {}, []
        self.handshakes = {}
        self.cycle = 0

    async def start(self, clock_ns=10):
        """Clock, 4 cycles of reset, the agents (each with its own seeded pause generator, the AXI4-Lite channels
        included), the checkers."""
        dut, gap, stall = self.dut, self.gap, self.stall
        Clock(dut.aclk, clock_ns, unit="ns").start()
        dut.aresetn.value = 0
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn,
                                  reset_active_level=False)
        # gaps on AW, W and AR (so AW and W arrive in either order), backpressure on B and R
        w, r = self.axil.write_if, self.axil.read_if
        for channel, p in ((w.aw_channel, gap), (w.w_channel, gap), (w.b_channel, stall), (r.ar_channel, gap),
                           (r.r_channel, stall)):
            channel.set_pause_generator(random_pauses(random.Random(self.rng.getrandbits(64)), p))
        for name, prefix in self.axis.items():
            bus = AxiStreamBus.from_prefix(dut, prefix)
            rng = random.Random(self.rng.getrandbits(64))
            if prefix.startswith("s_"):
                agent = self.sources[name] = AxiStreamSource(bus, dut.aclk, dut.aresetn, reset_active_level=False)
                agent.set_pause_generator(random_pauses(rng, gap))
            else:
                agent = self.sinks[name] = AxiStreamSink(bus, dut.aclk, dut.aresetn, reset_active_level=False)
                agent.set_pause_generator(random_pauses(rng, stall))
                self._check(f"{prefix}", ("tdata", "tlast"), "tvalid", "tready")
        self._check("s_axil_b", ("bresp",), "bvalid", "bready", prefix="s_axil_")
        self._check("s_axil_r", ("rdata", "rresp"), "rvalid", "rready", prefix="s_axil_")
        cocotb.start_soon(self._count())
        await ClockCycles(dut.aclk, 4)
        dut.aresetn.value = 1
        await RisingEdge(dut.aclk)

    async def _count(self):
        while True:
            await RisingEdge(self.dut.aclk)
            self.cycle += 1

    def _check(self, channel, payload, valid, ready, *, prefix=None):
        """AXI rule: once ``valid`` is high it stays high, with the same payload, until ``ready``."""
        pre = f"{channel}_" if prefix is None else prefix
        sig = lambda n: getattr(self.dut, pre + n)        # noqa: E731

        async def watch():
            held = None
            self.handshakes[channel] = 0
            while True:
                await RisingEdge(self.dut.aclk)
                await ReadOnly()
                if not sig(valid).value.is_resolvable or not int(self.dut.aresetn.value):
                    held = None
                    continue
                if not int(sig(valid).value):
                    if held is not None:
                        self.violations.append(f"{pre}{valid} dropped before the handshake at cycle {self.cycle}")
                    held = None
                    continue
                if not all(sig(p).value.is_resolvable for p in payload):
                    self.violations.append(f"{pre}{valid} high with an X/Z payload at cycle {self.cycle}")
                    continue
                now = tuple(int(sig(p).value) for p in payload)
                if held is not None and now != held:
                    self.violations.append(f"{pre}{valid}: payload changed before the handshake at cycle {self.cycle}")
                fire = int(sig(valid).value) and int(sig(ready).value)
                self.handshakes[channel] += fire
                held = now if int(sig(valid).value) and not fire else None
        cocotb.start_soon(watch())

    # ---- streams ------------------------------------------------------------------------------------------------

    def send(self, name, words):
        """Queue the beats ``words`` (integers, the design's beat layout) on stream ``name`` as one frame."""
        nb = self.beat_bytes[name]
        self.sources[name].send_nowait(AxiStreamFrame(b"".join(int(w).to_bytes(nb, "little") for w in words)))

    async def recv(self, name, within=200_000):
        """The next frame (beats up to ``tlast``) of stream ``name`` as integers."""
        sink, nb = self.sinks[name], self.beat_bytes[name]
        for _ in range(within):
            if not sink.empty():
                data = bytes(sink.recv_nowait().tdata)
                return [int.from_bytes(data[i:i + nb], "little") for i in range(0, len(data), nb)]
            await RisingEdge(self.dut.aclk)
        raise timeout_error(f"a frame on m_axis_{name}", within)

    async def drained(self, within=200_000):
        """Every queued source beat sent."""
        for _ in range(within):
            if all(src.empty() and src.idle() for src in self.sources.values()):
                return
            await RisingEdge(self.dut.aclk)
        raise timeout_error("the sources to drain", within)

    # ---- registers ----------------------------------------------------------------------------------------------

    async def read(self, name):
        """Register ``name`` (``OKAY`` asserted)."""
        resp = await self.axil.read(self.regmap[name].offset, 4)
        assert resp.resp == OKAY, f"read of {name} answered {resp.resp!r}"
        return int.from_bytes(resp.data, "little")

    async def value(self, name):
        """A value split over ``<name>_LO``/``_HI`` registers, or register ``name``."""
        regs = self.regmap.registers
        words = [r for r in regs if r.name == name] or [r for r in regs if r.name in (f"{name}_LO", f"{name}_HI")]
        assert words, f"no register {name}"
        out = 0
        for i, reg in enumerate(words):
            out |= await self.read(reg.name) << (32 * i)
        return out

    async def write(self, name, value):
        """Write register ``name``; returns the response (``OKAY`` or ``SLVERR``)."""
        resp = await self.axil.write(self.regmap[name].offset, int(value).to_bytes(4, "little"))
        return resp.resp

    async def raw_read(self, offset):
        resp = await self.axil.read(offset, 4)
        return resp.resp, int.from_bytes(resp.data, "little")

    async def raw_write(self, offset, value):
        return (await self.axil.write(offset, int(value).to_bytes(4, "little"))).resp

    async def unmapped_rejected(self):
        """Reads and writes of unmapped words and writes of read-only registers answer ``SLVERR`` and change nothing
        (every writable register read back before and after)."""
        writable = [r.name for r in self.regmap.registers if r.source[0] in ("field", "input")]
        before = {n: await self.read(n) for n in writable}
        end = 4 * len(self.regmap.registers)
        for offset in sorted({end, (1 << self.regmap.addr_bits) - 4, end + 4 * self.rng.randrange(1 << 6)}):
            if offset < 1 << self.regmap.addr_bits:
                assert await self.raw_write(offset, 0xFFFFFFFF) == SLVERR, f"write to unmapped {offset:#x}"
                resp, data = await self.raw_read(offset)
                assert (resp, data) == (SLVERR, 0), f"read of unmapped {offset:#x}: {resp!r}, {data:#x}"
        for reg in self.regmap.registers:
            if not reg.writable:
                assert await self.write(reg.name, 0xFFFFFFFF) == SLVERR, f"write to read-only {reg.name}"
        assert {n: await self.read(n) for n in writable} == before, "a rejected write changed a register"

    def check_protocol(self):
        assert not self.violations, "AXI protocol violations:\n" + "\n".join(self.violations[:10])
