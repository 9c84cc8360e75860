"""Host drivers: numpy data → the beats a generated design consumes, and its output beats → numpy."""
