"""The compiler: prune, quantize and map weights into the formats the GEMM engine and the RRAM tile consume."""
