"""Generated Verilog for tests and benchmarks, cached per (config, generator source).

The cache key hashes the config and every source file the Verilog depends on (``hw/`` and ``gen/``), so an
edit to the RTL or generator can never be hidden by a stale file. Concurrent pytest-xdist workers asking
for the same design wait on a file lock instead of generating it twice.
"""

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gen
import hw
from gen.paths import build_dir
from sim.common.runner import locked

__all__ = ["cache_dir", "verilog_for", "verilog_for_component", "source_digest"]

__all__ = ["verilog_for", "verilog_for_component", "source_digest", "Component", "design_verilog", "cache_dir"]


def cache_dir():
    """``<build>/tests/verilog`` (:func:`gen.paths.build_dir`): where the generated Verilog is cached."""
    return build_dir() / "tests" / "verilog"


def source_digest():
    """SHA-256 over the generator's sources (``hw/**/*.py``, ``gen/**/*.py``, wherever they are installed)."""
    h = hashlib.sha256()
    for package in (hw, gen):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(f"{package.__name__}/{path.relative_to(root)}".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def verilog_for(config):
    """Path of ``<top>.v`` for ``config`` (a validated ``SystolicConfig``), generating it if needed."""
    from gen.verilog import write_verilog

    key = hashlib.sha256((json.dumps(config.to_dict(), sort_keys=True) + source_digest()).encode()).hexdigest()
    out = cache_dir() / f"{config.top}-{key[:12]}"
    v_path = out / f"{config.top}.v"
    with locked(out.with_suffix(".lock")):
        if not v_path.exists():
            write_verilog(config, out)
    return v_path


def verilog_for_component(top, build, params):
    """Path of ``<top>.v`` for the component ``build(**params)`` (a leaf component, no config), generating it if
    needed. The cache key hashes ``top``, ``build``'s qualified name and source (it may live outside ``hw/``, e.g.
    a test's own component), ``params`` (JSON; tuples become lists) and the sources, like :func:`verilog_for`."""
    from amaranth.back import verilog

    what = json.dumps([top, f"{build.__module__}.{build.__qualname__}", inspect.getsource(build), params],
                      sort_keys=True)
    key = hashlib.sha256((what + source_digest()).encode()).hexdigest()
    out = cache_dir() / f"{top}-{key[:12]}"
    v_path = out / f"{top}.v"
    with locked(out.with_suffix(".lock")):
        if not v_path.exists():
            out.mkdir(parents=True, exist_ok=True)
            text = verilog.convert(build(**params), name=top, emit_src=False)
            tmp = v_path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(v_path)
    return v_path


@dataclass(frozen=True)
class Component:
    """A bare component as a design for :func:`sim.common.runner.run_design`: ``build(**params)`` named ``top``.

    ``to_dict()`` (the cocotb side's config) is ``params``.
    """
    top: str
    build: Callable
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.params)

    def verilog(self):
        """Path of its Verilog (:func:`verilog_for_component`)."""
        return verilog_for_component(self.top, self.build, self.params)


def design_verilog(design):
    """Path of ``design``'s Verilog: its ``verilog()`` when it has one, else :func:`verilog_for` (a config)."""
    make = getattr(design, "verilog", None)
    return make() if callable(make) else verilog_for(design)
