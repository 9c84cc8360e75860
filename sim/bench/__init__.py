"""`make bench`: every benchmark section, one run, ratios measured in that run (see ``python -m sim.bench -h``)."""
