"""The N:M sparse systolic array's config: :class:`SystolicConfig`."""

from dataclasses import dataclass
from typing import ClassVar

from gen.config import MAX_K_LIMIT, ArrayConfig, param

__all__ = ["SystolicConfig"]


@dataclass(frozen=True, kw_only=True)
class SystolicConfig(ArrayConfig, fields_after="block"):
    """Parameters of one ``rows × cols`` weight-stationary array for ``keep``-of-``block`` sparse weights.

    The array computes ``C[M × cols] = A[M × k] · W[k × cols]`` with ``k = rows · block``. Every field is
    validated on construction (also by :func:`dataclasses.replace`), in field order except that ``block`` is
    checked before ``keep``, then the accumulator rule; the first violation is reported. The array fields are
    declared once, in :class:`gen.config.ArrayConfig`; this class adds ``max_k``.

    Parameters
    ----------
    rows, cols : int
        PE rows (row r covers K-block r) and columns (column c computes output channel c); 1 … 64.
    act_bits : int
        Activation width; 2 … 16.
    act_signed : bool
        Activations are two's complement (``True``) or unsigned (``False``).
    weight_bits : int
        Weight width (weights are always two's complement); 2 … 16.
    acc_bits : int
        Partial-sum and result width (two's complement); 4 … 64.
    keep, block : int
        N:M sparsity: at most ``keep`` non-zeros in every ``block`` consecutive K-weights; ``block`` in
        {1, 2, 4, 8, 16}, 1 ≤ ``keep`` ≤ ``block``; dense when ``keep == block``.
    max_k : int or None
        Longest reduction the accumulator must hold; ``rows · block`` … 2**20. ``None`` means
        ``rows · block`` (see :attr:`max_reduction`).
    overflow : str
        ``"check"``: ``acc_bits`` must hold the worst-case sum of ``max_k`` products (checked here);
        ``"wrap"``: two's-complement wrap-around; ``"saturate"``: every PE clamps its partial sum.
    counter_bits : int
        Width of the (wrapping) performance counters; 16 … 64.
    pe_pipeline : int
        Pipeline registers in every PE, 0 … 4 (see :class:`hw.systolic.pe.SparsePE`): 1 registers the products,
        2 also the selected activations, 3 the products a second time, 4 also the sum of the ``keep`` products. Each stage adds one cycle of latency and raises fmax. Derived names
        get a ``_p<n>`` suffix when it is not 0.
    name : str or None
        Verilog top-module name: an identifier of at most 64 characters that is not a keyword. ``None``
        means a name derived from the parameters, e.g. ``ssa_8x8_2of4_s8w8acc32`` (see :attr:`top`).

    ``max_k`` and ``name`` stay ``None`` unless set, so a copy made with :func:`dataclasses.replace`
    re-derives them from its new parameters.

    Raises
    ------
    TypeError
        If a field has the wrong type (numpy integer, float and bool scalars count as their Python types and are
        stored as them).
    ValueError
        If a field is out of range, or ``acc_bits`` is too narrow for ``overflow = "check"``.
        The message names the field, its value and what is allowed.
    """

    max_k: int | None = param(None, "rows·block", MAX_K_LIMIT)

    kind: ClassVar[str] = "systolic"
    DERIVED: ClassVar[tuple[str, ...]] = ("k", "max_reduction", "sparse", "index_bits", "multipliers",
                                          "weight_entry_bits")

    def __post_init__(self):
        super().__post_init__()
        if self.overflow == "check":
            self._check_accumulator(self.max_reduction)

    def _derived_name(self):
        suffix = {"check": "", "wrap": "_wrap", "saturate": "_sat"}[self.overflow]
        suffix += f"_p{self.pe_pipeline}" if self.pe_pipeline else ""
        return (f"ssa_{self.rows}x{self.cols}_{self.keep}of{self.block}_{'s' if self.act_signed else 'u'}"
                f"{self.act_bits}w{self.weight_bits}acc{self.acc_bits}{suffix}")

    @property
    def max_reduction(self) -> int:
        """The reduction length the accumulator is sized for: ``max_k``, or ``rows · block`` when unset."""
        return self.k if self.max_k is None else self.max_k

    @property
    def top(self) -> str:
        """Verilog top-module name: ``name``, or the name derived from the parameters when unset."""
        return self._derived_name() if self.name is None else self.name

    def summary(self) -> str:
        return (f"{self.rows}x{self.cols}  {self.keep}:{self.block}  "
                f"{'signed' if self.act_signed else 'unsigned':<8}")
