"""Sweeps on Dask distributed: the engine (:mod:`sim.sweep.run`), the ``rtl`` stage (:mod:`sim.sweep.rtl`) and the
``sweep`` command (:mod:`sim.sweep.cli`); the spec, the stages of ``gen``, the cache and the results live in
:mod:`gen.sweep` (docs/sweep.md)."""
