"""``python -m sparsegen`` and the ``sparsegen`` command: the command line of :mod:`gen.cli`."""

from gen.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
