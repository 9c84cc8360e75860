"""AXI wrappers: cocotbext-axi testbenches of the wrapped designs."""
