"""Emit-once submodules: a repeated block (a PE) becomes one Verilog module, instantiated once per copy.

Amaranth converts every submodule instance into a module of its own, so an ``R × C`` array emits ``R·C`` copies of
its PE and the Verilog grows with the array's content. Inside :func:`emit_once` (what the Verilog generator opens
for large arrays), :func:`add_shared` instead adds an ``Instance`` of a module named ``<prefix>__shared<i>``, one per
distinct ``(class, parameters)``, and records how to build it; the generator converts each recorded component once
and appends it to the same ``.v`` file (:func:`gen.verilog.generate_verilog`). Outside :func:`emit_once` (the
Amaranth simulator, small designs) :func:`add_shared` adds the component as an ordinary submodule.
"""

import contextlib
import contextvars

from amaranth.hdl import ClockSignal, Instance, ResetSignal, Value
from amaranth.lib.wiring import In

__all__ = ["emit_once", "add_shared", "emitting_once"]

_STATE = contextvars.ContextVar("sparsegen_emit_once", default=None)


@contextlib.contextmanager
def emit_once(prefix):
    """Within this context, :func:`add_shared` emits each distinct component once. Yields a dict
    ``{module name: zero-argument factory}`` of the modules to convert, in order of first use (deterministic)."""
    modules = {}
    token = _STATE.set((prefix, modules, {}))
    try:
        yield modules
    finally:
        _STATE.reset(token)


def emitting_once():
    """Whether an :func:`emit_once` context is open (components may then pick their emit-once structure)."""
    return _STATE.get() is not None


def add_shared(m, name, cls, **params):
    """Add ``cls(**params)`` to module ``m`` as submodule ``name`` and return it (its ports are the signals to
    connect). Inside :func:`emit_once` the submodule is an ``Instance`` of the one module for ``(cls, params)``
    (clock ``clk``, reset ``rst``, ports named by their signature paths joined with ``__``)."""
    component = cls(**params)
    state = _STATE.get()
    if state is None:
        m.submodules[name] = component
        return component
    component._MustUse__silence = True        # only its ports are used; the module is converted once elsewhere
    prefix, modules, names = state
    key = (cls.__module__, cls.__qualname__, tuple(sorted(params.items())))
    if key not in names:
        names[key] = f"{prefix}__shared{len(names)}"
        modules[names[key]] = lambda: cls(**params)
    ports = {}
    for path, member, value in component.signature.flatten(component):
        ports[("i_" if member.flow == In else "o_") + "__".join(map(str, path))] = Value.cast(value)
    m.submodules[name] = Instance(names[key], i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
    return component
