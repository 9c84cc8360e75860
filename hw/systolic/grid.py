"""The array's grid as hand-written Verilog: what large arrays emit instead of letting Amaranth flatten it.

Amaranth builds a bit-level netlist of every module it converts, so the glue between the PE rows of an ``R × C``
array (partial sums and zero counts passed down, the activation skew lines, the weight column delays, the result
de-skew lines: O(R·C) bits) costs time linear in the array's content. :func:`grid_verilog` writes that glue, and
the PE row (:func:`row_verilog`: ``cols`` instances of the once-emitted :class:`hw.systolic.pe.SparsePE` module),
as plain Verilog text; the array adds it with :func:`hw.shared.add_verilog` when it is emitted once. The grid is
the mesh :func:`hw.systolic.mesh.build_mesh` builds for the array plus its de-skew, register for register in
timing: every register loads only while ``en`` is high, starts at 0 and is cleared by ``rst`` (synchronous, active
high), as Amaranth's registers are.

Ports of the module (``clk``, ``rst``, ``en`` 1 bit each):

- ``acts`` (in, ``rows·act_width``): the input stage's activation row; K-block r at bits
  ``[r·act_width, (r+1)·act_width)`` enters PE row r after ``r`` enabled cycles.
- ``w_valid`` (in, 1), ``w_row`` (in, ``row_bits``), ``w_data`` (in, ``cols·w_bits``): the input stage's weight
  beat; column c's entries at bits ``[c·w_bits, (c+1)·w_bits)``; all three reach PE column c after ``c`` enabled
  cycles (PE (r, c) writes when the delayed ``w_valid`` is high and the delayed ``w_row`` equals r).
- ``psum`` (out, ``cols·acc_bits``), ``zeros`` (out, ``cols·zero_bits``): the bottom row's partial sums and zero
  counts, column c delayed ``cols − 1 − c`` enabled cycles (de-skewed), at bits ``[c·w, (c+1)·w)``.
"""

__all__ = ["grid_verilog", "row_verilog"]


def _line(name, width, n, d):
    """Declarations of ``d`` (a ``width``-bit expression) through ``n`` enabled registers, as one shift register
    ``<name>_line``; returns ``(lines, expression of the output)`` (``d`` itself when ``n`` is 0)."""
    if n == 0:
        return [], d
    bits = n * width
    shift = d if n == 1 else f"{{ {name}_line[{bits - width - 1}:0], {d} }}"
    return [f"  reg [{bits - 1}:0] {name}_line = {bits}'d0;",
            "  always @(posedge clk)",
            f"    if (rst) {name}_line <= {bits}'d0;",
            f"    else if (en) {name}_line <= {shift};"], f"{name}_line[{bits - 1}:{bits - width}]"


def row_verilog(name, *, cols, act_width, acc_bits, zero_bits, row_bits, w_bits, pe_module):
    """Verilog text of module ``name``: one PE row, ``cols`` instances of ``pe_module`` (a
    :class:`hw.systolic.pe.SparsePE`) side by side. Activations enter column 0 (``act_in``) and flow right through
    the PEs' ``act_out``; column c's partial sum and zero count come in from above (``psum_in``, ``zeros_in``, bits
    ``[c·w, (c+1)·w)``) and leave below (``psum_out``, ``zeros_out``); PE c writes ``w_data``'s column c when
    ``w_valid[c]`` is high and ``w_row``'s column c equals the row's index ``row``. Timing: that of its PEs."""
    acc, zb, rb, wb, aw = acc_bits, zero_bits, row_bits, w_bits, act_width
    out = [f"module {name}(clk, rst, en, row, act_in, psum_in, zeros_in, w_valid, w_row, w_data, psum_out, zeros_out);",
           "  input clk;", "  input rst;", "  input en;", f"  input [{rb - 1}:0] row;", f"  input [{aw - 1}:0] act_in;",
           f"  input [{cols * acc - 1}:0] psum_in;", f"  input [{cols * zb - 1}:0] zeros_in;",
           f"  input [{cols - 1}:0] w_valid;", f"  input [{cols * rb - 1}:0] w_row;",
           f"  input [{cols * wb - 1}:0] w_data;",
           f"  output [{cols * acc - 1}:0] psum_out;", f"  output [{cols * zb - 1}:0] zeros_out;",
           # act[c] enters PE c; the last PE's act_out has no consumer
           f"  wire [{(cols + 1) * aw - 1}:0] act;", f"  assign act[{aw - 1}:0] = act_in;"]
    for c in range(cols):
        out += [f"  {pe_module} pe_{c} (.clk(clk), .rst(rst), .en(en),",
                f"    .w_we(w_valid[{c}] & (w_row[{(c + 1) * rb - 1}:{c * rb}] == row)),"
                f" .w_data(w_data[{(c + 1) * wb - 1}:{c * wb}]),",
                f"    .act_in(act[{(c + 1) * aw - 1}:{c * aw}]), .act_out(act[{(c + 2) * aw - 1}:{(c + 1) * aw}]),",
                f"    .psum_in(psum_in[{(c + 1) * acc - 1}:{c * acc}]),"
                f" .psum_out(psum_out[{(c + 1) * acc - 1}:{c * acc}]),",
                f"    .zeros_in(zeros_in[{(c + 1) * zb - 1}:{c * zb}]),"
                f" .zeros_out(zeros_out[{(c + 1) * zb - 1}:{c * zb}]));"]
    out.append("endmodule")
    return "\n".join(out) + "\n"


def grid_verilog(name, *, rows, cols, act_width, acc_bits, zero_bits, row_bits, w_bits, pe_module):
    """Verilog text of module ``name`` and of its PE row ``<name>_row`` (:func:`row_verilog`, ``cols`` instances of
    ``pe_module``, a :class:`hw.systolic.pe.SparsePE` with ``act_width``-bit activation blocks and ``w_bits`` weight
    bits): ``rows`` row instances, their row index ``row_bits`` wide, with the skew, weight-delay and de-skew lines
    described in this module's docstring.

    Deterministic: the same arguments give the same text. Its size grows with ``rows + cols``, not ``rows·cols``.
    """
    acc, zb, rb, wb = acc_bits, zero_bits, row_bits, w_bits
    row_module = f"{name}_row"
    out = [row_verilog(row_module, cols=cols, act_width=act_width, acc_bits=acc, zero_bits=zb, row_bits=rb,
                       w_bits=wb, pe_module=pe_module).rstrip("\n"),
           f"module {name}(clk, rst, en, acts, w_valid, w_row, w_data, psum, zeros);",
           "  input clk;", "  input rst;", "  input en;",
           f"  input [{rows * act_width - 1}:0] acts;", "  input w_valid;", f"  input [{rb - 1}:0] w_row;",
           f"  input [{cols * wb - 1}:0] w_data;",
           f"  output [{cols * acc - 1}:0] psum;", f"  output [{cols * zb - 1}:0] zeros;",
           f"  wire [{cols - 1}:0] w_valid_c;", f"  wire [{cols * rb - 1}:0] w_row_c;",
           f"  wire [{cols * wb - 1}:0] w_data_c;"]
    # w_valid and w_row are the same for every column: one line, tapped after c registers for column c
    lines, _ = _line("w_ctl", 1 + rb, cols - 1, "{ w_row, w_valid }")
    out += lines
    for c in range(cols):
        tap = "{ w_row, w_valid }" if c == 0 else f"w_ctl_line[{c * (1 + rb) - 1}:{(c - 1) * (1 + rb)}]"
        out.append(f"  assign {{ w_row_c[{(c + 1) * rb - 1}:{c * rb}], w_valid_c[{c}] }} = {tap};")
        lines, q = _line(f"w_data_c{c}", wb, c, f"w_data[{(c + 1) * wb - 1}:{c * wb}]")
        out += lines + [f"  assign w_data_c[{(c + 1) * wb - 1}:{c * wb}] = {q};"]
    for r in range(rows):
        lines, act = _line(f"act_skew_r{r}", act_width, r, f"acts[{(r + 1) * act_width - 1}:{r * act_width}]")
        above_psum = f"{cols * acc}'d0" if r == 0 else f"psum_r{r - 1}"
        above_zeros = f"{cols * zb}'d0" if r == 0 else f"zeros_r{r - 1}"
        out += lines + [
            f"  wire [{cols * acc - 1}:0] psum_r{r};", f"  wire [{cols * zb - 1}:0] zeros_r{r};",
            f"  {row_module} row_{r} (.clk(clk), .rst(rst), .en(en), .row({rb}'d{r}), .act_in({act}),",
            f"    .psum_in({above_psum}), .zeros_in({above_zeros}), .w_valid(w_valid_c), .w_row(w_row_c),",
            f"    .w_data(w_data_c), .psum_out(psum_r{r}), .zeros_out(zeros_r{r}));"]
    last = rows - 1
    for c in range(cols):
        d = f"{{ zeros_r{last}[{(c + 1) * zb - 1}:{c * zb}], psum_r{last}[{(c + 1) * acc - 1}:{c * acc}] }}"
        lines, q = _line(f"deskew_c{c}", zb + acc, cols - 1 - c, d)
        out += lines + [f"  assign {{ zeros[{(c + 1) * zb - 1}:{c * zb}], psum[{(c + 1) * acc - 1}:{c * acc}] }}"
                        f" = {q};"]
    out.append("endmodule")
    return "\n".join(out) + "\n"
