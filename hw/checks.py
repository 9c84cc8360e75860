"""Argument checks shared by component constructors: clear ``TypeError``/``ValueError`` messages."""

__all__ = ["check_int", "check_choice", "check_bool"]


def check_int(name, value, lo, hi):
    """``value`` must be an ``int`` (not ``bool``) in ``[lo, hi]``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} = {value} is out of range: allowed {lo} … {hi}")


def check_choice(name, value, choices):
    """``value`` must be one of ``choices``."""
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{name} = {value!r} is not allowed: choose one of {', '.join(map(repr, choices))}")


def check_bool(name, value):
    """``value`` must be a ``bool``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
