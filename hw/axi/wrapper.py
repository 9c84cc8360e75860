"""AXI wrapper of any sparsegen design: AXI4-Stream for its streams, an AXI4-Lite slave for its registers.

docs/integration.md specifies the ports, the beat layouts, the ``tlast`` rules and the register protocol.
"""

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Module, ResetSignal, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.axi.regmap import ADDR_BITS, DATA_BITS, RegisterMap
from hw.checks import check_instance

__all__ = ["AxiWrapper", "OKAY", "SLVERR", "tdata_bits", "stream_members"]

OKAY, SLVERR = 0b00, 0b10


def tdata_bits(payload_bits: int) -> int:
    """``tdata`` width of a stream whose beat is ``payload_bits`` wide: rounded up to whole bytes (AXI4-Stream)."""
    return 8 * -(-payload_bits // 8)


def stream_members(component) -> dict:
    """``{name: member}`` of the stream members of ``component``'s signature, in signature order."""
    return {name: member for name, member in component.signature.members.items()
            if member.is_signature and isinstance(member.signature, stream.Signature)}


def _lite_members():
    """The AXI4-Lite slave ports (``s_axil_*``), AMBA names; ``awprot``/``arprot`` are accepted and ignored."""
    return {
        "s_axil_awaddr": In(ADDR_BITS), "s_axil_awprot": In(3), "s_axil_awvalid": In(1), "s_axil_awready": Out(1),
        "s_axil_wdata": In(DATA_BITS), "s_axil_wstrb": In(DATA_BITS // 8), "s_axil_wvalid": In(1),
        "s_axil_wready": Out(1),
        "s_axil_bresp": Out(2), "s_axil_bvalid": Out(1), "s_axil_bready": In(1),
        "s_axil_araddr": In(ADDR_BITS), "s_axil_arprot": In(3), "s_axil_arvalid": In(1), "s_axil_arready": Out(1),
        "s_axil_rdata": Out(DATA_BITS), "s_axil_rresp": Out(2), "s_axil_rvalid": Out(1), "s_axil_rready": In(1),
    }


class AxiWrapper(wiring.Component):
    """``inner`` behind AXI4-Stream ports and an AXI4-Lite slave (keyword-only arguments but ``inner``).

    Every stream of ``inner`` not driven from the bus becomes an AXI4-Stream port: ``s_axis_<name>_*`` for an input
    (``tdata``, ``tvalid``, ``tready``, ``tlast``), ``m_axis_<name>_*`` for an output. ``tdata`` is the stream's
    beat, bit for bit from bit 0, zero-extended to whole bytes (input padding bits are ignored). Input ``tlast``
    is ignored (a beat with a ``last`` field carries it in ``tdata``); output ``tlast`` is the beat's ``last``
    field if it has one, else the ``jobs`` tracker's ``last`` for its results stream, else 1 (every beat is a
    packet). The wrapper adds no register stage on a stream: latency 0 cycles, the design's timing.

    The AXI4-Lite slave (32-bit data, ``ADDR_BITS``-bit byte addresses) implements ``regmap``: a write takes
    its address and data in either order, writes in the cycle after both are held and answers on B the cycle after
    (``OKAY``; ``SLVERR`` with nothing written for an unmapped or read-only word, or ``start`` while ``pending``);
    ``wstrb`` selects the bytes written. A read answers on R the cycle after the address transfer (registered,
    ``SLVERR`` and data 0 for an unmapped word). Address bits 1:0 are ignored. At most one write and one read are
    outstanding (``awready``/``wready`` stay low while a response waits, ``arready`` likewise).

    Parameters
    ----------
    inner : wiring.Component
        The design (a ``GemmEngine``, ``RramTile``, ``SparseSystolicArray`` …), instantiated as
        submodule ``inner``.
    regmap : hw.axi.regmap.RegisterMap
        The register map; ``("field", s, f)``/``("ctrl", s)`` registers drive stream ``s`` of ``inner`` from the bus.
    jobs : tuple (tracker, in_stream, out_stream), optional
        A :class:`hw.axi.jobs.JobTracker` that sees ``in_stream``'s transfers (and gates them with its ``room``)
        and gives ``out_stream``'s ``tlast``.

    Members
    -------
    aclk : In(1); aresetn : In(1)
        Clock; synchronous active-low reset of the wrapper and ``inner``.
    s_axil_* : the AXI4-Lite slave.
    s_axis_<name>_* / m_axis_<name>_* : one AXI4-Stream port per stream.
    """

    def __init__(self, inner, *, regmap, jobs=None):
        check_instance("inner", inner, wiring.Component, "an Amaranth wiring.Component")
        check_instance("regmap", regmap, RegisterMap, "a hw.axi.regmap.RegisterMap")
        self._inner, self._map, self._jobs = inner, regmap, jobs
        self._streams = stream_members(inner)
        if jobs is not None:
            tracker, src, dst = jobs
            if not (hasattr(tracker, "last") and hasattr(tracker, "room")):
                raise TypeError(f"jobs = {jobs!r} is not allowed: allowed (JobTracker, in stream, out stream)")
            if src not in self._streams or dst not in self._streams:
                raise ValueError(f"jobs = {jobs!r} names a stream {type(inner).__name__} does not have: "
                                 f"allowed {', '.join(self._streams)}")
        self._bus_streams = {reg.source[1] for reg in regmap.registers if reg.source[0] == "ctrl"}
        for name in self._bus_streams:
            if name not in self._streams or self._streams[name].flow != In:
                raise ValueError(f"regmap drives {name!r}, which is not an input stream of {type(inner).__name__}")
        members = {"aclk": In(1), "aresetn": In(1), **_lite_members()}
        for name, member in self._streams.items():
            if name in self._bus_streams:
                continue
            width = tdata_bits(len(Value.cast(getattr(inner, name).payload)))
            if member.flow == In:
                members |= {f"s_axis_{name}_tdata": In(width), f"s_axis_{name}_tvalid": In(1),
                            f"s_axis_{name}_tready": Out(1), f"s_axis_{name}_tlast": In(1)}
            else:
                members |= {f"m_axis_{name}_tdata": Out(width), f"m_axis_{name}_tvalid": Out(1),
                            f"m_axis_{name}_tready": In(1), f"m_axis_{name}_tlast": Out(1)}
        super().__init__(members)

    @property
    def regmap(self) -> RegisterMap:
        return self._map

    @property
    def inner(self):
        return self._inner

    @property
    def axis(self) -> dict:
        """``{stream name: "s_axis_<name>" or "m_axis_<name>"}``: the AXI4-Stream ports' prefixes."""
        return {name: ("s_axis_" if member.flow == In else "m_axis_") + name
                for name, member in self._streams.items() if name not in self._bus_streams}

    def elaborate(self, platform):
        m = Module()
        # The AXI clock and reset become the design's own sync domain: the Verilog has aclk/aresetn, no clk/rst.
        m.domains.sync = ClockDomain("sync")
        m.d.comb += [ClockSignal("sync").eq(self.aclk), ResetSignal("sync").eq(~self.aresetn)]
        m.submodules.inner = inner = self._inner
        gate = 1
        if self._jobs is not None:
            tracker, src, dst = self._jobs
            m.submodules.jobs = tracker
            desc = getattr(inner, src)
            m.d.comb += [tracker.fire.eq(desc.valid & desc.ready), tracker.beat.eq(desc.payload),
                         tracker.out_fire.eq(getattr(inner, dst).valid & getattr(inner, dst).ready)]
            gate = tracker.room
        self._stream_ports(m, inner)
        held = self._bus_registers(m, inner, gate)
        self._write_channel(m, held)
        self._read_channel(m, inner, held)
        return m

    def _stream_ports(self, m, inner):
        """AXI4-Stream ports ↔ the inner streams (combinational: 0 cycles)."""
        for name, prefix in self.axis.items():
            s = getattr(inner, name)
            port = {sig: getattr(self, f"{prefix}_{sig}") for sig in ("tdata", "tvalid", "tready", "tlast")}
            bits = len(Value.cast(s.payload))
            if prefix.startswith("s_"):
                m.d.comb += [s.payload.eq(port["tdata"][:bits]), s.valid.eq(port["tvalid"]),
                             port["tready"].eq(s.ready)]
                continue
            fields = dict(s.payload.shape()) if hasattr(s.payload.shape(), "members") else {}
            if "last" in fields:
                last = s.payload.last
            elif self._jobs is not None and self._jobs[2] == name:
                last = self._jobs[0].last
            else:
                last = 1
            m.d.comb += [port["tdata"].eq(Value.cast(s.payload)), port["tvalid"].eq(s.valid),
                         s.ready.eq(port["tready"]), port["tlast"].eq(last)]

    def _bus_registers(self, m, inner, gate):
        """The writable registers (descriptor fields, input ports; the input ports driven from them) and the
        bus-driven streams' held beats: ``{register name: Signal}`` plus ``("pending" | "beat", stream)``
        entries."""
        held, inputs = {}, {}
        for reg in self._map.registers:
            if reg.source[0] in ("field", "input"):
                held[reg.name] = Signal(reg.fields[0].width, name=reg.name.lower())
            if reg.source[0] == "input":
                inputs.setdefault(reg.source[1], []).append(held[reg.name])
        for port, words in inputs.items():
            m.d.comb += getattr(inner, port).eq(Cat(*words))
        for name in self._bus_streams:
            s = getattr(inner, name)
            beat = Signal(len(Value.cast(s.payload)), name=f"{name}_beat")
            pending = held[("pending", name)] = Signal(name=f"{name}_pending")
            held[("beat", name)] = beat
            m.d.comb += [s.payload.eq(beat), s.valid.eq(pending & gate)]
            with m.If(s.valid & s.ready):
                m.d.sync += pending.eq(0)
        return held

    def _write_channel(self, m, held):
        """AW and W held independently; the write and its B response (registered, 1 cycle)."""
        aw_addr, w_data = Signal(ADDR_BITS - 2), Signal(DATA_BITS)
        w_strb = Signal(DATA_BITS // 8)
        aw_have, w_have, b_valid, b_resp = Signal(), Signal(), Signal(), Signal(2)
        m.d.comb += [self.s_axil_awready.eq(~aw_have & ~b_valid), self.s_axil_wready.eq(~w_have & ~b_valid),
                     self.s_axil_bvalid.eq(b_valid), self.s_axil_bresp.eq(b_resp)]
        with m.If(self.s_axil_awvalid & self.s_axil_awready):
            m.d.sync += [aw_addr.eq(self.s_axil_awaddr[2:]), aw_have.eq(1)]
        with m.If(self.s_axil_wvalid & self.s_axil_wready):
            m.d.sync += [w_data.eq(self.s_axil_wdata), w_strb.eq(self.s_axil_wstrb), w_have.eq(1)]
        with m.If(b_valid & self.s_axil_bready):
            m.d.sync += b_valid.eq(0)
        mask = Signal(DATA_BITS)
        m.d.comb += mask.eq(sum((w_strb[i].replicate(8) << (8 * i)) for i in range(DATA_BITS // 8)))
        with m.If(aw_have & w_have & ~b_valid):
            m.d.sync += [aw_have.eq(0), w_have.eq(0), b_valid.eq(1), b_resp.eq(SLVERR)]
            with m.Switch(aw_addr):
                for reg in self._map.registers:
                    if not reg.writable:
                        continue
                    with m.Case(reg.offset // 4):
                        self._write_register(m, reg, held, w_data, w_strb, mask, b_resp)

    def _write_register(self, m, reg, held, w_data, w_strb, mask, b_resp):
        if reg.source[0] in ("field", "input"):
            target = held[reg.name]
            m.d.sync += [target.eq((target & ~mask) | (w_data & mask)), b_resp.eq(OKAY)]
            return
        name = reg.source[1]
        pending, beat = held[("pending", name)], held[("beat", name)]
        start = w_data[0] & w_strb[0]
        with m.If(~(start & pending)):
            m.d.sync += b_resp.eq(OKAY)
        with m.If(start & ~pending):
            fields = [held[r.name] for r in self._map.registers if r.source[:2] == ("field", name)]
            layout = getattr(self._inner, name).payload.shape()
            m.d.sync += pending.eq(1)
            for (fname, f), value in zip(layout, fields):
                m.d.sync += beat[f.offset:f.offset + f.width].eq(value)

    def _read_channel(self, m, inner, held):
        """AR → R: the addressed word decoded combinationally, registered into ``rdata`` (1 cycle)."""
        r_valid, r_data, r_resp = Signal(), Signal(DATA_BITS), Signal(2)
        m.d.comb += [self.s_axil_arready.eq(~r_valid), self.s_axil_rvalid.eq(r_valid),
                     self.s_axil_rdata.eq(r_data), self.s_axil_rresp.eq(r_resp)]
        with m.If(r_valid & self.s_axil_rready):
            m.d.sync += r_valid.eq(0)
        word, resp = Signal(DATA_BITS), Signal(2, init=SLVERR)
        with m.Switch(self.s_axil_araddr[2:]):
            for reg in self._map.registers:
                with m.Case(reg.offset // 4):
                    m.d.comb += [word.eq(self._read_value(m, inner, reg, held)), resp.eq(OKAY)]
        with m.If(self.s_axil_arvalid & self.s_axil_arready):
            m.d.sync += [r_valid.eq(1), r_data.eq(word), r_resp.eq(resp)]

    def _read_value(self, m, inner, reg, held):
        kind = reg.source[0]
        if kind in ("field", "input"):
            return held[reg.name]
        if kind == "ctrl":
            return held[("pending", reg.source[1])] << 1
        if kind == "port":
            _, port, word = reg.source
            return getattr(inner, port)[DATA_BITS * word:DATA_BITS * (word + 1)]
        _, addr_port, data_port, index, word = reg.source
        m.d.comb += getattr(inner, addr_port).eq(index)
        return getattr(inner, data_port)[DATA_BITS * word:DATA_BITS * (word + 1)]
