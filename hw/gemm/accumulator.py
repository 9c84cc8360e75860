"""The WS GEMM engines' accumulator buffer: a read-modify-write pipeline with a forwarding path."""

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

    - ``row.psums`` if ``row.first``, else ``row.psums + buffer[row.m]`` (wrapping, or saturating at ``acc_bits``
      when ``overflow = "saturate"``), where ``buffer[row.m]`` includes every earlier row's write;
    - and on the advance that consumes the row, ``buffer[row.m] = sums`` if ``row.write``.

    Timing: the read of ``buffer[ahead.m]`` is issued on the advance two before the row (synchronous block-RAM
    read); on the next advance its data is registered (``rd``: the block RAM's data and the sums of the row present
    in that cycle in two registers, the latter chosen behind them), the sums forwarded in its place when it writes
    the same address (a block RAM read issued in the same cycle as a write
    returns the new data). So the path block RAM → adder → block RAM of a one-cycle read–add–write becomes block
    RAM → register and register → adder → block RAM, and back-to-back rows on one address (an M = 1 job's K-tiles)
    accumulate correctly. No latency of its own: ``sums`` is combinational from ``row.psums`` and ``rd``. Writes
    happen only on advances, and ``sums`` is stable while ``advance`` is low.

    With ``forward_ahead`` the forwarding decision is itself registered one advance early, from ``next`` (the row
    one advance ahead writes) and the addresses: that row's address is the one read on the previous advance, so
    "it will write the address this advance reads" is known a cycle before ``rd`` loads. The select of the
    ``cols``-wide forwarding mux is then a register instead of the row's handshake and an address compare (for a
    wide row, the fan-out of that select spans every block RAM of the buffer). Same values, same timing.

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

    Members
    -------
    advance : In(1)
        The pipeline moves one place.
    ahead : In(StructLayout({"m": range(depth)}))
        Address of the row that arrives two advances from now (a bubble's address is read and ignored).
    row : In(StructLayout({"valid", "m", "first", "write", "psums": ArrayLayout(signed(acc_bits), cols)}))
        The row present this cycle.
    next : In(StructLayout({"write": 1}))
        Only with ``forward_ahead``: the row one advance ahead is valid and writes (``valid & write`` of the row
        that ``row`` will be after the next advance).
    sums : Out(ArrayLayout(signed(acc_bits), cols))
    """

    def __init__(self, *, cols, acc_bits, depth, overflow="wrap", forward_ahead=False, write_register=False):
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
        self._sums = data.ArrayLayout(signed(acc_bits), cols)
        addr = range(max(depth, 2))
        super().__init__({
            "advance": In(1),
            "ahead": In(data.StructLayout({"m": addr})),
            "row": In(data.StructLayout({"valid": 1, "m": addr, "first": 1, "write": 1, "psums": self._sums})),
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

        # With write_register the write lands in the block RAM on the next advance (w_*: the previous row's), so the
        # adders feed a register, not the block RAMs' data inputs across the die (gemm_8x8_2of4_act2of4's path,
        # docs/synthesis.md); a read then misses the last two rows' writes, and both are forwarded below.
        if self._write_register:
            w_en = Signal(name="w_en")
            w_m = Signal.like(row.m, name="w_m")
            w_data = Signal(self._sums, name="w_data")
            with m.If(self.advance):
                m.d.sync += [w_en.eq(writes), w_m.eq(row.m), w_data.eq(self.sums)]
            m.d.comb += [wp.addr.eq(w_m), wp.data.eq(w_data), wp.en.eq(w_en & self.advance)]
        else:
            m.d.comb += [wp.addr.eq(row.m), wp.data.eq(self.sums), wp.en.eq(writes)]

        # the address rp.data belongs to, and its data with a newer write forwarded: the block RAM's data and the
        # forwarded sums are registered apart (rd_ram, rd_fwd) and chosen behind the registers, so the block RAM's
        # output reaches a register through routing only (its clock-to-output is 6 ns of an ECP5 cycle)
        rd_m = Signal.like(row.m, name="rd_m")
        rd_ram = Signal(self._sums, name="rd_ram")
        rd_fwd = Signal(self._sums, name="rd_fwd")
        use_fwd = Signal(name="rd_use_fwd")
        # the present row's write (newest); with write_register also the previous row's, still in w_*
        forward = writes & (row.m == rd_m)
        if self._forward_ahead:
            # rd_m is the next row's address (read one advance ago): decide now for the next advance
            forward = Signal(name="forward")
            with m.If(self.advance):
                m.d.sync += forward.eq(self.next.write & (rd_m == self.ahead.m))
        with m.If(self.advance):
            m.d.sync += [rd_m.eq(self.ahead.m), rd_ram.eq(rp.data)]
            if self._write_register:
                m.d.sync += [rd_fwd.eq(Mux(forward, self.sums.as_value(), w_data.as_value())),
                             use_fwd.eq(forward | (w_en & (w_m == rd_m)))]
            else:
                m.d.sync += [rd_fwd.eq(self.sums), use_fwd.eq(forward)]
        rd = Signal(self._sums, name="rd")
        m.d.comb += rd.eq(Mux(use_fwd, rd_fwd.as_value(), rd_ram.as_value()))

        for c in range(self._cols):
            total = Mux(row.first, row.psums[c], row.psums[c] + rd[c])
            m.d.comb += self.sums[c].eq(wrap_or_saturate(m, total, self._acc_bits, self._overflow, f"sum_c{c}"))
        return m
