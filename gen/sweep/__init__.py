"""Design-space sweeps: the spec, the points, the stages that need only ``gen``, the stage cache, the result
table, the Pareto front and the plots (docs/sweep.md).

The engine that runs the points on Dask, the ``rtl`` stage (cocotb) and the ``sweep`` command live in
:mod:`sim.sweep`, since they run simulations.
"""
