"""The RRAM tile: config, Verilog generator, cycle model, float analog physics model and the ``rram-sweep`` study."""
