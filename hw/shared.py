"""Emit-once submodules: a repeated block becomes one Verilog module, instantiated once per copy.

Amaranth converts every submodule instance into a module of its own, and flattens a module's wiring bit by bit, so
an ``R × C`` array emits ``R·C`` copies of its PE and the time to build its top grows with the array's content.
Inside :func:`emit_once` (what the Verilog generator opens for large arrays):

- :func:`add_shared` adds an ``Instance`` of a module named ``<prefix>__shared<i>``, one per distinct
  ``(class, parameters)``, and records how to build it; :func:`shared_module` records one without an instance
  (for hand-written Verilog that instantiates it);
- :func:`add_verilog` adds an ``Instance`` of a hand-written module ``<prefix>__<module>`` (the array's grid of PE
  rows with its skew lines, :mod:`hw.systolic.grid`, as plain Verilog text, so that Amaranth never sees its bits).

The generator converts each recorded component once and appends it, and every hand-written text, to the same
``.v`` file (:func:`gen.verilog.convert`). Outside :func:`emit_once` (the Amaranth simulator, small designs)
:func:`add_shared` adds the component as an ordinary submodule; :func:`shared_module` and :func:`add_verilog` raise.
"""

import contextlib
import contextvars

from amaranth.hdl import ClockSignal, Instance, ResetSignal, Value
from amaranth.lib.wiring import In

__all__ = ["emit_once", "add_shared", "shared_module", "add_verilog", "emitting_once"]

_STATE = contextvars.ContextVar("sparsegen_emit_once", default=None)


@contextlib.contextmanager
def emit_once(prefix):
    """Within this context, :func:`add_shared` emits each distinct component once. Yields a dict
    ``{module name: zero-argument factory}`` of the modules to emit, in order of first use (deterministic); a
    factory returns a component to convert or the module's Verilog text (a ``str``)."""
    modules = {}
    token = _STATE.set((prefix, modules, {}))
    try:
        yield modules
    finally:
        _STATE.reset(token)


def emitting_once():
    """Whether an :func:`emit_once` context is open (components may then pick their emit-once structure)."""
    return _STATE.get() is not None


def _state(what):
    state = _STATE.get()
    if state is None:
        raise RuntimeError(f"{what} needs an open hw.shared.emit_once context (the Verilog generator's)")
    return state


def shared_module(cls, **params):
    """Name of the one module for ``cls(**params)`` inside :func:`emit_once`, recorded for conversion (ports as
    for :func:`add_shared`)."""
    prefix, modules, names = _state("shared_module")
    key = (cls.__module__, cls.__qualname__, tuple(sorted(params.items())))
    if key not in names:
        names[key] = f"{prefix}__shared{len(names)}"
        modules[names[key]] = lambda: cls(**params)
    return names[key]


def add_shared(m, name, cls, **params):
    """Add ``cls(**params)`` to module ``m`` as submodule ``name`` and return it (its ports are the signals to
    connect). Inside :func:`emit_once` the submodule is an ``Instance`` of the one module for ``(cls, params)``
    (clock ``clk``, reset ``rst``, ports named by their signature paths joined with ``__``)."""
    component = cls(**params)
    if _STATE.get() is None:
        m.submodules[name] = component
        return component
    component._MustUse__silence = True        # only its ports are used; the module is converted once elsewhere
    module = shared_module(cls, **params)
    ports = {}
    for path, member, value in component.signature.flatten(component):
        ports[("i_" if member.flow == In else "o_") + "__".join(map(str, path))] = Value.cast(value)
    m.submodules[name] = Instance(module, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
    return component


def add_verilog(m, name, module, text, **ports):
    """Add submodule ``name`` of ``m``: an ``Instance`` of the hand-written module ``<prefix>__<module>`` inside
    :func:`emit_once`. ``text(module_name)`` returns its Verilog (called once per module name; the same name must
    always give the same text), which may also define modules of its own named ``<module_name>_<suffix>``;
    ``ports`` as for ``Instance`` (``i_<port>=``, ``o_<port>=``); clock ``clk`` and reset ``rst`` are connected.
    Returns the module name."""
    prefix, modules, _ = _state("add_verilog")
    full = f"{prefix}__{module}"
    if full not in modules:
        verilog = text(full)
        modules[full] = lambda: verilog
    m.submodules[name] = Instance(full, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
    return full
