"""The RRAM tile: golden models (tile, crossbar, LFSR), host driver, testbenches, cocotb tests."""
