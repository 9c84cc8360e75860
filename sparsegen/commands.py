"""Commands of the ``sim`` layer on the command line of :mod:`gen.cli`.

``gen`` must not import ``sim`` (imports go hw ← gen ← sim), yet some commands run the RTL or the golden
models (``simulate``, ``accuracy``, ``sweep``). They reach the command line as plugins: ``pyproject.toml`` names
this module in the entry-point group ``sparsegen.commands``, :func:`gen.cli.main` calls ``register(commands)`` of
every module of that group, and this one, at the top of the stack, registers each module of :data:`EXTENSIONS`
the same way :data:`gen.cli.EXTENSIONS` does (``register(commands)`` adds a subparser and sets ``run``). The
modules import their heavy dependencies only when their command runs.
"""

import importlib

__all__ = ["EXTENSIONS", "register"]

# sim modules with ``register(commands)``, in the order their commands appear in ``--help``
EXTENSIONS = (
    "sim.simulate.cli",
    "sim.sweep.cli",
    "sim.network.cli",
    "sim.seeds.cli",
)


def register(commands):
    """Add the subcommands of every module in :data:`EXTENSIONS` to the argparse subparsers ``commands``."""
    for module in EXTENSIONS:
        importlib.import_module(module).register(commands)
