"""The activation-sparse engine's array core: :class:`WSArrayCore`'s pipeline around activation-indexed PEs."""

from types import SimpleNamespace

from amaranth.hdl import Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_bool, check_int
from hw.gemm.act_pe import ActPE, act_slot_layout
from hw.gemm.act_select import fill_slots
from hw.gemm.ws_core import WSArrayCore
from hw.systolic.beats import index_bits, result_layout, weight_layout

__all__ = ["ActArrayCore"]


class ActArrayCore(WSArrayCore):
    """``rows × cols`` :class:`hw.gemm.act_pe.ActPE` with the members, enable, skew, de-skew, ``peek`` and
    ``peek2`` of :class:`hw.gemm.ws_core.WSArrayCore` (same latency ``rows + cols``), for one tile of
    ``rows·group·block`` K positions.

    - ``weights``: beats of the next tile, PE row 0 first, ``rows`` per tile; a beat holds ``group·keep`` entries
      (block-major) for each PE column.
    - ``acts``: one step per beat: ``lanes`` (the row's ``k`` activations, invalid lanes zeroed) and ``sel`` (one
      bit per lane: the lanes this step takes, :func:`hw.gemm.act_select.rank_lanes`), ``swap`` (first step of a
      tile), ``n_valid`` (real columns) and the opaque ``tag``. The input registers hold them; the slots of each PE
      row (``keep`` per PE row, PE row 0 first, :func:`hw.gemm.act_select.fill_slots`) are formed behind them, so
      the selection's compare network and its slot compaction take separate cycles at no added latency.
    - ``results``: one row of partial sums per step, with the step's counts of filled (``macs``) and empty
      (``zeros``) slots over real columns.

    Parameters
    ----------
    rows, cols : int
        PE grid, 1 … 256 each.
    act_bits, act_signed, weight_bits, acc_bits, keep, block, act_keep
        As in :class:`hw.gemm.act_pe.ActPE`.
    tag_bits : int
        Width of the opaque per-step tag, 1 … 256.
    pipeline : int
        PE pipeline registers, 0 … 4 (:class:`hw.gemm.act_pe.ActPE` ``pipeline``); latency
        ``rows + cols + pipeline``.
    advance_on_ready : bool
        As in :class:`hw.gemm.ws_core.WSArrayCore`.
    """

    def __init__(self, *, rows, cols, act_bits, act_signed, weight_bits, acc_bits, keep, block, act_keep,
                 tag_bits=1, pipeline=0, advance_on_ready=False):
        check_int("rows", rows, 1, 256)
        check_bool("advance_on_ready", advance_on_ready)
        self._advance_on_ready = advance_on_ready
        check_int("pipeline", pipeline, 0, 4)
        check_int("cols", cols, 1, 256)
        check_int("tag_bits", tag_bits, 1, 256)
        shape = self._pe_shape(keep=keep, block=block, act_keep=act_keep)
        count = range(rows * cols * shape.multipliers + 1)
        self._pe_args = dict(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits, acc_bits=acc_bits,
                             keep=keep, block=block, act_keep=act_keep, count_bits=len(Signal(count)),
                             pipeline=pipeline)
        self._rows, self._cols, self._block, self._keep = rows, cols, block, keep
        self._act_keep = act_keep
        self._n_tile = cols * shape.columns
        self._slot = act_slot_layout(act_bits=act_bits, act_signed=act_signed, block=block)
        k = rows * shape.slots // act_keep * block
        wiring.Component.__init__(self, {
            "acts": In(stream.Signature(data.StructLayout({
                "lanes": data.ArrayLayout(self._slot["value"].shape, k), "sel": k, "swap": 1,
                "n_valid": range(self._n_tile + 1), "tag": tag_bits}))),
            "weights": In(stream.Signature(weight_layout(cols=cols, keep=shape.entries, weight_bits=weight_bits,
                                                         index_bits=index_bits(keep=keep, block=block)))),
            "results": Out(stream.Signature(data.StructLayout({
                "psums": result_layout(cols=self._n_tile, acc_bits=acc_bits), "macs": count, "zeros": count,
                "tag": tag_bits}))),
            "advance": Out(1),
            "peek": Out(data.StructLayout({"valid": 1, "tag": tag_bits})),
            "peek2": Out(data.StructLayout({"valid": 1, "tag": tag_bits})),
        })

    @staticmethod
    def _pe_shape(*, keep, block, act_keep):
        """One PE's ``slots`` per step, weight ``entries``, ``multipliers`` and output ``columns``: ``ActPE`` takes
        ``keep`` slots (``group`` blocks × ``act_keep``) with ``group·keep`` entries and ``keep`` multipliers for
        one column."""
        return SimpleNamespace(slots=keep, entries=keep // act_keep * keep, multipliers=keep, columns=1)

    def _input_stage(self, m, w_fire, a_fire):
        """Input registers: the step's lanes and selection (emptied when no step transfers: empty slots), swap, the
        weight beat with its PE row, and the valid/tag shift register beside the array; then the slots formed from
        the registered lanes (combinational). 1 cycle."""
        rows, cols = self._rows, self._cols
        lat = self.latency
        load_row = Signal(range(rows), name="load_row")
        with m.If(w_fire):
            m.d.sync += load_row.eq(0 if rows == 1 else Mux(load_row == rows - 1, 0, load_row + 1))
        step = self.acts.payload
        st = SimpleNamespace()
        lanes_in = Signal.like(step.lanes, name="lanes_in")
        sel_in = Signal.like(step.sel, name="sel_in")
        st.slots_in = Signal(data.ArrayLayout(self._slot, len(step.sel) // self._block * self._act_keep),
                             name="slots_in")
        fill_slots(m, vals=[lanes_in[i] for i in range(len(step.sel))], sel=list(sel_in), block=self._block,
                   act_keep=self._act_keep, slots=st.slots_in)
        st.swap_in = Signal(name="swap_in")
        st.w_valid = Signal(name="w_valid")
        st.w_row = Signal.like(load_row, name="w_row")
        st.w_data = Signal(self.weights.payload.shape(), name="w_data")
        st.in_flight = [Signal(name=f"in_flight{i}") for i in range(lat)]
        st.tags = [Signal(data.StructLayout({"n_valid": range(self._n_tile + 1), "tag": len(step.tag)}),
                          name=f"tag{i}")
                   for i in range(lat)]
        # under the enable `advance` a transfer is just `valid` (as in WSArrayCore._input_stage)
        a_valid, w_valid = self.acts.valid, self.weights.valid
        with m.If(self.advance):
            m.d.sync += [
                # no step: empty slots (gated multipliers, nothing counted as performed)
                lanes_in.eq(Mux(a_valid, step.lanes.as_value(), 0)), sel_in.eq(Mux(a_valid, step.sel, 0)),
                st.swap_in.eq(a_valid & step.swap),
                st.w_valid.eq(w_valid), st.w_row.eq(load_row), st.w_data.eq(self.weights.payload),
                st.in_flight[0].eq(a_valid), st.tags[0].n_valid.eq(step.n_valid), st.tags[0].tag.eq(step.tag),
            ]
            for i in range(1, lat):
                m.d.sync += [st.in_flight[i].eq(st.in_flight[i - 1]), st.tags[i].eq(st.tags[i - 1])]
        return st

    def _west_next(self, st):
        """The PEs' lookahead (:class:`hw.gemm.act_pe.ActPE` ``lookahead``) everywhere but in PE (0, 0): row 0's
        slots are formed from the input registers combinationally, so their next value is not at hand."""
        return {}

    def _mesh_pe(self):
        """The mesh's PE: :class:`hw.gemm.act_pe.ActPE`."""
        return ActPE, self._pe_args

    def _west(self, st):
        """The mesh's west feeds: per PE row, its ``keep`` slots of the step and the swap flag."""
        rows = self._rows
        width = len(st.slots_in) // rows
        return {"slots": [st.slots_in[r * width:(r + 1) * width] for r in range(rows)], "swap": [st.swap_in] * rows}
