"""Generated Verilog for tests and benchmarks, cached per (config, generator source).

The cache key hashes the config and every source file the Verilog depends on (``hw/`` and ``gen/``), so an
edit to the RTL or generator can never be hidden by a stale file. Concurrent pytest-xdist workers asking
for the same design wait on a file lock instead of generating it twice.
"""

import hashlib
import json

from .runner import REPO_ROOT, locked

CACHE_DIR = REPO_ROOT / "build" / "tests" / "verilog"

__all__ = ["verilog_for", "verilog_for_component", "source_digest"]


def source_digest():
    """SHA-256 over the generator's sources (``hw/**/*.py``, ``gen/**/*.py``)."""
    h = hashlib.sha256()
    for path in sorted(p for d in ("hw", "gen") for p in (REPO_ROOT / d).rglob("*.py")):
        h.update(str(path.relative_to(REPO_ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def verilog_for(config):
    """Path of ``<top>.v`` for ``config`` (a validated ``SystolicConfig``), generating it if needed."""
    from gen.verilog import write_verilog

    key = hashlib.sha256((json.dumps(config.to_dict(), sort_keys=True) + source_digest()).encode()).hexdigest()
    out = CACHE_DIR / f"{config.top}-{key[:12]}"
    v_path = out / f"{config.top}.v"
    with locked(out.with_suffix(".lock")):
        if not v_path.exists():
            write_verilog(config, out)
    return v_path


def verilog_for_component(top, params, build):
    """Path of ``<top>.v`` for a leaf component built directly (no config kind), generating it if needed.

    ``params`` is a JSON-ready dict of the component's keyword arguments, ``build(**params)`` makes it; the cache
    key hashes ``top``, ``params`` and the generator sources, like :func:`verilog_for`.
    """
    from amaranth.back import verilog

    key = hashlib.sha256((json.dumps([top, params], sort_keys=True) + source_digest()).encode()).hexdigest()
    out = CACHE_DIR / f"{top}-{key[:12]}"
    v_path = out / f"{top}.v"
    with locked(out.with_suffix(".lock")):
        if not v_path.exists():
            out.mkdir(parents=True, exist_ok=True)
            tmp = v_path.with_suffix(".v.tmp")
            tmp.write_text(verilog.convert(build(**params), name=top, emit_src=False))
            tmp.replace(v_path)
    return v_path
