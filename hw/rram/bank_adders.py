"""The shift-and-add of a crossbar lane, pipelined: per accumulator bank, the sum of the terms of the columns the
conversion stage selected for that bank in one cycle (docs/rram.md, "Architecture")."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.rram.steps import tree_sum

__all__ = ["BankAdders"]

CHUNK = 4       # terms summed in the first adder stage (two adder levels per stage at most)


class BankAdders(wiring.Component):
    """Per bank, ``Σ_c sel[b][c] · terms[c]`` and the output the selected columns share; ``LATENCY`` = 3 cycles.

    Stage T registers the inputs, stage S1 sums chunks of ``CHUNK`` = 4 selected terms, stage S2 sums the chunks;
    one input cycle per clock, no stalls.

    Parameters (keyword-only, checked)
    ----------
    ou_cols : int
        Terms per cycle (1 … 64). ``banks`` : int: accumulator banks (1 … 64).
    term_bits : int
        Width of a signed term (2 … 48). ``output_bits`` : int: width of a signed output index (2 … 32).
    tag_bits : int
        Width of ``tag``, carried alongside (1 … 16).

    Members
    -------
    sel : In(array of banks × ou_cols bits); terms : In(array of ou_cols signed(term_bits));
    outputs : In(array of ou_cols signed(output_bits)); tag : In(tag_bits)
        One cycle's selection: bank b adds the terms of the columns set in ``sel[b]``, which must all route to
        one output (their ``outputs`` entries are OR-ed).
    o_valid : Out(array of banks bits); o_output : Out(array of banks); o_sum : Out(array of banks signed);
    o_tag : Out(tag_bits)
        ``LATENCY`` cycles later (registered): bank b had a selected column, its output and its sum
        (``term_bits + bits(ou_cols)`` bits, exact).
    """

    LATENCY = 3

    def __init__(self, *, ou_cols, banks, term_bits, output_bits, tag_bits):
        self.oc = check_int("ou_cols", ou_cols, 1, 64)
        self.nb = check_int("banks", banks, 1, 64)
        check_int("term_bits", term_bits, 2, 48)
        check_int("output_bits", output_bits, 2, 32)
        check_int("tag_bits", tag_bits, 1, 16)
        self.sum_shape = signed(term_bits + max(1, ou_cols.bit_length()))
        super().__init__({
            "sel": In(data.ArrayLayout(unsigned(ou_cols), banks)),
            "terms": In(data.ArrayLayout(signed(term_bits), ou_cols)),
            "outputs": In(data.ArrayLayout(signed(output_bits), ou_cols)), "tag": In(tag_bits),
            "o_valid": Out(banks), "o_output": Out(data.ArrayLayout(signed(output_bits), banks)),
            "o_sum": Out(data.ArrayLayout(self.sum_shape, banks)), "o_tag": Out(tag_bits),
        })

    def elaborate(self, platform):
        m = Module()
        oc, nb = self.oc, self.nb
        t_sel, t_terms, t_outputs, t_tag = (Signal.like(self.sel, name="t_sel"), Signal.like(self.terms, name="t_terms"),
                                            Signal.like(self.outputs, name="t_outputs"), Signal.like(self.tag, name="t_tag"))
        m.d.sync += [t_sel.eq(self.sel), t_terms.eq(self.terms), t_outputs.eq(self.outputs), t_tag.eq(self.tag)]
        chunks = [range(i, min(i + CHUNK, oc)) for i in range(0, oc, CHUNK)]
        s1_valid, s1_tag = Signal(nb), Signal.like(self.tag, name="s1_tag")
        s1_out = [Signal.like(self.outputs[0], name=f"s1_out{b}") for b in range(nb)]
        s1_part = [[Signal(self.sum_shape, name=f"s1_part{b}_{i}") for i in range(len(chunks))] for b in range(nb)]
        m.d.sync += s1_tag.eq(t_tag)
        for b in range(nb):
            sel = t_sel[b]
            m.d.sync += s1_valid[b].eq(sel.any())
            # the selected columns share one output, so an AND-OR picks it (no priority chain)
            out = 0
            for c in range(oc):
                out = out | Mux(sel[c], t_outputs[c].as_unsigned(), 0)
            m.d.sync += s1_out[b].eq(out)
            for i, chunk in enumerate(chunks):
                m.d.sync += s1_part[b][i].eq(tree_sum(Mux(sel[c], t_terms[c], 0) for c in chunk))
        m.d.sync += [self.o_valid.eq(s1_valid), self.o_tag.eq(s1_tag)]
        for b in range(nb):
            m.d.sync += [self.o_output[b].eq(s1_out[b]), self.o_sum[b].eq(tree_sum(s1_part[b]))]
        return m
