"""The one PE-grid builder of every array core: skewed feeds, east/south chains, de-skewed drains, one enable.

Every array in the project is the same mesh (in the spirit of Gemmini's ``Mesh.scala``): a ``rows × cols`` grid of
one PE, all of it clocked by one enable, with

- **west feeds**: a value per PE row that enters PE ``(r, 0)`` after ``r`` enabled cycles (the skew) and is passed
  east from PE to PE (activations, tile tags);
- **north feeds**: a value per PE column that enters PE ``(0, c)`` after ``c`` enabled cycles and is passed south
  (the output-stationary core's streamed weights and step flags);
- **south chains**: values that start at 0 in PE row 0 and are passed south, each PE adding to them (partial sums,
  zero and MAC counts);
- a **weight load**: one beat of ``cols`` weight columns with its PE row, reaching column ``c`` after ``c`` enabled
  cycles, written by the PE of that column whose row it names (the weight-stationary cores);
- **drains**: :meth:`Mesh.deskew` delays column ``c`` by ``cols − 1 − c`` enabled cycles so that a row of results
  leaves together (the bottom row's sums for weight-stationary cores, every row's accumulators for the
  output-stationary core).

PE port convention: a chained port ``x`` is the pair ``x_in`` (from the west or north neighbour) and ``x_out`` (to the
east or south neighbour), registered inside the PE (1 cycle per hop); the enable is ``en``; the weight load writes
``w_data`` when ``w_we``. Which chains a PE has is the core's choice: :class:`hw.systolic.pe.SparsePE` (``act`` east;
``psum``, ``zeros`` and, tiled, ``swap``/``lanes`` east and ``macs`` south), :class:`hw.gemm.act_pe.ActPE`
(``slots``, ``swap`` east; ``psum``, ``macs``, ``zeros`` south), :class:`hw.gemm.os_pe.SparseOSPE` (``act`` east;
``w``, ``step`` north feeds; ``zeros`` south).

PEs are added with :func:`hw.shared.add_shared`, so a mesh emitted once (:func:`hw.shared.emit_once`) instantiates
one PE module. The array's emit-once Verilog path writes the same mesh as text (:func:`mesh_verilog`).
"""

import functools

from amaranth.hdl import Signal

from hw.shared import add_shared, add_verilog, shared_module
from hw.systolic.delay import delayed
from hw.systolic.grid import grid_verilog

__all__ = ["Mesh", "build_mesh", "mesh_verilog"]


class Mesh:
    """A built mesh: its PEs and its drains.

    Attributes
    ----------
    pes : list of list of Component
        ``pes[r][c]``, the PE of row r and column c.
    rows, cols : int
        Grid size.
    """

    def __init__(self, m, pes, en):
        self._m, self._en = m, en
        self.pes = pes
        self.rows, self.cols = len(pes), len(pes[0])

    def bottom(self, port):
        """The bottom PE row's ``port`` (e.g. ``"psum_out"``), one value per column."""
        return [getattr(pe, port) for pe in self.pes[-1]]

    def deskew(self, values, name, *, lead=0):
        """``values[c]`` (one per column, from column 0; fewer than ``cols`` allowed) delayed
        ``cols − 1 − c − lead`` enabled cycles, registers named ``<name>_c<c>_d<i>``: a row whose column c leaves
        the grid ``c`` cycles after column 0 comes out aligned (``lead`` cycles before the last column's value)."""
        return [delayed(self._m, value, self.cols - 1 - c - lead, en=self._en, name=f"{name}_c{c}")
                for c, value in enumerate(values)]


def build_mesh(m, *, rows, cols, pe_class, pe_params, en, west=None, north=None, south=(), load=None,
               west_next=None):
    """Add a ``rows × cols`` grid of ``pe_class(**pe_params)`` (submodules ``pe_<r>_<c>``) to ``m`` and wire it.

    Parameters
    ----------
    m : Module
    rows, cols : int
        Grid size.
    pe_class, pe_params
        The PE and its keyword parameters (every PE is the same, so a mesh emitted once has one PE module).
    en : Value
        The one enable: every PE's ``en`` and every skew register's load enable.
    west : dict of str to list of Value
        Port ``x`` → one value per PE row: row r's value reaches PE ``(r, 0)``'s ``x_in`` after ``r`` enabled
        cycles (registers ``x_skew_r<r>``), then ``x_out`` → ``x_in`` eastwards.
    north : dict of str to list of Value
        Port ``x`` → one value per PE column: column c's value reaches PE ``(0, c)``'s ``x_in`` after ``c`` enabled
        cycles (registers ``x_skew_c<c>``), then ``x_out`` → ``x_in`` southwards.
    south : sequence of str
        Ports chained ``x_out`` → ``x_in`` southwards, starting from 0 in PE row 0.
    load : tuple ``(valid, row, columns)`` or None
        A weight beat: ``columns[c]`` with ``valid`` and its PE ``row`` reach column c after ``c`` enabled cycles
        (registers ``w_valid_c<c>``, ``w_row_c<c>``, ``w_data_c<c>``); PE ``(r, c)`` gets ``w_data`` and
        ``w_we = valid & (row == r)``.
    west_next : dict of str to Value or None
        Lookahead (:class:`hw.systolic.pe.SparsePE` ``lookahead``): port ``x`` of ``west`` → the value row 0's
        feed takes at the next enabled cycle (the D input of the register that drives it), or None. Every PE then
        gets ``x_next``, the value its ``x_in`` takes at the next enabled cycle (PE ``(r, c − 1)``'s ``x_in``; in
        column 0 the skew line's previous register, or ``west_next`` for row 0) and is built with
        ``lookahead=True``; PE ``(0, 0)`` only if ``west_next`` gives a value for every port (else it is built
        without, a second PE module).

    Returns
    -------
    Mesh
        Latency from the feeds to PE ``(r, c)``: ``r + c`` enabled cycles, plus the PE's own registers.
    """
    west, north = west or {}, north or {}

    def delay(value, n, name):
        return delayed(m, value, n, en=en, name=name)

    # column 0's west feeds: the skew line of row r, and (lookahead) the value it takes next: its previous register
    skew_next = {port: [None] * rows for port in west}
    skew = {port: [None] * rows for port in west}
    for port, values in west.items():
        for r in range(rows):
            if west_next is None or r == 0:
                skew[port][r] = delay(values[r], r, f"{port}_skew_r{r}")
                skew_next[port][r] = (west_next or {}).get(port)
            else:
                skew_next[port][r] = delay(values[r], r - 1, f"{port}_skew_r{r}")
                skew[port][r] = delay(skew_next[port][r], 1, f"{port}_skew_r{r}_last")

    pes = [[None] * cols for _ in range(rows)]
    for c in range(cols):
        if load is not None:
            valid, row, columns = load
            w_valid, w_row = delay(valid, c, f"w_valid_c{c}"), delay(row, c, f"w_row_c{c}")
            w_data = delay(columns[c], c, f"w_data_c{c}")
        for r in range(rows):
            ahead = west_next is not None and (c > 0 or all(skew_next[port][r] is not None for port in west))
            params = pe_params | {"lookahead": True} if ahead else pe_params
            pe = pes[r][c] = add_shared(m, f"pe_{r}_{c}", pe_class, **params)
            m.d.comb += pe.en.eq(en)
            if load is not None:
                m.d.comb += [pe.w_we.eq(w_valid & (w_row == r)), pe.w_data.eq(w_data)]
            for port in west:
                source = skew[port][r] if c == 0 else getattr(pes[r][c - 1], f"{port}_out")
                m.d.comb += getattr(pe, f"{port}_in").eq(source)
                if ahead:
                    upcoming = skew_next[port][r] if c == 0 else getattr(pes[r][c - 1], f"{port}_in")
                    m.d.comb += getattr(pe, f"{port}_next").eq(upcoming)
            for port, values in north.items():
                source = (delay(values[c], c, f"{port}_skew_c{c}") if r == 0
                          else getattr(pes[r - 1][c], f"{port}_out"))
                m.d.comb += getattr(pe, f"{port}_in").eq(source)
            if r > 0:
                m.d.comb += [getattr(pe, f"{port}_in").eq(getattr(pes[r - 1][c], f"{port}_out")) for port in south]
    return Mesh(m, pes, en)


def mesh_verilog(m, *, rows, cols, pe_class, pe_params, en, acts, load, acc_bits, zero_bits):
    """The mesh of :class:`hw.systolic.pe.SparsePE` (untiled) that :func:`build_mesh` builds for the systolic array
    (``acts`` west into ``act``; ``psum``, ``zeros`` south; the weight ``load``) with its bottom row de-skewed, as the
    hand-written Verilog of :func:`hw.systolic.grid.grid_verilog` (inside :func:`hw.shared.emit_once` only), so that
    Amaranth never flattens its O(rows·cols) bits. Same timing. Returns the de-skewed sums (signed) and zero
    counts, one per column."""
    valid, row, columns = load
    row_bits = max(1, (rows - 1).bit_length())
    row_x = Signal(row_bits, name="w_row_x")      # rows = 1: the row has no bits
    psum = Signal(cols * acc_bits, name="grid_psum")
    zeros = Signal(cols * zero_bits, name="grid_zeros")
    m.d.comb += row_x.eq(row)
    text = functools.partial(grid_verilog, rows=rows, cols=cols, act_width=len(acts) // rows,
                             acc_bits=acc_bits, zero_bits=zero_bits, row_bits=row_bits,
                             w_bits=len(columns.as_value()) // cols,
                             pe_module=shared_module(pe_class, **pe_params))
    add_verilog(m, "grid", "grid", text, i_en=en, i_acts=acts, i_w_valid=valid, i_w_row=row_x,
                i_w_data=columns.as_value(), o_psum=psum, o_zeros=zeros)
    return ([psum[c * acc_bits:(c + 1) * acc_bits].as_signed() for c in range(cols)],
            [zeros[c * zero_bits:(c + 1) * zero_bits] for c in range(cols)])
