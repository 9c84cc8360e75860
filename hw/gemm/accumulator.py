"""The WS GEMM engines' accumulator buffer: a read-modify-write pipeline with a forwarding path."""

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.checks import check_choice, check_int
from hw.formats.ints import HW_OVERFLOW_MODES
from hw.systolic.mac import wrap_or_saturate

__all__ = ["AccumulatorBuffer"]


class AccumulatorBuffer(wiring.Component):
    """``depth`` rows of ``cols`` signed ``acc_bits`` sums, added to in place by a stream of partial-sum rows.

    The rows come out of a pipeline with one enable, ``advance`` (the array core's); a row moves one place on
    every advance. The buffer sees each row twice: its address two advances before it arrives (``ahead``), and
    the row itself (``row``). For every valid ``row`` in the cycle it is present, ``sums`` is

    - ``row.psums`` if the row is a first one (``row.first``; with ``clear_unused``, ``ahead.first`` two advances
      before), else ``row.psums + buffer[row.m]`` (wrapping, or saturating at ``acc_bits`` when
      ``overflow = "saturate"``), where ``buffer[row.m]`` includes every earlier row's write;
    - and on the advance that consumes the row, ``buffer[row.m] = sums`` if ``row.write``.

    Timing: the read of ``buffer[ahead.m]`` is issued on the advance two before the row (synchronous block-RAM
    read); on the next advance its data is registered, the sums of the row present in that cycle forwarded in its
    place when it writes the same address (a block RAM read issued in the same cycle as a write returns the new
    data). The block RAM's data and the forwarded sums load two registers, chosen behind them (``rd``). So the path
    block RAM → adder → block RAM of a one-cycle read–add–write becomes block RAM → register and register → adder →
    block RAM, and back-to-back rows on one address (an M = 1 job's K-tiles)
    accumulate correctly. No latency of its own: ``sums`` is combinational from ``row.psums`` and ``rd``. Writes
    happen only on advances, and ``sums`` is stable while ``advance`` is low.

    With ``forward_ahead`` the forwarding decision is itself registered one advance early, from ``next`` (the row
    one advance ahead writes) and the addresses: that row's address is the one read on the previous advance, so
    "it will write the address this advance reads" is known a cycle before ``rd`` loads. The select of the
    ``cols``-wide forwarding mux is then a register instead of the row's handshake and an address compare (for a
    wide row, the fan-out of that select spans every block RAM of the buffer). Same values, same timing.

    With ``clear_unused`` there is no such mux: the register not chosen, and both for a first row, is cleared as it
    loads (the select is the registers' synchronous reset, off the adders' path), and the adders take the two
    registers' OR; a first row is then flagged two advances ahead (``ahead.first``), with its address.

    Parameters
    ----------
    cols : int
        Sums per row, 1 … 256.
    acc_bits : int
        Width of every sum (two's complement), 2 … 64.
    depth : int
        Rows in the buffer (block RAM words), 1 … 65536.
    overflow : ``"wrap"`` or ``"saturate"``
        What the adder does on overflow.
    write_register : bool
        Register the write: ``buffer[row.m] = sums`` lands on the next advance (then the last two rows' writes
        are forwarded). For wide rows, whose adders would otherwise feed block RAMs spread over the die.
    forward_ahead : bool
        Register the forwarding decision one advance early (adds the member ``next``).
    clear_unused : bool
        Clear the read register not chosen instead of choosing behind the registers (moves ``first`` from ``row``
        to ``ahead``). For wide rows, whose select fans out over every block RAM (``gemm_8x8_2of4_act2of4``'s
        critical path, docs/synthesis.md); on narrow rows it only moves placement.

    Members
    -------
    advance : In(1)
        The pipeline moves one place.
    ahead : In(StructLayout({"m": range(depth), "first": 1}))
        Address of the row that arrives two advances from now (a bubble's is read and ignored); ``first`` only with
        ``clear_unused``: that row is a first one (its sums are its ``psums``).
    row : In(StructLayout({"valid", "m", "first", "write", "psums": ArrayLayout(signed(acc_bits), cols)}))
        The row present this cycle (``first`` only without ``clear_unused``).
    next : In(StructLayout({"write": 1}))
        Only with ``forward_ahead``: the row one advance ahead is valid and writes (``valid & write`` of the row
        that ``row`` will be after the next advance).
    sums : Out(ArrayLayout(signed(acc_bits), cols))
    """

    def __init__(self, *, cols, acc_bits, depth, overflow="wrap", forward_ahead=False, write_register=False,
                 clear_unused=False):
        check_int("cols", cols, 1, 256)
        check_int("acc_bits", acc_bits, 2, 64)
        check_int("depth", depth, 1, 65536)
        check_choice("overflow", overflow, HW_OVERFLOW_MODES)
        if not isinstance(forward_ahead, bool):
            raise TypeError(f"forward_ahead = {forward_ahead!r} is not a bool: allowed True or False")
        self._cols, self._acc_bits, self._depth, self._overflow = cols, acc_bits, depth, overflow
        self._forward_ahead = forward_ahead
        if not isinstance(write_register, bool):
            raise TypeError(f"write_register = {write_register!r} is not a bool: allowed True or False")
        self._write_register = write_register
        if not isinstance(clear_unused, bool):
            raise TypeError(f"clear_unused = {clear_unused!r} is not a bool: allowed True or False")
        self._clear_unused = clear_unused
        self._sums = data.ArrayLayout(signed(acc_bits), cols)
        addr = range(max(depth, 2))
        super().__init__({
            "advance": In(1),
            # a first row is flagged with its address (clear_unused) or with the row
            "ahead": In(data.StructLayout({"m": addr, **({"first": 1} if clear_unused else {})})),
            "row": In(data.StructLayout({"valid": 1, "m": addr, **({} if clear_unused else {"first": 1}),
                                         "write": 1, "psums": self._sums})),
            **({"next": In(data.StructLayout({"write": 1}))} if forward_ahead else {}),
            "sums": Out(self._sums),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self._sums, depth=self._depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=(wp,))
        row = self.row
        writes = row.valid & row.write & self.advance
        m.d.comb += [rp.addr.eq(self.ahead.m), rp.en.eq(self.advance)]
        if self._clear_unused:
            rd = self._read_cleared(m, rp, wp, writes)
            totals = [row.psums[c] + rd[c] for c in range(self._cols)]
        else:
            rd = self._read_muxed(m, rp, wp, writes)
            totals = [Mux(row.first, row.psums[c], row.psums[c] + rd[c]) for c in range(self._cols)]
        for c in range(self._cols):
            m.d.comb += self.sums[c].eq(wrap_or_saturate(m, totals[c], self._acc_bits, self._overflow, f"sum_c{c}"))
        return m

    def _forward_now(self, m, writes, rd_m):
        """The present row writes the address of the word read one advance ago (``rd_m``): with ``forward_ahead``
        a register decided on the advance before (``rd_m`` is then the next row's address)."""
        if not self._forward_ahead:
            return writes & (self.row.m == rd_m)
        forward = Signal(name="forward")
        with m.If(self.advance):
            m.d.sync += forward.eq(self.next.write & (rd_m == self.ahead.m))
        return forward

    def _write_port(self, m, wp, writes):
        """The write: the present row's, or with ``write_register`` the previous row's from registers (returned as
        ``w.en``, ``w.m``, ``w.data``; else None)."""
        row = self.row
        if not self._write_register:
            m.d.comb += [wp.addr.eq(row.m), wp.data.eq(self.sums), wp.en.eq(writes)]
            return None
        # The write lands in the block RAM on the next advance, so the adders feed a register, not the block RAMs'
        # data inputs across the die; a read then misses the last two rows' writes, and both are forwarded.
        w = SimpleNamespace(en=Signal(name="w_en"), m=Signal.like(row.m, name="w_m"),
                            data=Signal(self._sums, name="w_data"))
        with m.If(self.advance):
            m.d.sync += [w.en.eq(writes), w.m.eq(row.m), w.data.eq(self.sums)]
        m.d.comb += [wp.addr.eq(w.m), wp.data.eq(w.data), wp.en.eq(w.en & self.advance)]
        return w

    def _read_muxed(self, m, rp, wp, writes):
        """The read register as the block RAM's word and the forwarded sums, chosen behind the registers by one
        select. Returns ``rd``, the word with every earlier write."""
        row = self.row
        w = self._write_port(m, wp, writes)
        # the address rp.data belongs to, and its data with a newer write forwarded: the block RAM's data and the
        # forwarded sums are registered apart (rd_ram, rd_fwd) and chosen behind the registers, so the block RAM's
        # output reaches a register through routing only (its clock-to-output is 6 ns of an ECP5 cycle)
        rd_m = Signal.like(row.m, name="rd_m")
        rd_ram = Signal(self._sums, name="rd_ram")
        rd_fwd = Signal(self._sums, name="rd_fwd")
        use_fwd = Signal(name="rd_use_fwd")
        # the present row's write (newest); with write_register also the previous row's, still in w_*
        forward = self._forward_now(m, writes, rd_m)
        with m.If(self.advance):
            m.d.sync += [rd_m.eq(self.ahead.m), rd_ram.eq(rp.data)]
            if self._write_register:
                m.d.sync += [rd_fwd.eq(Mux(forward, self.sums.as_value(), w.data.as_value())),
                             use_fwd.eq(forward | (w.en & (w.m == rd_m)))]
            else:
                m.d.sync += [rd_fwd.eq(self.sums), use_fwd.eq(forward)]
        rd = Signal(self._sums, name="rd")
        m.d.comb += rd.eq(Mux(use_fwd, rd_fwd.as_value(), rd_ram.as_value()))
        return rd

    def _read_cleared(self, m, rp, wp, writes):
        """The read register as the block RAM's word and the forwarded sums, the unused one (both for a first row)
        cleared as it loads. Returns ``rd``, their OR: zero for a first row, else the word with every earlier
        write."""
        row = self.row
        rd_m = Signal.like(row.m, name="rd_m")      # the address rp.data belongs to
        rd_first = Signal(name="rd_first")          # ... and whether its row is a first one (adds nothing)
        with m.If(self.advance):
            m.d.sync += [rd_m.eq(self.ahead.m), rd_first.eq(self.ahead.first)]
        forward = self._forward_now(m, writes, rd_m)
        newest, use_fwd = self.sums.as_value(), forward

        w = self._write_port(m, wp, writes)
        if w is not None:
            # the previous row's write, still in w_*, is forwarded too; decided as the row passes (its address is
            # read this advance)
            w_hit = Signal(name="w_hit")
            with m.If(self.advance):
                m.d.sync += w_hit.eq(writes & (row.m == self.ahead.m))
            newest, use_fwd = Mux(forward, newest, w.data.as_value()), forward | w_hit

        # the select is the registers' synchronous reset, not a row-wide mux in front of the adders
        rd_ram = Signal(self._sums, name="rd_ram")
        rd_fwd = Signal(self._sums, name="rd_fwd")
        with m.If(self.advance):
            m.d.sync += [rd_ram.eq(Mux(use_fwd | rd_first, 0, rp.data.as_value())),
                         rd_fwd.eq(Mux(use_fwd & ~rd_first, newest, 0))]
        return data.View(self._sums, rd_ram.as_value() | rd_fwd.as_value())
