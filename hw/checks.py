"""The one argument validator of sparsegen: configs, component constructors, public functions and CLI.

Every check raises with one message format, naming the argument, the value and what is allowed::

    <name> = <value> <problem>: allowed <what>

``TypeError`` for a value of the wrong type, ``ValueError`` for a value of the right type that is out of range
or not one of the choices, as amaranth does. numpy scalars are accepted where their Python counterparts are
(``np.int64(4)`` is an integer, ``np.float32(0.5)`` a number), and the checks return the plain Python value so
that callers store ``int``/``float``, never numpy scalars. Pure Python and numpy: importing this module does not
import Amaranth.
"""

import math
import numbers

import numpy as np

__all__ = ["fail", "check_int", "check_float", "check_bool", "check_choice", "check_str", "check_int_array",
           "int_range"]


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(name, value, problem, allowed=None, *, exc=ValueError):
    """Raise ``exc`` with the house message ``<name> = <value> <problem>: allowed <allowed>``."""
    tail = f": allowed {allowed}" if allowed is not None else ""
    raise exc(f"{name} = {_show(value)} {problem}{tail}")


def _range_text(lo, hi):
    if lo is None and hi is None:
        return "any integer"
    if hi is None:
        return f"{lo} or more"
    if lo is None:
        return f"{hi} or less"
    return f"{lo} … {hi}"


def check_int(name, value, lo=None, hi=None, *, allowed=None):
    """``value`` must be an integer (Python or numpy, not ``bool``) in ``[lo, hi]``; returns it as ``int``.

    ``allowed`` replaces the range in the message (e.g. ``"a power of two 1 … 16"``).
    """
    allowed = allowed or _range_text(lo, hi)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        fail(name, value, f"is a {type(value).__name__}, not an integer", allowed, exc=TypeError)
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        fail(name, value, "is out of range", allowed)
    return value


def check_float(name, value, lo=None, hi=None, *, allowed=None):
    """``value`` must be a finite real number (int or float, Python or numpy, not ``bool``) in ``[lo, hi]``."""
    allowed = allowed or (f"a finite number {lo} … {hi}" if lo is not None and hi is not None
                          else f"a finite number{f' ≥ {lo}' if lo is not None else ''}"
                               f"{f' ≤ {hi}' if hi is not None else ''}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        fail(name, value, f"is a {type(value).__name__}, not a number", allowed, exc=TypeError)
    value = float(value)
    if not math.isfinite(value):
        fail(name, value, "is not finite", allowed)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        fail(name, value, "is out of range", allowed)
    return value


def check_bool(name, value):
    """``value`` must be a ``bool`` (Python or numpy); returns it as ``bool``."""
    if not isinstance(value, (bool, np.bool_)):
        fail(name, value, f"is a {type(value).__name__}, not a bool", "True or False", exc=TypeError)
    return bool(value)


def check_str(name, value, allowed="a string"):
    """``value`` must be a ``str``."""
    if not isinstance(value, str):
        fail(name, value, f"is a {type(value).__name__}, not a str", allowed, exc=TypeError)
    return value


def check_choice(name, value, choices):
    """``value`` must be one of ``choices`` (compared with ``==``, of the choices' type); returns it."""
    allowed = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices)
    kind = type(choices[0])
    ok_type = isinstance(value, kind) or (kind is int and isinstance(value, numbers.Integral))
    if isinstance(value, (bool, np.bool_)) and kind is not bool:
        ok_type = False
    if not ok_type:
        fail(name, value, f"is a {type(value).__name__}, not a {kind.__name__}", allowed, exc=TypeError)
    if kind is int:
        value = int(value)
    if value not in choices:
        fail(name, value, "is not allowed", allowed)
    return value


def int_range(bits, signed):
    """The ``(lo, hi)`` range of a ``bits``-wide integer, two's complement when ``signed``."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def check_int_array(name, value, *, ndim=None, bits=None, signed=True, lo=None, hi=None):
    """``value`` must be an array-like of integers (integer dtype, or floats/objects that are whole numbers).

    Returns an ``int64`` array. ``ndim`` fixes the number of dimensions; ``bits``/``signed`` (or ``lo``/``hi``)
    bound the elements. A float array with a fractional, NaN or infinite element is a ``TypeError``: integer
    hardware never rounds silently.
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:   # ragged nested lists and the like
        fail(name, type(value).__name__, f"is not an array ({exc})", "an integer array", exc=TypeError)
    if ndim is not None and arr.ndim != ndim:
        fail(name, f"array of shape {arr.shape}", f"has {arr.ndim} dimension(s)",
             f"{ndim} dimension(s)")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
                                     or arr.dtype == object):
        fail(name, f"array of dtype {arr.dtype}", "is not integer", "an integer array", exc=TypeError)
    if not np.issubdtype(arr.dtype, np.integer):
        try:
            as_float = arr.astype(np.float64)
        except (TypeError, ValueError):
            fail(name, f"array of dtype {arr.dtype}", "is not numeric", "an integer array", exc=TypeError)
        if arr.size and not (np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float))):
            fail(name, f"array of dtype {arr.dtype}", "holds non-integer values (fractions, NaN or Inf)",
                 "whole numbers", exc=TypeError)
        if arr.size and np.max(np.abs(as_float)) >= 2.0**62:
            fail(name, f"array of dtype {arr.dtype}", "holds values beyond 2**62", "64-bit integers")
        arr = as_float.astype(np.int64)
    else:
        arr = arr.astype(np.int64)
    if bits is not None:
        lo, hi = int_range(bits, signed)
    if arr.size and ((lo is not None and arr.min() < lo) or (hi is not None and arr.max() > hi)):
        bad = arr[(arr < lo) if lo is not None and arr.min() < lo else (arr > hi)].flat[0]
        what = f"{bits}-bit {'signed' if signed else 'unsigned'} integers {lo} … {hi}" if bits is not None \
            else _range_text(lo, hi)
        fail(name, f"array with element {int(bad)}", "is out of range", what)
    return arr
