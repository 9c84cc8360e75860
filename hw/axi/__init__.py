"""AXI wrappers: AXI4-Stream ports and an AXI4-Lite register map around any design (docs/integration.md)."""
