"""Float (analog) models of the RRAM tile for accuracy studies: conductances in µS, Gaussian device noise.

:mod:`sim.analog.physics` evaluates a :class:`hw.rram.schedule.TileMapping` with device physics;
:mod:`sim.analog.sweep` measures its error against the exact integer product over parameter sweeps.
"""
