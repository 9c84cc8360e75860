"""Two's-complement integers as the hardware holds them: ranges, range checks, wrapping (vectorized numpy).

The RTL's accumulators wrap or saturate at ``acc_bits``; every golden model and driver uses these functions for
that arithmetic, so the width rules are written once.
"""

import numpy as np

__all__ = ["int_range", "int_array", "check_range", "wrap", "saturate", "wrap_int", "OVERFLOW_MODES",
           "HW_OVERFLOW_MODES", "hw_overflow"]

OVERFLOW_MODES = ("check", "wrap", "saturate")
"""A config's ``overflow``: ``"check"`` (the config proves no sum overflows), ``"wrap"`` or ``"saturate"``."""
HW_OVERFLOW_MODES = ("wrap", "saturate")
"""What an adder does on overflow (the components' ``overflow``)."""


def hw_overflow(overflow: str) -> str:
    """The adders' mode for a config's ``overflow``: ``"check"`` configs never overflow, so their adders wrap."""
    return "saturate" if overflow == "saturate" else "wrap"


def int_range(bits, signed):
    """``(lo, hi)`` of a ``bits``-wide integer, two's complement when ``signed``."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def int_array(x, name, ndim):
    """``x`` as an int64 array of ``ndim`` dimensions; ``ValueError`` naming ``name`` otherwise."""
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    return a.astype(np.int64)


def check_range(a, name, bits, signed):
    """Raise ``ValueError`` naming ``name`` if an element of ``a`` is outside the ``bits``-wide range."""
    lo, hi = int_range(bits, signed)
    bad = (a < lo) | (a > hi)
    if bad.any():
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{name} value {a[bad][0]} is outside the {kind} {bits}-bit range [{lo}, {hi}]")


def wrap(x, bits):
    """Re-interpret the low ``bits`` bits of int64 ``x`` as two's complement (bits <= 64)."""
    s = np.uint64(64 - bits)
    return (x.view(np.uint64) << s).view(np.int64) >> s.astype(np.int64)


def saturate(x, bits):
    """Clip int64 ``x`` to the ``bits``-wide two's-complement range (bits <= 64)."""
    lo, hi = int_range(bits, True)
    return np.clip(x, lo, hi)


def wrap_int(value, bits):
    """:func:`wrap` for one Python int of any size."""
    value = int(value) & ((1 << bits) - 1)
    return value - (1 << bits) if value >> (bits - 1) else value
