"""Compiled layers on the RTL: the compiler's mappings run on the RRAM tile and the GEMM engine."""
