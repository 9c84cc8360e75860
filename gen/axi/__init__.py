"""AXI wrappers: generation (``--wrap axi``), SystemRDL and C header, FuseSoC core files."""
