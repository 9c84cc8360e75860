"""The N:M sparse systolic array: golden model, testbench and its cocotb tests."""
