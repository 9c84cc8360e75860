"""The array core of the activation-sparse engine with weights sparse along N: outer-product PEs in the same mesh."""

from types import SimpleNamespace

from hw.gemm.act_core import ActArrayCore
from hw.gemm.outer_pe import OuterPE

__all__ = ["OuterArrayCore"]


class OuterArrayCore(ActArrayCore):
    """``rows × cols`` :class:`hw.gemm.outer_pe.OuterPE` with the members, enable, skew, de-skew, ``peek`` and
    ``peek2`` of :class:`hw.gemm.act_core.ActArrayCore` (latency ``rows + cols + pipeline``), for one tile of
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
    pipeline : int
        0 … 4, :class:`hw.gemm.outer_pe.OuterPE`'s pipeline registers; latency ``rows + cols + pipeline``.
    """

    @staticmethod
    def _pe_shape(*, keep, block, act_keep):
        """``OuterPE``: ``act_keep`` slots, ``block·keep`` entries, ``act_keep·keep`` multipliers, ``block`` output
        columns."""
        return SimpleNamespace(slots=act_keep, entries=block * keep, multipliers=act_keep * keep, columns=block)

    def _mesh_pe(self):
        """The mesh's PE: :class:`hw.gemm.outer_pe.OuterPE`."""
        return OuterPE, self._pe_args

    def _columns(self, psum):
        """A PE column's ``block`` partial sums, its N-block's columns in order."""
        return [psum[j] for j in range(self._block)]
