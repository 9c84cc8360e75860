"""The array core of the activation-sparse engine with weights sparse along N: outer-product PEs in the same mesh."""

from amaranth.hdl import Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.gemm.act_core import ActArrayCore
from hw.gemm.act_pe import act_slot_layout
from hw.gemm.outer_pe import OuterPE
from hw.systolic.beats import index_bits, result_layout, weight_layout

__all__ = ["OuterArrayCore"]


class OuterArrayCore(ActArrayCore):
    """``rows × cols`` :class:`hw.gemm.outer_pe.OuterPE` with the members, enable, skew, de-skew, ``peek`` and
    ``peek2`` of :class:`hw.gemm.act_core.ActArrayCore` (same latency ``rows + cols``), for one tile of
    ``rows·block`` K positions × ``cols·block`` output columns.

    - ``weights``: beats of the next tile, PE row 0 first, ``rows`` per tile; a beat holds, for each PE column,
      ``block·keep`` entries (entry ``kr·keep + e``: entry e of K row kr of the PE's K-block, N-block = the column).
    - ``acts``: one step per beat: ``slots`` (``act_keep`` activation slots per PE row, PE row 0 first), ``swap``,
      ``n_valid`` (real output columns, 0 … ``cols·block``) and the opaque ``tag``.
    - ``results``: one row of ``cols·block`` partial sums per step (PE column c's N-block at ``c·block …``), with
      the step's counts of products with a non-zero (``macs``) and a zero (``zeros``) activation over the PE
      columns whose N-block starts below ``n_valid``.

    Parameters
    ----------
    rows, cols : int
        PE grid, 1 … 256 each.
    act_bits, act_signed, weight_bits, acc_bits, keep, block, act_keep
        As in :class:`hw.gemm.outer_pe.OuterPE`.
    tag_bits : int
        Width of the opaque per-step tag, 1 … 256.
    """

    def __init__(self, *, rows, cols, act_bits, act_signed, weight_bits, acc_bits, keep, block, act_keep,
                 tag_bits=1):
        check_int("rows", rows, 1, 256)
        check_int("cols", cols, 1, 256)
        check_int("tag_bits", tag_bits, 1, 256)
        count = range(rows * cols * keep * act_keep + 1)
        self._pe_args = dict(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits, acc_bits=acc_bits,
                             keep=keep, block=block, act_keep=act_keep, count_bits=len(Signal(count)),
                             pipeline=0)
        self._rows, self._cols, self._block, self._keep = rows, cols, block, keep
        self._n_tile = cols * block
        slot = act_slot_layout(act_bits=act_bits, act_signed=act_signed, block=block)
        wiring.Component.__init__(self, {
            "acts": In(stream.Signature(data.StructLayout({
                "slots": data.ArrayLayout(slot, rows * act_keep), "swap": 1, "n_valid": range(self._n_tile + 1),
                "tag": tag_bits}))),
            "weights": In(stream.Signature(weight_layout(cols=cols, keep=block * keep, weight_bits=weight_bits,
                                                         index_bits=index_bits(keep=keep, block=block)))),
            "results": Out(stream.Signature(data.StructLayout({
                "psums": result_layout(cols=self._n_tile, acc_bits=acc_bits), "macs": count, "zeros": count,
                "tag": tag_bits}))),
            "advance": Out(1),
            "peek": Out(data.StructLayout({"valid": 1, "tag": tag_bits})),
            "peek2": Out(data.StructLayout({"valid": 1, "tag": tag_bits})),
        })

    def _mesh_pe(self):
        """The mesh's PE: :class:`hw.gemm.outer_pe.OuterPE` (no PE pipeline)."""
        return OuterPE, {k: v for k, v in self._pe_args.items() if k != "pipeline"}

    def _columns(self, psum):
        """A PE column's ``block`` partial sums, its N-block's columns in order."""
        return [psum[j] for j in range(self._block)]
