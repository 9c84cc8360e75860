"""Synthesis with pip-only Yosys and nextpnr (:mod:`.flow`) and ECP5 DSP register packing (:mod:`.ecp5_dsp`)."""
