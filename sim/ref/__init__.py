"""Reference models from outside the project (SCALE-Sim v3), run in their own environments."""
