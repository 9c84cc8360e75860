"""The one argument validator of sparsegen: configs, component constructors, public functions and CLI.

Every check raises with one message format, naming the argument, the value and what is allowed::

    <name> = <value> <problem>: allowed <what>

``TypeError`` for a value of the wrong type, ``ValueError`` for a value of the right type that is out of range
or not one of the choices, as amaranth does. numpy scalars are accepted where their Python counterparts are
(``np.int64(4)`` is an integer, ``np.float32(0.5)`` a number), and the checks return the plain Python value so
that callers store ``int``/``float``, never numpy scalars. Arrays are named by the position of their first bad
element (``A[0, 1] = 1000 is out of range: …``); command-line paths are checked before any work is done, so a
command fails before it computes or writes anything. Pure Python and numpy: importing this module does not import
Amaranth.
"""

import math
import numbers
import os
from pathlib import Path

import numpy as np

from hw.formats.ints import int_range

__all__ = ["fail", "check_int", "check_float", "check_bool", "check_choice", "check_str", "check_int_array",
           "check_float_array", "check_instance", "check_attrs", "check_readable_file", "check_writable_file",
           "check_writable_dir", "Text"]


class Text(str):
    """Shown as written and in full in a message (``A = array of shape (3,)``, a path), not quoted or shortened
    like a str value."""

    def __repr__(self):
        return str(self)


def _show(value):
    if isinstance(value, Text):
        return str(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(position):
    """``[i, j]`` of an element (nothing for the element of a 0-d array)."""
    return "[" + ", ".join(str(int(i)) for i in position) + "]" if len(position) else ""


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
    given, value = value, float(value)     # messages show the value as given (-1, not -1.0)
    if not math.isfinite(value):
        fail(name, given, "is not finite", allowed)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        fail(name, given, "is out of range", allowed)
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


def check_int_array(name, value, *, ndim=None, bits=None, signed=True, lo=None, hi=None, whole_floats=True):
    """``value`` must be an array-like of integers (integer dtype, or floats/objects that are whole numbers).

    Returns an ``int64`` array. ``ndim`` fixes the number of dimensions (an int, or a tuple of the allowed ones);
    ``bits``/``signed`` (or ``lo``/``hi``) bound the elements, and the first element out of range is named by its
    position (``A[0, 1] = 1000 is out of range``). A float array with a fractional, NaN or infinite element is a
    ``TypeError``: integer hardware never rounds silently. ``whole_floats=False`` rejects every array whose dtype
    is not an integer one (the golden models and drivers of integer hardware take integer arrays only).
    """
    arr = _as_array(name, value, "an integer array")
    _check_ndim(name, arr, ndim)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
                                     or arr.dtype == object) or (not whole_floats and
                                                                 not np.issubdtype(arr.dtype, np.integer)):
        fail(name, Text(f"array of dtype {arr.dtype}"), "is not integer", "an integer array", exc=TypeError)
    if not np.issubdtype(arr.dtype, np.integer):
        try:
            as_float = arr.astype(np.float64)
        except (TypeError, ValueError):
            fail(name, Text(f"array of dtype {arr.dtype}"), "is not numeric", "an integer array", exc=TypeError)
        if arr.size and not (np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float))):
            position = np.argwhere(~np.isfinite(as_float) | (as_float != np.round(as_float)))[0]
            fail(name + _where(position), as_float[tuple(position)].item(), "is not a whole number",
                 "integers (no fractions, NaN or Inf)", exc=TypeError)
        if arr.size and np.max(np.abs(as_float)) >= 2.0**62:
            fail(name, Text(f"array of dtype {arr.dtype}"), "holds values beyond 2**62", "64-bit integers")
        arr = as_float.astype(np.int64)
    else:
        if arr.dtype == np.uint64 and arr.size and arr.max() >= 2**63:
            fail(name, Text(f"array of dtype {arr.dtype}"), "holds values beyond 2**63 - 1", "64-bit integers")
        arr = arr.astype(np.int64)
    if bits is not None:
        lo, hi = int_range(bits, signed)
    if arr.size and ((lo is not None and arr.min() < lo) or (hi is not None and arr.max() > hi)):
        position = np.argwhere(((arr < lo) if lo is not None else False) | ((arr > hi) if hi is not None else False))[0]
        what = f"{bits}-bit {'signed' if signed else 'unsigned'} integers {lo} … {hi}" if bits is not None \
            else _range_text(lo, hi)
        fail(name + _where(position), int(arr[tuple(position)]), "is out of range", what)
    return arr


def check_float_array(name, value, *, ndim=None):
    """``value`` must be an array-like of real numbers (int or float dtype, not bool), all finite; returns float64.

    The first NaN or infinite element is named by its position (``fc[0, 1] = nan is not finite``).
    """
    arr = _as_array(name, value, "a float array")
    _check_ndim(name, arr, ndim)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        fail(name, Text(f"array of dtype {arr.dtype}"), "is not real numbers", "a float or integer array",
             exc=TypeError)
    arr = arr.astype(np.float64)
    if arr.size and not np.all(np.isfinite(arr)):
        position = np.argwhere(~np.isfinite(arr))[0]
        fail(name + _where(position), arr[tuple(position)].item(), "is not finite", "finite numbers")
    return arr


def _as_array(name, value, allowed):
    try:
        return np.asarray(value)
    except Exception as exc:   # ragged nested lists and the like
        fail(name, Text(type(value).__name__), f"is not an array ({exc})", allowed, exc=TypeError)


def _check_ndim(name, arr, ndim):
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in allowed:
        fail(name, Text(f"array of shape {arr.shape}"), f"has {arr.ndim} dimension(s)",
             f"{' or '.join(map(str, allowed))} dimension(s)")


def check_instance(name, value, types, allowed=None):
    """``value`` must be an instance of ``types`` (a class or a tuple of classes); returns it."""
    types = types if isinstance(types, tuple) else (types,)
    kinds = " or ".join(t.__name__ for t in types)
    if not isinstance(value, types):
        fail(name, value, f"is a {type(value).__name__}, not a {kinds}", allowed or f"a {kinds}", exc=TypeError)
    return value


def check_attrs(name, value, attrs, allowed):
    """``value`` must have every attribute of ``attrs`` (a duck-typed config); returns it.

    ``allowed`` names what fits, e.g. ``"a GemmConfig (or an object with its fields)"``.
    """
    missing = [attr for attr in attrs if not hasattr(value, attr)]
    if missing:
        listed = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
        fail(name, value, f"is a {type(value).__name__} (no {listed})", allowed, exc=TypeError)
    return value


# ---- paths (command-line options): checked before any work is done or anything is written ----------------------

def _path(name, value):
    if isinstance(value, (bytes, bool)) or not isinstance(value, (str, os.PathLike)):
        fail(name, value, f"is a {type(value).__name__}, not a path", "a str or path-like", exc=TypeError)
    return Path(value)


def check_readable_file(name, value):
    """``value`` must name an existing, readable regular file; returns it as a :class:`~pathlib.Path`."""
    path = _path(name, value)
    if not path.exists():
        fail(name, Text(repr(str(path))), "does not exist", "an existing file")
    if not path.is_file():
        fail(name, Text(repr(str(path))), "is not a regular file", "an existing file")
    if not os.access(path, os.R_OK):
        fail(name, Text(repr(str(path))), "cannot be read", "a readable file")
    return path


def _creatable(name, path, allowed):
    """The nearest existing ancestor of ``path`` must be a writable directory (so ``mkdir -p`` would work)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        fail(name, Text(repr(str(path))), f"cannot be created ({parent} is not a directory)", allowed)
    if not os.access(parent, os.W_OK | os.X_OK):
        fail(name, Text(repr(str(path))), f"cannot be created ({parent} is not writable)", allowed)


def check_writable_dir(name, value, *, create=False):
    """``value`` must be a writable directory, or a path whose missing directories can be created; returns it as a
    :class:`~pathlib.Path`. ``create=True`` also creates it (``mkdir -p``), which catches what permission bits
    cannot tell (a read-only mount, ``/proc``, a superuser); otherwise nothing is created."""
    path = _path(name, value)
    allowed = "a writable directory (created if missing)"
    if path.exists():
        if not path.is_dir():
            fail(name, Text(repr(str(path))), "is an existing file, not a directory", allowed)
        if not os.access(path, os.W_OK | os.X_OK):
            fail(name, Text(repr(str(path))), "is not writable", allowed)
    else:
        _creatable(name, path, allowed)
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            fail(name, Text(repr(str(path))), f"cannot be created ({error.strerror or error})", allowed)
    return path


def check_writable_file(name, value):
    """``value`` must be a file path that can be written (an existing writable file, or a new file in a directory
    that exists or can be created); returns it as a :class:`~pathlib.Path`. Nothing is created here."""
    path = _path(name, value)
    allowed = "a writable file path"
    if path.exists():
        if path.is_dir():
            fail(name, Text(repr(str(path))), "is a directory", allowed)
        if not os.access(path, os.W_OK):
            fail(name, Text(repr(str(path))), "is not writable", allowed)
    else:
        _creatable(name, path, allowed)
    return path
