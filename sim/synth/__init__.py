"""Co-simulation of synthesized netlists against their RTL (cell models in ``models/``)."""
