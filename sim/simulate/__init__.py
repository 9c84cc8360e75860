"""``sparsegen simulate``: the user's GEMM, RRAM layer or ONNX network on the emitted RTL (host side, cocotb side, CLI)."""
