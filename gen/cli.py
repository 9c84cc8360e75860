"""Command line (``sparsegen``, or ``python -m gen``): a thin layer over the generators.

``verilog``, ``presets`` and ``show`` live here. Further commands live beside the generator they drive: each
module named in :data:`EXTENSIONS` has ``register(commands)``, which adds its subparser (``commands`` is the
argparse subparsers object) and sets ``run=function(args) -> int``. Commands of the ``sim`` layer (which ``gen``
must not import) come as plugins: every module of the entry-point group ``sparsegen.commands`` (``pyproject.toml``;
ours is :mod:`sparsegen.commands`) has the same ``register(commands)``. A ``ValueError`` or ``TypeError`` (a bad
argument, :mod:`hw.checks`) or an ``OSError`` escaping ``run`` is printed as one line ``sparsegen: error: <message>``
with exit status 2; commands validate everything, paths included, before computing or writing anything.
"""

import argparse
import importlib
import importlib.metadata
import json
import sys
from pathlib import Path

from hw import checks

from gen import __version__
from gen.config import PRESETS_DIR, list_presets, load_config

__all__ = ["main", "EXTENSIONS", "PLUGIN_GROUP"]

# modules that add subcommands (see the module docstring)
EXTENSIONS = (
    "gen.rram.cli",
    "gen.compiler.cli",
    "gen.gemm.cli",
    "gen.synth.flow",
)

# entry-point group of the plugin modules that add commands from above gen (see the module docstring)
PLUGIN_GROUP = "sparsegen.commands"


def _load(args):
    """``(preset, config)`` pairs a command works on; ``preset`` is None for ``--config``."""
    if args.all:
        if args.set:
            raise ValueError("--set applies to --config, not to --all")
        return [(preset, load_config(preset)) for preset in list_presets()]
    return [(None, load_config(args.config, args.set))]


def _verilog(args):
    from gen.verilog import write_verilog  # imports Amaranth: only when generating

    configs = _load(args)  # everything is validated before anything is written
    if args.html and not args.wrap:
        raise ValueError("--html applies to --wrap axi (the register docs of the wrapped design)")
    if args.wrap:
        from gen.axi.verilog import write_wrapped

        def write(config, out):
            return write_wrapped(config, out, args.wrap, html=args.html)
    else:
        write = write_verilog
    checks.check_writable_dir("--out", args.out, create=True)
    for preset, config in configs:
        if preset is None:
            print(*write(config, args.out), sep="\n")
        else:
            print(f"{preset}:", *write(config, args.out / preset))


def _presets(args):
    configs = _load(args)
    width = max(len(preset) for preset, _ in configs)
    for preset, config in configs:
        lines = (PRESETS_DIR / f"{preset}.toml").read_text().splitlines()
        purpose = next((line.lstrip("# ") for line in lines if line.startswith("#")), "")
        print(f"{preset:<{width}}  {config.kind:<8}  {config.summary()}  {purpose}")


def _show(args):
    [(_, config)] = _load(args)
    print(json.dumps({"kind": config.kind, "config": config.to_dict(), "derived": config.derived()}, indent=2))


def _parser():
    parser = argparse.ArgumentParser(prog="sparsegen",
                                     description="Generator of N:M structured-sparse systolic arrays and RRAM tiles.")
    parser.add_argument("--version", action="version", version=f"sparsegen {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = dict(metavar="PRESET_OR_PATH", help="preset name or path of a .toml file")
    overrides = dict(action="append", default=[], metavar="FIELD=VALUE", help="override one field (repeatable)")

    verilog = commands.add_parser("verilog", help="emit <top>.v, <top>.json, the FuseSoC <top>.core and <top>.f")
    source = verilog.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", **config)
    source.add_argument("--all", action="store_true", help="every preset, each into DIR/<preset>/")
    verilog.add_argument("--set", **overrides)
    verilog.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    verilog.add_argument("--wrap", choices=("axi",), help="wrap the design: AXI4-Stream ports and an AXI4-Lite "
                         "register map, with its SystemRDL, C header and register docs (docs/integration.md)")
    verilog.add_argument("--html", action="store_true", help="with --wrap: also the PeakRDL HTML register docs")
    verilog.set_defaults(run=_verilog)

    commands.add_parser("presets", help="list the presets").set_defaults(run=_presets, all=True, set=[])

    show = commands.add_parser("show", help="print the validated config and derived values as JSON")
    show.add_argument("--config", required=True, **config)
    show.add_argument("--set", **overrides)
    show.set_defaults(run=_show, all=False)

    for module in EXTENSIONS:
        importlib.import_module(module).register(commands)
    for plugin in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        plugin.load().register(commands)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status.

    An invalid config or argument prints one line ``sparsegen: error: <message>`` and returns 2 before anything is
    written; usage errors exit through argparse (``SystemExit(2)``).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (TypeError, ValueError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
    except OSError as error:    # what the path checks cannot foresee (a full disk, a root-only mount, …)
        where = f" {error.filename!r}" if error.filename else ""
        message = f"cannot access{where}: {error.strerror or error}"
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2
