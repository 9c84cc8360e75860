"""Behavioral, integer, cycle-level model of RRAM crossbars: what the tile controller programs and reads.

Not meant for silicon: it stands in for the analog array so the whole tile emits Verilog and runs under
Verilator and Icarus. Its numpy mirror is :class:`sim.rram.xbar.CrossbarMirror`.
"""

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.checks import check_choice, check_int
from hw.formats import mapping, mvm
from hw.formats.mapping import CELL_BITS, CrossbarShape
from hw.rram.lfsr import LFSR, MAX_SEED

__all__ = ["CrossbarModel", "Op", "lane_seed", "command_layout", "response_bits", "encode_command", "encode_codes", "PULSE_ONE",
           "WRITE_DRAW_BITS", "NOISE_DRAW_BITS"]

PULSE_ONE = 1 << 16          # pulse_error is a probability in units of 2**-16
WRITE_DRAW_BITS = 17         # per WRITE: 16-bit uniform u, then the direction bit
NOISE_DRAW_BITS = 16         # per converted column


class Op(enum.Enum, shape=2):
    """Command opcodes (``cmd.payload.op``); 3 is reserved: accepted, no effect, no response."""
    WRITE = 0
    READ_CELL = 1
    READ_OU = 2


def lane_seed(seed: int, xbar: int) -> int:
    """LFSR seed of crossbar ``xbar`` of a tile seeded ``seed``: ``(seed + xbar) mod (MAX_SEED + 1)``. The tile
    instantiates one single-crossbar model per crossbar (they are read in parallel), each with its own LFSRs;
    crossbar 0 keeps the tile's seed."""
    return (check_int("seed", seed, 0, MAX_SEED) + check_int("xbar", xbar, 0, 4095)) % (MAX_SEED + 1)


def _field_bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def command_layout(*, n_xbars: int, xbar_rows: int, xbar_cols: int, cell_bits: int, ou_rows: int,
                   dac_bits: int) -> data.StructLayout:
    """The ``cmd`` payload, fields packed from bit 0 in this order.

    ``op`` (:class:`Op`, 2 bits); ``xbar``, ``row``, ``col`` (``max(1, bits_for(n - 1))`` bits for ``n_xbars``,
    ``xbar_rows``, ``xbar_cols``); ``level`` (``cell_bits``); ``drive`` (``ou_rows`` × ``dac_bits``, wordline
    ``r`` of the OU at bits ``[r·dac_bits, (r+1)·dac_bits)`` of the field). For ``READ_OU``, ``row`` and ``col``
    are the wordline-group and bitline-group indices.
    """
    return data.StructLayout({
        "op": Op,
        "xbar": unsigned(_field_bits(n_xbars)),
        "row": unsigned(_field_bits(xbar_rows)),
        "col": unsigned(_field_bits(xbar_cols)),
        "level": unsigned(cell_bits),
        "drive": data.ArrayLayout(unsigned(dac_bits), ou_rows),
    })


def response_bits(*, cell_bits: int, ou_cols: int, adc_bits: int) -> int:
    """Width of the ``rsp`` payload: ``max(cell_bits, ou_cols · adc_bits)``."""
    return max(cell_bits, ou_cols * adc_bits)


def encode_command(layout: data.StructLayout, op, *, xbar=0, row=0, col=0, level=0, drive=None) -> int:
    """One ``cmd`` payload as an integer (for testbenches and drivers); ``drive`` a sequence of ``ou_rows`` ints."""
    n_drive = layout["drive"].shape.length
    drive = [0] * n_drive if drive is None else [int(d) for d in drive]
    if len(drive) != n_drive:
        raise ValueError(f"drive has {len(drive)} values: the OU has {n_drive} wordlines")
    fields = {"op": int(Op(op).value), "xbar": int(xbar), "row": int(row), "col": int(col), "level": int(level)}
    word = 0
    for name, value in fields.items():
        f = layout[name]
        width = 2 if name == "op" else f.shape.width
        if not 0 <= value < 1 << width:
            raise ValueError(f"command field {name} = {value} does not fit {width} bits")
        word |= value << f.offset
    elem = layout["drive"].shape.elem_shape.width
    for r, d in enumerate(drive):
        if not 0 <= d < 1 << elem:
            raise ValueError(f"drive[{r}] = {d} does not fit dac_bits = {elem}")
        word |= d << (layout["drive"].offset + r * elem)
    return word


def encode_codes(codes, *, adc_bits: int) -> int:
    """A READ_OU response as an integer: ``codes[j]`` at bits ``[j·adc_bits, (j+1)·adc_bits)``."""
    word = 0
    for j, code in enumerate(codes):
        code = int(code)
        if not 0 <= code < 1 << adc_bits:
            raise ValueError(f"code {j} = {code} does not fit adc_bits = {adc_bits}")
        word |= code << (j * adc_bits)
    return word


class CrossbarModel(wiring.Component, CrossbarShape):
    """``n_xbars`` crossbars of ``xbar_rows`` × ``xbar_cols`` cells, each holding a level ``0 … 2**cell_bits - 1``.

    Commands (``cmd`` payload :func:`command_layout`, ``op`` one of :class:`Op`):

    - ``WRITE`` (xbar, row, col, level): the cell takes ``level``; with probability ``pulse_error / 2**16`` it
      lands on ``level ± 1`` instead (clamped to ``0 … max``). A stuck cell, or an address outside the array,
      ignores the write. No response.
    - ``READ_CELL`` (xbar, row, col): one response, the cell's level in bits ``[0, cell_bits)`` (0 when the
      address is outside the array).
    - ``READ_OU`` (xbar, row = wordline group, col = bitline group, drive): the OU covers wordlines
      ``row·ou_rows …`` and bitlines ``col·ou_cols …``; per column ``j``,
      ``s_j = Σ_r drive[r] · level[row·ou_rows + r, col·ou_cols + j]`` (absent rows of an edge group count 0),
      ``code_j = clamp(s_j + noise_j, 0, 2**adc_bits - 1)``, or 0 for a column beyond the crossbar's edge (and
      for every column when xbar or a group index is out of range). One response: ``code_j`` at bits
      ``[j·adc_bits, (j+1)·adc_bits)``.

    Responses leave in command order. Stuck cells hold their stuck level from configuration (level 0 is
    stuck-at-0, ``max`` stuck-at-1) and are read like any other cell.

    Randomness (two :class:`hw.rram.lfsr.LFSR` s of ``seed``): stream 0 serves writes, stream 1 read noise.

    - A WRITE that is carried out (in range, not stuck) with ``pulse_error > 0`` consumes one 17-bit draw:
      ``u`` = bits 0–15, ``up`` = bit 16; the write lands off target iff ``u < pulse_error``, at ``level + 1``
      if ``up`` else ``level - 1``, clamped. Nothing else draws from stream 0.
    - Every READ_OU with ``read_noise = R > 0`` consumes ``ou_cols`` 16-bit draws ``d_j`` of stream 1, column 0
      first (also for absent columns and out-of-range OUs): ``noise_j = ((d_j · (2R + 1)) >> 16) - R``, an
      integer in ``-R … R``.

    Timing: a two-stage pipeline. At the rising edge where a command transfers (cycle t, numbered like the
    stream helpers: a transfer's cycle is its rising edge) it enters the execute stage and its wordlines are
    read; during the next cycle the execute stage writes the cell, draws from the LFSRs and forms the column
    sums, and at edge t+1 the response enters the ``rsp`` register: ``rsp.valid`` from right after t+1, earliest
    transfer at edge t+2 (latency 2). Throughput: one command per cycle, any mix, while ``rsp`` is not
    backpressured. ``cmd.ready`` depends combinationally on ``rsp.ready`` (never the reverse). A read right after
    a write of the same cell sees the new level (transparent read ports). ``rst`` clears the pipeline and
    re-seeds the LFSRs but keeps the cell levels (non-volatile cells); after configuration every cell is 0
    except the stuck ones.

    Organisation: the wordlines are split into ``ou_rows`` banks (wordline ``w`` in bank ``w mod ou_rows``),
    each an :class:`amaranth.lib.memory.Memory` holding one word of ``xbar_cols · cell_bits`` bits per
    wordline, so a whole OU is read in one cycle and Verilog size grows with the cell count only. The stuck
    mask is a read-only memory of one ``xbar_cols``-bit word per wordline (only built when ``stuck`` is given).

    Parameters
    ----------
    n_xbars : int
        Crossbars, 1 … 4096.
    xbar_rows, xbar_cols : int
        Wordlines and bitlines per crossbar, 1 … 4096.
    cell_bits : int
        1, 2 or 4 bits per cell.
    ou_rows, ou_cols : int
        OU shape, 1 … ``xbar_rows`` / ``xbar_cols``.
    dac_bits : int
        Bits of each wordline's drive, 1 … 8.
    adc_bits : int
        ADC code width, 1 … 32.
    pulse_error : int
        Probability of a ±1 write error in units of 2**-16: 0 (off) … 65536 (always).
    read_noise : int
        Maximum absolute noise, in level units, added to each converted column sum: 0 (off) … 255.
    stuck : iterable of (xbar, row, col, level)
        Stuck-at cells and their level (0 … ``2**cell_bits - 1``); each cell at most once.
    seed : int
        LFSR seed, 0 … 2**31 - 2.

    Members
    -------
    cmd : In(stream.Signature(command_layout(...)))
    rsp : Out(stream.Signature(unsigned(response_bits(...))))
    """

    def __init__(self, *, n_xbars, xbar_rows, xbar_cols, cell_bits, ou_rows, ou_cols, dac_bits, adc_bits,
                 pulse_error=0, read_noise=0, stuck=(), seed=1):
        check_int("n_xbars", n_xbars, 1, 4096)
        check_int("xbar_rows", xbar_rows, 1, 4096)
        check_int("xbar_cols", xbar_cols, 1, 4096)
        check_choice("cell_bits", cell_bits, CELL_BITS)
        check_int("ou_rows", ou_rows, 1, xbar_rows)
        check_int("ou_cols", ou_cols, 1, xbar_cols)
        check_int("dac_bits", dac_bits, 1, 8)
        check_int("adc_bits", adc_bits, 1, 32)
        check_int("pulse_error", pulse_error, 0, PULSE_ONE)
        check_int("read_noise", read_noise, 0, 255)
        check_int("seed", seed, 0, MAX_SEED)
        self.n_xbars, self.xbar_rows, self.xbar_cols = n_xbars, xbar_rows, xbar_cols
        self.cell_bits, self.ou_rows, self.ou_cols = cell_bits, ou_rows, ou_cols
        self.dac_bits, self.adc_bits = dac_bits, adc_bits
        self.pulse_error, self.read_noise, self.seed = pulse_error, read_noise, seed
        self.stuck = self.check_stuck(stuck, n_xbars=n_xbars, xbar_rows=xbar_rows, xbar_cols=xbar_cols,
                                      cell_bits=cell_bits)
        self.cmd_layout = command_layout(n_xbars=n_xbars, xbar_rows=xbar_rows, xbar_cols=xbar_cols,
                                         cell_bits=cell_bits, ou_rows=ou_rows, dac_bits=dac_bits)
        self.rsp_bits = response_bits(cell_bits=cell_bits, ou_cols=ou_cols, adc_bits=adc_bits)
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "rsp": Out(stream.Signature(unsigned(self.rsp_bits))),
        })

    @staticmethod
    def check_stuck(stuck, *, n_xbars, xbar_rows, xbar_cols, cell_bits) -> tuple:
        """Validate a stuck-at list: a tuple of ``(xbar, row, col, level)`` int tuples, sorted, each cell once."""
        out = {}
        for i, entry in enumerate(stuck):
            try:
                x, r, c, lvl = (int(v) for v in entry)
            except (TypeError, ValueError):
                raise ValueError(f"stuck[{i}] = {entry!r} is not an (xbar, row, col, level) tuple") from None
            for name, value, hi in (("xbar", x, n_xbars - 1), ("row", r, xbar_rows - 1), ("col", c, xbar_cols - 1),
                                    ("level", lvl, mapping.max_level(cell_bits))):
                if not 0 <= value <= hi:
                    raise ValueError(f"stuck[{i}].{name} = {value} is out of range: allowed 0 … {hi}")
            if (x, r, c) in out:
                raise ValueError(f"stuck[{i}] repeats cell (xbar, row, col) = {(x, r, c)}: each cell at most once")
            out[(x, r, c)] = lvl
        return tuple(sorted((*k, v) for k, v in out.items()))

    @property
    def lossless_adc_bits(self) -> int:
        """ADC bits that never clip (:func:`hw.formats.mvm.lossless_adc_bits`)."""
        return mvm.lossless_adc_bits(self.ou_rows, self.cell_bits, self.dac_bits)

    # Memories get at least 2 words: a 1-word memory has a 0-bit address, which Amaranth emits as `[-1:0]`.
    def _bank_init(self, bank: int) -> list[int]:
        """Stuck levels of bank ``bank``: word ``x·row_groups + g`` is wordline ``g·ou_rows + bank`` of xbar x."""
        init = [0] * (self.n_xbars * self.row_groups)
        for x, r, c, lvl in self.stuck:
            if r % self.ou_rows == bank:
                init[x * self.row_groups + r // self.ou_rows] |= lvl << (c * self.cell_bits)
        return init

    def elaborate(self, platform):
        m = Module()
        s = SimpleNamespace()       # what the stages share: execute-stage register, addresses, write enable
        self._execute_stage(m, s)
        self._read_address(s)
        self._write_address(s)
        is_stuck = self._stuck_mask(m, s)
        s.write_done = s.ex_is_write & s.ex_go & s.cell_ok & ~is_stuck
        self._programmed_level(m, s)
        words = self._banks(m, s)
        cell = self._read_cell(m, s, words)
        codes = self._read_ou(m, s, words)
        self._response_register(m, s, cell, codes)
        return m

    def _execute_stage(self, m, s):
        """The execute stage: the accepted command, and whether it produces a response. Register: 1 cycle."""
        cmd, rsp = self.cmd, self.rsp
        ex = Signal(self.cmd_layout)
        ex_valid = Signal()
        ex_rsp = (ex.op == Op.READ_CELL) | (ex.op == Op.READ_OU)
        ex_go = ex_valid & (~ex_rsp | ~rsp.valid | rsp.ready)
        m.d.comb += cmd.ready.eq(~ex_valid | ex_go)
        accept = cmd.valid & cmd.ready
        with m.If(accept):
            m.d.sync += [ex.eq(cmd.payload), ex_valid.eq(1)]
        with m.Elif(ex_go):
            m.d.sync += ex_valid.eq(0)
        s.ex, s.ex_valid, s.ex_rsp, s.ex_go, s.accept = ex, ex_valid, ex_rsp, ex_go, accept

    def _read_address(self, s):
        """The accept stage's bank read address: the addressed wordline (group) of the command. Combinational (0
        cycles)."""
        # Out-of-range addresses read word 0 (never X in simulation); the execute stage ignores what they return.
        p = self.cmd.payload
        is_ou = p.op == Op.READ_OU
        p_ok = (p.xbar < self.n_xbars) & Mux(is_ou, p.row < self.row_groups, p.row < self.xbar_rows)
        group = Mux(is_ou, p.row, p.row // self.ou_rows)
        s.p = p
        s.rd_addr = Mux(p_ok, p.xbar * self.row_groups + group, 0)

    def _write_address(self, s):
        """The execute stage's cell address: whether it is a WRITE, in range, its bank and word. Combinational (0
        cycles)."""
        ex = s.ex
        s.ex_is_write = s.ex_valid & (ex.op == Op.WRITE)
        s.cell_ok = (ex.xbar < self.n_xbars) & (ex.row < self.xbar_rows) & (ex.col < self.xbar_cols)
        s.bank_of_row = ex.row % self.ou_rows
        s.wr_addr = ex.xbar * self.row_groups + ex.row // self.ou_rows

    def _stuck_mask(self, m, s):
        """The stuck mask ROM (only with ``stuck``), read at accept: returns whether the execute stage's cell is
        stuck. Synchronous read: 1 cycle."""
        if not self.stuck:
            return Const(0, 1)
        p = s.p
        masks = [0] * (self.n_xbars * self.xbar_rows)
        for x, r, c, _ in self.stuck:
            masks[x * self.xbar_rows + r] |= 1 << c
        m.submodules.stuck_mask = stuck_mem = Memory(shape=unsigned(self.xbar_cols), depth=max(2, len(masks)),
                                                     init=masks)
        stuck_rd = stuck_mem.read_port()
        cell_ok_p = (p.xbar < self.n_xbars) & (p.row < self.xbar_rows)
        m.d.comb += [stuck_rd.addr.eq(Mux(cell_ok_p, p.xbar * self.xbar_rows + p.row, 0)),
                     stuck_rd.en.eq(s.accept)]
        return stuck_rd.data.bit_select(s.ex.col, 1)

    def _programmed_level(self, m, s):
        """The level actually programmed: on target, or one step off when the pulse misses (write LFSR).
        Combinational (0 cycles)."""
        ex = s.ex
        level = Signal(self.cell_bits)
        if self.pulse_error:
            m.submodules.write_lfsr = wl = LFSR(bits=WRITE_DRAW_BITS, seed=self.seed, stream=0)
            # pulse_error = 2**16 always misses; the compare would be constant (Verilator CMPCONST).
            miss = wl.draw[:16] < self.pulse_error if self.pulse_error < PULSE_ONE else Const(1, 1)
            up = wl.draw[16]
            stepped = Mux(up, Mux(ex.level == self.max_level, ex.level, ex.level + 1),
                          Mux(ex.level == 0, ex.level, ex.level - 1))
            m.d.comb += [level.eq(Mux(miss, stepped, ex.level)), wl.en.eq(s.write_done)]
        else:
            m.d.comb += level.eq(ex.level)
        s.level = level

    def _banks(self, m, s):
        """The ``ou_rows`` wordline banks (``Memory``, transparent read at accept: 1 cycle; write in the execute
        stage). Returns each bank's read word."""
        L, C = self.cell_bits, self.xbar_cols
        words = []
        for b in range(self.ou_rows):
            mem = Memory(shape=unsigned(C * L), depth=max(2, self.n_xbars * self.row_groups),
                         init=self._bank_init(b))
            m.submodules[f"bank{b}"] = mem
            wp = mem.write_port(granularity=L)
            rp = mem.read_port(transparent_for=(wp,))
            m.d.comb += [
                rp.addr.eq(s.rd_addr), rp.en.eq(s.accept),
                wp.addr.eq(s.wr_addr), wp.data.eq(Cat(*([s.level] * C))),
                wp.en.eq(Mux(s.write_done & (s.bank_of_row == b), (Const(1, C) << s.ex.col)[:C], 0)),
            ]
            words.append(rp.data)
        return words

    def _read_cell(self, m, s, words):
        """READ_CELL: the addressed cell's level (0 out of range). Combinational (0 cycles)."""
        cell = Signal(self.cell_bits)
        m.d.comb += cell.eq(Mux(s.cell_ok, Array(words)[s.bank_of_row].word_select(s.ex.col, self.cell_bits), 0))
        return cell

    def _read_ou(self, m, s, words):
        """READ_OU: the OU's ``ou_cols`` column sums, plus noise (noise LFSR), clamped to ADC codes. Returns the
        codes. Combinational (0 cycles)."""
        ex = s.ex
        L, C, OC = self.cell_bits, self.xbar_cols, self.ou_cols
        CG = self.col_groups
        # the OU's ou_cols cells of every bank's word (zero-padded to whole bitline groups)
        ou_ok = (ex.xbar < self.n_xbars) & (ex.row < self.row_groups) & (ex.col < CG)
        pad = (CG * OC - C) * L
        segments = [Cat(w, Const(0, pad)).word_select(ex.col, OC * L) if pad else w.word_select(ex.col, OC * L)
                    for w in words]
        sum_bits = self.lossless_adc_bits
        top = (1 << self.adc_bits) - 1
        # Emit a clamp only where it can act: Verilator rejects comparisons that are constant (CMPCONST).
        loudest = mvm.max_column_sum(self.ou_rows, self.cell_bits, self.dac_bits) + self.read_noise
        if self.read_noise:
            m.submodules.noise_lfsr = nl = LFSR(bits=NOISE_DRAW_BITS * OC, seed=self.seed, stream=1)
            m.d.comb += nl.en.eq(s.ex_valid & s.ex_go & (ex.op == Op.READ_OU))
        codes = []
        for j in range(OC):
            s_j = Signal(sum_bits, name=f"sum{j}")
            m.d.comb += s_j.eq(sum(ex.drive[r] * seg[j * L:(j + 1) * L] for r, seg in enumerate(segments)))
            if self.read_noise:
                d = nl.draw[j * NOISE_DRAW_BITS:(j + 1) * NOISE_DRAW_BITS]
                noise = Signal(signed(10), name=f"noise{j}")
                m.d.comb += noise.eq(((d * (2 * self.read_noise + 1)) >> NOISE_DRAW_BITS) - self.read_noise)
                t = Signal(signed(sum_bits + 2), name=f"noisy{j}")
                m.d.comb += t.eq(s_j + noise)
                clipped = Mux(t < 0, 0, Mux(t > top, top, t) if top < loudest else t)
            else:
                clipped = Mux(s_j > top, top, s_j) if top < loudest else s_j
            present = ou_ok & (ex.col * OC + j < C)
            code = Signal(self.adc_bits, name=f"code{j}")
            m.d.comb += code.eq(Mux(present, clipped, 0))
            codes.append(code)
        return codes

    def _response_register(self, m, s, cell, codes):
        """The response register: a beat leaves when taken; a new one enters when the execute stage has one.
        Register: 1 cycle."""
        rsp = self.rsp
        with m.If(rsp.ready):
            m.d.sync += rsp.valid.eq(0)
        with m.If(s.ex_go & s.ex_rsp):
            m.d.sync += [rsp.valid.eq(1),
                         rsp.payload.eq(Mux(s.ex.op == Op.READ_CELL, cell, Cat(*codes)))]
