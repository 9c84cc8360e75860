"""Bench section ``seeds``: every seed paper's claim beside our figure, on synthetic weights of the big networks
and on the trained digits CNN with its accuracy drop (``python -m sim.bench --only seeds``;
the same rows as ``python -m gen seeds --json``). Fails only if a row is malformed; missed targets are
printed with their reason (docs/seeds.md)."""

from sim.seeds import met, seed_rows, table

__all__ = ["main"]


def main(argv=None) -> int:
    rows = seed_rows(progress=lambda text: print(f"  {text}", flush=True))
    print(table(rows))
    missed = [r for r in rows if met(r) is False]
    print(f"\n{len(rows)} rows, {len(rows) - len(missed)} meet their claim and accuracy target, {len(missed)} miss")
    return 0
