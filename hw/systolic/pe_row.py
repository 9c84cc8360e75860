"""One row of the systolic array as a component: the repeated block large arrays emit once (:mod:`hw.shared`)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.shared import add_shared
from hw.systolic.beats import index_bits
from hw.systolic.pe import SparsePE

__all__ = ["PERow"]


class PERow(wiring.Component):
    """``cols`` :class:`hw.systolic.pe.SparsePE` side by side: activations enter column 0 and flow right, each
    column's partial sum and zero count come in from above and leave below. The PE row index is an input
    (``row``), so every row of an array is the same module.

    Timing: that of its PEs (1 cycle per PE from ``act_in``; ``1 + pipeline`` cycles from ``act_in`` to the
    ``psum_out``/``zeros_out`` that include its products). Every register updates only while ``en`` is high.

    Parameters
    ----------
    cols : int
        PE columns, 1 … 256.
    row_bits : int
        Width of ``row`` and of each ``w_row`` entry.
    **pe_args
        The :class:`hw.systolic.pe.SparsePE` parameters (untiled).

    Members
    -------
    en : In(1)
    row : In(row_bits)
        This row's index; PE (row, c) writes its weights when ``w_valid[c] & (w_row[c] == row)``.
    act_in : In(block·act_bits)
        The activation block entering column 0 (lane i at bits ``[i·act_bits, (i+1)·act_bits)``).
    psum_in, psum_out : In/Out(cols·acc_bits)
        Column c's partial sum at bits ``[c·acc_bits, (c+1)·acc_bits)``, two's complement.
    zeros_in, zeros_out : In/Out(cols·zero_bits)
    w_valid : In(cols)
    w_row : In(cols·row_bits)
    w_data : In(cols·keep·(weight_bits + index_bits))
        Column c's weight entries (the array's weight beat layout) at bits ``[c·keep·entry, (c+1)·keep·entry)``.
    """

    def __init__(self, *, cols, row_bits, **pe_args):
        check_int("cols", cols, 1, 256)
        check_int("row_bits", row_bits, 1, 16)
        SparsePE.check_parameters(**pe_args)
        self._cols, self._pe_args = cols, pe_args
        # flat vectors, not views: a view port gets a named wire per field in the parent, per instance
        self._act_width = pe_args["act_bits"] * pe_args["block"]
        self._entry_bits = pe_args["weight_bits"] + index_bits(keep=pe_args["keep"], block=pe_args["block"])
        self._row_bits = row_bits
        acc, zero_bits, keep = pe_args["acc_bits"], pe_args["zero_bits"], pe_args["keep"]
        super().__init__({
            "en": In(1),
            "row": In(row_bits),
            "act_in": In(self._act_width),
            "psum_in": In(cols * acc), "psum_out": Out(cols * acc),
            "zeros_in": In(cols * zero_bits), "zeros_out": Out(cols * zero_bits),
            "w_valid": In(cols),
            "w_row": In(cols * row_bits),
            "w_data": In(cols * keep * self._entry_bits),
        })

    def elaborate(self, platform):
        m = Module()
        acc, zero_bits = self._pe_args["acc_bits"], self._pe_args["zero_bits"]
        w_bits = self._pe_args["keep"] * self._entry_bits
        left = None
        for c in range(self._cols):
            pe = add_shared(m, f"pe_{c}", SparsePE, **self._pe_args)
            m.d.comb += [
                pe.en.eq(self.en),
                pe.w_we.eq(self.w_valid[c] & (self.w_row[c * self._row_bits:(c + 1) * self._row_bits] == self.row)),
                pe.w_data.eq(self.w_data[c * w_bits:(c + 1) * w_bits]),
                pe.act_in.eq(self.act_in if left is None else left.act_out),
                pe.psum_in.eq(self.psum_in[c * acc:(c + 1) * acc]),
                pe.zeros_in.eq(self.zeros_in[c * zero_bits:(c + 1) * zero_bits]),
                self.psum_out[c * acc:(c + 1) * acc].eq(pe.psum_out),
                self.zeros_out[c * zero_bits:(c + 1) * zero_bits].eq(pe.zeros_out),
            ]
            left = pe
        return m
