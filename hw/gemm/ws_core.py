"""The GEMM engine's weight-stationary array core: the sparse array with double-buffered weights and tile tags."""

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_bool, check_int
from hw.systolic.beats import act_layout, index_bits, result_layout, weight_layout
from hw.systolic.mac import tree_sum
from hw.systolic.mesh import build_mesh
from hw.systolic.pe import SparsePE

__all__ = ["WSArrayCore"]


class WSArrayCore(wiring.Component):
    """``rows × cols`` array of tiled :class:`SparsePE` (shadow weights, tile tags) for one tile of a GEMM.

    This is the engine's array seam: the engine's control and accumulator talk to it only through the
    members below, so another core with the same members can replace it (the output-stationary core does not fit
    it and has its own top, :class:`hw.gemm.os_dataflow.OutputStationary`).

    - ``weights``: beats of the *next* tile, PE row 0 first, ``rows`` per tile, written into the PEs' shadow
      registers (a beat reaches PE column c ``c + 1`` cycles after its transfer). The controller must finish a
      load before the row tagged ``swap`` that uses it, and start the next load no earlier than the cycle that
      row transfers (the shadow is then free); the core does not check this.
    - ``acts``: one row of A per beat; ``swap`` marks the first row of a tile (it activates the shadow weights
      as it passes each PE); lanes whose ``lane_ok`` bit is 0 are forced to zero (ragged-K padding) and not
      counted (a prefix mask: lane i is real iff i < the tile's real K); ``n_valid`` columns are real; ``tag`` is
      carried to the result unchanged.
    - ``results``: one row of partial sums per activation row, in order, with the row's counts of performed
      (``macs``) and zero-skipped (``zeros``) multiplications over real lanes and columns.

    The core is one pipeline with one enable, ``advance = ~results.valid | results.ready`` (with
    ``advance_on_ready``: ``advance = results.ready``, valid or not, so that a consumer whose ready is one register,
    a skid register's "empty", is the whole enable; same cycles while ``results.ready`` is high). Latency:
    ``rows + cols + pe_pipeline`` cycles from an ``acts`` transfer to the result's first possible transfer.
    ``peek`` shows the valid bit and tag of the row that reaches ``results`` at the next advance (for a
    synchronous accumulator read one cycle ahead), ``peek2`` the same two advances ahead (for the accumulator's
    pipelined read, :class:`hw.gemm.accumulator.AccumulatorBuffer`; at latency 2 it is the ``acts`` transfer).

    Parameters
    ----------
    rows, cols, act_bits, act_signed, weight_bits, acc_bits, keep, block, overflow
        As in :class:`hw.systolic.array.SparseSystolicArray`.
    tag_bits : int
        Width of the opaque per-row tag, 1 … 256.
    pe_pipeline : int
        Pipeline registers in every PE, 0 … 4 (:class:`hw.systolic.pe.SparsePE` ``pipeline``).
    advance_on_ready : bool
        ``advance = results.ready`` (default False: ``~results.valid | results.ready``).

    Members
    -------
    acts : In(stream.Signature(StructLayout({"data", "swap", "lane_ok", "n_valid", "tag"})))
    weights : In(stream.Signature(ArrayLayout(ArrayLayout(entry, keep), cols)))
    results : Out(stream.Signature(StructLayout({"psums", "macs", "zeros", "tag"})))
    advance : Out(1)
    peek, peek2 : Out(StructLayout({"valid", "tag"}))
    """

    def __init__(self, *, rows, cols, act_bits, act_signed, weight_bits, acc_bits, keep, block,
                 overflow="wrap", tag_bits=1, pe_pipeline=0, advance_on_ready=False):
        check_int("rows", rows, 1, 256)
        check_bool("advance_on_ready", advance_on_ready)
        self._advance_on_ready = advance_on_ready
        check_int("cols", cols, 1, 256)
        check_int("tag_bits", tag_bits, 1, 256)
        self._pe_args = dict(act_bits=act_bits, act_signed=act_signed, weight_bits=weight_bits,
                             acc_bits=acc_bits, keep=keep, block=block,
                             zero_bits=(rows * keep).bit_length(), overflow=overflow, tiled=True,
                             pipeline=pe_pipeline)
        SparsePE.check_parameters(**{k: v for k, v in self._pe_args.items() if k != "tiled"})
        self._rows, self._cols, self._block, self._keep = rows, cols, block, keep
        self._n_tile = cols
        k = rows * block
        count = range(rows * cols * keep + 1)
        super().__init__({
            "acts": In(stream.Signature(data.StructLayout({
                "data": act_layout(k=k, act_bits=act_bits, act_signed=act_signed),
                "swap": 1, "lane_ok": k, "n_valid": range(cols + 1), "tag": tag_bits}))),
            "weights": In(stream.Signature(weight_layout(cols=cols, keep=keep, weight_bits=weight_bits,
                                                         index_bits=index_bits(keep=keep, block=block)))),
            "results": Out(stream.Signature(data.StructLayout({
                "psums": result_layout(cols=cols, acc_bits=acc_bits), "macs": count, "zeros": count,
                "tag": tag_bits}))),
            "advance": Out(1),
            "peek": Out(data.StructLayout({"valid": 1, "tag": tag_bits})),
            "peek2": Out(data.StructLayout({"valid": 1, "tag": tag_bits})),
        })

    @property
    def latency(self):
        """Cycles from an ``acts`` transfer to its result's first possible transfer: ``rows + cols + pe_pipeline``."""
        return self._rows + self._cols + self._pe_args["pipeline"]

    def elaborate(self, platform):
        m = Module()
        w_fire, a_fire = self._handshake(m)
        st = self._input_stage(m, w_fire, a_fire)
        mesh = self._pe_grid(m, st)
        self._deskew(m, mesh, st)
        return m

    def _handshake(self, m):
        """The one pipeline enable ``advance`` (class docstring), which is also both inputs' ready.
        Returns the weight and activation transfers. Latency 0."""
        advance = self.advance
        m.d.comb += [
            advance.eq(self.results.ready if self._advance_on_ready else ~self.results.valid | self.results.ready),
            self.weights.ready.eq(advance),
            self.acts.ready.eq(advance),
        ]
        w_fire = self.weights.valid & self.weights.ready
        a_fire = self.acts.valid & self.acts.ready
        return w_fire, a_fire

    def _input_stage(self, m, w_fire, a_fire):
        """The input registers: the row's activations (padded lanes and idle cycles zero: gated multipliers,
        nothing counted), its swap flag and real lanes per PE row, the weight beat with its PE row, and the
        valid/tag shift register ``in_flight``/``tags`` that runs alongside the array. 1 cycle."""
        rows, cols, block = self._rows, self._cols, self._block
        lat = self.latency
        advance = self.advance
        load_row = Signal(range(rows), name="load_row")
        with m.If(w_fire):
            m.d.sync += load_row.eq(0 if rows == 1 else Mux(load_row == rows - 1, 0, load_row + 1))

        row = self.acts.payload
        lane_width = self._pe_args["act_bits"]
        flat = row.data.as_value()
        # The input registers load only on `advance`, where a transfer is just `valid`: the data and flags take the
        # valid bits, not the handshake, so the core's enable is no input of their D logic (docs/synthesis.md)
        a_valid, w_valid = self.acts.valid, self.weights.valid
        masked = Cat(Mux(a_valid & row.lane_ok[i], flat[i * lane_width:(i + 1) * lane_width], Const(0, lane_width))
                     for i in range(rows * block))
        st = SimpleNamespace()
        st.acts_in = Signal(len(masked), name="acts_in")
        st.swap_in = Signal(name="swap_in")
        st.lanes_in = [Signal(range(block + 1), name=f"lanes_in_r{r}") for r in range(rows)]
        st.w_valid = Signal(name="w_valid")
        st.w_row = Signal.like(load_row, name="w_row")
        st.w_data = Signal(self.weights.payload.shape(), name="w_data")
        # stage i: the row i + 1 cycles past its transfer
        st.in_flight = [Signal(name=f"in_flight{i}") for i in range(lat)]
        st.tags = [Signal(data.StructLayout({"n_valid": range(self._n_tile + 1), "tag": len(row.tag)}),
                          name=f"tag{i}")
                   for i in range(lat)]
        lanes = [sum(row.lane_ok[r * block + i] for i in range(block)) for r in range(rows)]
        # what the west feeds of PE row 0 take at the next advance (the PEs' lookahead, hw.systolic.mesh)
        st.next = {"act": masked[:len(masked) // rows], "swap": a_valid & row.swap, "lanes": lanes[0]}
        with m.If(advance):
            m.d.sync += [
                st.acts_in.eq(masked),
                st.swap_in.eq(a_valid & row.swap),
                st.w_valid.eq(w_valid),
                st.w_row.eq(load_row),
                st.w_data.eq(self.weights.payload),
                st.in_flight[0].eq(a_valid),
                st.tags[0].n_valid.eq(row.n_valid),
                st.tags[0].tag.eq(row.tag),
            ]
            for r in range(rows):
                # a prefix mask: the real lanes of PE row r are its ones (no compare of a count: one LUT level)
                m.d.sync += st.lanes_in[r].eq(lanes[r])
            for i in range(1, lat):
                m.d.sync += [st.in_flight[i].eq(st.in_flight[i - 1]), st.tags[i].eq(st.tags[i - 1])]
        return st

    def _mesh_pe(self):
        """The PE class and parameters of the mesh."""
        return SparsePE, self._pe_args

    def _west(self, st):
        """The mesh's west feeds: per PE row, the row's activation block, swap flag and real lanes."""
        rows = self._rows
        width = len(st.acts_in) // rows
        return {"act": [st.acts_in[r * width:(r + 1) * width] for r in range(rows)],
                "swap": [st.swap_in] * rows, "lanes": st.lanes_in}

    def _pe_grid(self, m, st):
        """The ``rows × cols`` PEs (:func:`hw.systolic.mesh.build_mesh`): weight beats reach column c ``c`` cycles
        late (into PE row ``w_row``), the west feeds (:meth:`_west`) enter PE row r ``r`` cycles late and flow east,
        partial sums and counts flow south. Returns the :class:`hw.systolic.mesh.Mesh`. Latency
        ``rows + cols - 1 + pe_pipeline`` from the input registers to the bottom-right PE."""
        pe_class, pe_params = self._mesh_pe()
        return build_mesh(m, rows=self._rows, cols=self._cols, pe_class=pe_class, pe_params=pe_params,
                          en=self.advance, west=self._west(st), south=("psum", "zeros", "macs"),
                          load=(st.w_valid, st.w_row, st.w_data), west_next=self._west_next(st))

    def _west_next(self, st):
        """The PEs' lookahead (:class:`hw.systolic.pe.SparsePE` ``lookahead``): row 0's west feeds at the next
        advance. The multipliers' operands then leave registers, not the index mux (docs/synthesis.md)."""
        return st.next

    def _columns(self, psum):
        """The output columns of one PE column's partial sum (here: the one sum)."""
        return [psum]

    def _count(self, m, mesh, bottom, st, name):
        """A row's count over its real columns: the bottom PE row's ``bottom[c]`` de-skewed (``cols − 1 − c``
        cycles) and summed where ``c < n_valid``. Every column but the last is summed one advance early (from its
        de-skew line's second-to-last register and the tag one advance ahead) into a register, so the counters'
        increment is that register plus one term. Latency up to ``cols − 1``, like the sums."""
        cols = self._cols
        width = self._n_tile // cols            # output columns per PE column
        ahead = mesh.deskew(bottom[:-1], f"{name}_deskew", lead=1)
        early = [Mux(c * width < st.tags[-2].n_valid, value, 0) for c, value in enumerate(ahead)]
        last = Mux((cols - 1) * width < st.tags[-1].n_valid, bottom[cols - 1], 0)
        if not early:
            return last
        part = Signal(range(len(bottom) * (1 << len(bottom[0])) + 1), name=f"{name}_part")
        with m.If(self.advance):
            m.d.sync += part.eq(tree_sum(early))
        return part + last

    def _deskew(self, m, mesh, st):
        """The results: column c of the bottom PE row delayed ``cols - 1 - c`` cycles so that a row leaves in one
        beat, its counts over real columns, its tag, ``peek`` and ``peek2`` (the rows one and two advances ahead).
        Latency up to ``cols - 1``."""
        last = st.tags[-1]
        psums = [column for psum in mesh.deskew(mesh.bottom("psum_out"), "psum_deskew") for column in self._columns(psum)]
        m.d.comb += [self.results.payload.psums[c].eq(psum) for c, psum in enumerate(psums)]
        zeros = self._count(m, mesh, mesh.bottom("zeros_out"), st, "zeros")
        macs = self._count(m, mesh, mesh.bottom("macs_out"), st, "macs")
        m.d.comb += [
            self.results.valid.eq(st.in_flight[-1]),
            self.results.payload.tag.eq(last.tag),
            self.results.payload.zeros.eq(zeros),
            self.results.payload.macs.eq(macs),
            self.peek.valid.eq(st.in_flight[-2]),    # latency >= 2: rows, cols >= 1
            self.peek.tag.eq(st.tags[-2].tag),
        ]
        if len(st.tags) >= 3:
            m.d.comb += [self.peek2.valid.eq(st.in_flight[-3]), self.peek2.tag.eq(st.tags[-3].tag)]
        else:
            m.d.comb += [self.peek2.valid.eq(self.acts.valid & self.acts.ready),
                         self.peek2.tag.eq(self.acts.payload.tag)]
