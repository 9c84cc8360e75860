"""The conversion steps of an OU entry, computed once when the entry is loaded (the lanes only compare a counter).

An OU activation's converted columns, in column order, form groups of ``adcs``; within a group, each accumulator
bank takes per cycle the columns routed to one output, outputs in the order of their first column
(:func:`hw.formats.mapping.conversion_cycles`, docs/rram.md "Architecture"). So every column's conversion cycle
(its *step*) and the activation's cycle count depend on the entry's mask and routing alone: this pipeline computes
them at table-load time, and a lane's conversion stage then selects, in its k-th cycle, the columns whose step is
k — a counter compare instead of the priority logic of a stall loop on the clock's critical path.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.checks import check_int
from hw.formats.mapping import accumulator_banks

__all__ = ["ConversionSteps", "tree_sum"]


def tree_sum(values):
    """Sum of values as a balanced adder tree (a chain of adds is as deep as the list is long); 0 for none."""
    terms = list(values) or [Const(0, 1)]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


class ConversionSteps(wiring.Component):
    """Steps of one OU entry per cycle, pipelined: ``LATENCY`` = 4 cycles from ``valid`` to ``o_valid``.

    Parameters (keyword-only, checked)
    ----------
    ou_cols : int
        Columns of an OU (1 … 64).
    adcs : int
        Converted columns per group (``adcs_per_xbar``), 1 … ``ou_cols``.
    output_bits : int
        Width of a signed routing output (2 … 32).
    tag_bits : int
        Width of ``tag``, carried alongside unchanged (1 … 64).

    Members
    -------
    valid : In(1); mask : In(ou_cols); outputs : In(array of ou_cols signed(output_bits)); tag : In(tag_bits)
        An entry: its column mask and per-column routing outputs (a converted column's output is ≥ 0).
    o_valid : Out(1); o_tag : Out(tag_bits)
        The entry, ``LATENCY`` cycles later (registered).
    step : Out(array of ou_cols unsigned); last : Out(unsigned)
        With ``o_valid`` (registered): column c converts in the activation's conversion cycle ``step[c]``
        (counted from 0; meaningless for a column not in the mask); ``last`` = the activation's conversion cycles − 1
        (0 for an empty mask: an OU converting nothing takes 1 cycle).
    """

    LATENCY = 4

    def __init__(self, *, ou_cols, adcs, output_bits, tag_bits):
        self.oc = check_int("ou_cols", ou_cols, 1, 64)
        self.adcs = check_int("adcs", adcs, 1, ou_cols)
        check_int("output_bits", output_bits, 2, 32)
        check_int("tag_bits", tag_bits, 1, 64)
        self.banks = accumulator_banks(adcs)
        self.bank_bits = self.banks.bit_length() - 1
        self.groups = -(-ou_cols // adcs)
        self.step_shape = unsigned(max(1, (ou_cols - 1).bit_length()))
        super().__init__({
            "valid": In(1), "mask": In(ou_cols), "outputs": In(data.ArrayLayout(signed(output_bits), ou_cols)),
            "tag": In(tag_bits), "o_valid": Out(1), "o_tag": Out(tag_bits),
            "step": Out(data.ArrayLayout(self.step_shape, ou_cols)), "last": Out(self.step_shape),
        })

    def elaborate(self, platform):
        m = Module()
        valid, tag = self._delay(m)
        mask, group, equal, same_bank = self._pairs(m)
        in_group, first, before, group, mask = self._firsts(m, mask, group, equal, same_bank)
        wstep, group, mask = self._ranks(m, in_group, first, before, group, mask)
        self._total(m, wstep, group, mask)
        m.d.comb += [self.o_valid.eq(valid), self.o_tag.eq(tag)]
        return m

    def _delay(self, m):
        """``valid`` and ``tag`` through ``LATENCY`` registers."""
        valid, tag = self.valid, self.tag
        for i in range(self.LATENCY):
            v, t = Signal(name=f"valid{i}"), Signal(len(self.tag), name=f"tag{i}")
            m.d.sync += [v.eq(valid), t.eq(tag)]
            valid, tag = v, t
        return valid, tag

    def _pairs(self, m):
        """Stage 1 (registered): group of every column (its rank among the converted columns // adcs), pairwise
        equal outputs and equal banks (lower index first)."""
        oc, lb = self.oc, self.bank_bits
        mask = Signal(oc, name="mask1")
        group = [Signal(range(max(2, self.groups)), name=f"group1_{c}") for c in range(oc)]
        equal = {(a, c): Signal(name=f"eq1_{a}_{c}") for c in range(oc) for a in range(c)}
        same_bank = {(a, c): Signal(name=f"sb1_{a}_{c}") for c in range(oc) for a in range(c)}
        m.d.sync += mask.eq(self.mask)
        for c in range(oc):
            rank = tree_sum([self.mask[a] for a in range(c)])
            m.d.sync += group[c].eq(tree_sum([rank >= j * self.adcs for j in range(1, self.groups)]))
            for a in range(c):
                oa, ob = self.outputs[a].as_unsigned(), self.outputs[c].as_unsigned()
                m.d.sync += [equal[a, c].eq(oa == ob), same_bank[a, c].eq(oa[:lb] == ob[:lb] if lb else 1)]
        return mask, group, equal, same_bank

    def _firsts(self, m, mask, group, equal, same_bank):
        """Stage 2 (registered): ``in_group[a, c]`` (both converted, same group, same bank), ``first[c]`` (no
        earlier column of its group shares its output) and ``before[a, c]`` (no column ≤ a of c's group has c's
        output: a comes before c's output's first column)."""
        oc = self.oc
        same_group = {k: Signal(name=f"sg_{k[0]}_{k[1]}") for k in equal}
        for (a, c), sg in same_group.items():
            m.d.comb += sg.eq(mask[a] & mask[c] & (group[a] == group[c]))
        in_group = {k: Signal(name=f"ig2_{k[0]}_{k[1]}") for k in equal}
        before = {k: Signal(name=f"bf2_{k[0]}_{k[1]}") for k in equal}
        first = [Signal(name=f"first2_{c}") for c in range(oc)]
        for c in range(oc):
            shares = [same_group[a, c] & equal[a, c] for a in range(c)]
            m.d.sync += first[c].eq(mask[c] & ~Cat(*shares).any() if shares else mask[c])
            for a in range(c):
                m.d.sync += [in_group[a, c].eq(same_group[a, c] & same_bank[a, c]),
                             before[a, c].eq(~Cat(*shares[:a + 1]).any())]
        group2 = [Signal.like(g, name=f"group2_{c}") for c, g in enumerate(group)]
        mask2 = Signal(oc, name="mask2")
        m.d.sync += [mask2.eq(mask)] + [g2.eq(g) for g2, g in zip(group2, group)]
        return in_group, first, before, group2, mask2

    def _ranks(self, m, in_group, first, before, group, mask):
        """Stage 3 (registered): ``wstep[c]``, the rank of c's output among the distinct outputs its group sends to
        its bank, in the order of their first columns."""
        oc = self.oc
        wstep = [Signal(self.step_shape, name=f"wstep3_{c}") for c in range(oc)]
        for c in range(oc):
            m.d.sync += wstep[c].eq(tree_sum([in_group[a, c] & first[a] & before[a, c] for a in range(c)]))
        group3 = [Signal.like(g, name=f"group3_{c}") for c, g in enumerate(group)]
        mask3 = Signal(oc, name="mask3")
        m.d.sync += [mask3.eq(mask)] + [g3.eq(g) for g3, g in zip(group3, group)]
        return wstep, group3, mask3

    def _total(self, m, wstep, group, mask):
        """Stage 4 (registered, the outputs): a group takes as many cycles as distinct ``wstep`` values it holds (they run 0 … n−1);
        ``step`` adds the cycles of the groups before; ``last`` is the sum over the groups, minus 1."""
        oc = self.oc
        cycles = []
        for g in range(self.groups):
            present = [Cat(*[mask[c] & (group[c] == g) & (wstep[c] == j) for c in range(oc)]).any()
                       for j in range(oc)]
            cycles.append(tree_sum(present))
        base = [Const(0, 1)]
        for g in range(1, self.groups):
            base.append(base[-1] + cycles[g - 1])
        for c in range(oc):
            offset = base[0]
            for g in range(1, self.groups):
                offset = Mux(group[c] == g, base[g], offset)
            m.d.sync += self.step[c].eq(offset + wstep[c])
        total = tree_sum(cycles)
        m.d.sync += self.last.eq(Mux(total == 0, 0, total - 1))
