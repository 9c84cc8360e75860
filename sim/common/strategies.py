"""Hypothesis strategies shared by the property tests (imported by tests only: needs the ``test`` extra)."""

from hypothesis import strategies as st

from hw.formats.mapping import CrossbarGeometry

__all__ = ["crossbar_geometries"]


@st.composite
def crossbar_geometries(draw, *, max_side: int = 40):
    """A random valid :class:`CrossbarGeometry`: cells of 1, 2 or 4 bits, 2 … ``max_side`` rows and columns, any OU
    that fits."""
    cell_bits = draw(st.sampled_from([1, 2, 4]))
    xbar_rows, xbar_cols = draw(st.integers(2, max_side)), draw(st.integers(2, max_side))
    return CrossbarGeometry(xbar_rows=xbar_rows, xbar_cols=xbar_cols, cell_bits=cell_bits,
                            ou_rows=draw(st.integers(1, xbar_rows)), ou_cols=draw(st.integers(1, xbar_cols)))
