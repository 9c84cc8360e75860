"""The GEMM engines and the output-stationary core: golden models, host driver, testbenches, cocotb tests."""
