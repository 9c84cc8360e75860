"""The GEMM engines (weight- and output-stationary): config, Verilog generator, ``perf`` CLI and cycle models."""
