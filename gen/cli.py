"""Command line (``sparsegen``, or ``python -m gen``): a thin layer over :mod:`gen.config` and :mod:`gen.verilog`."""

import argparse
import json
import sys
from pathlib import Path

from .config import PRESETS_DIR, list_presets, load_config

__all__ = ["main"]

_DERIVED = ("top", "k", "max_reduction", "sparse", "index_bits", "multipliers", "weight_entry_bits")


def _load(args):
    """``(preset, config)`` pairs a command works on; ``preset`` is None for ``--config``."""
    if args.all:
        if args.set:
            raise ValueError("--set applies to --config, not to --all")
        return [(preset, load_config(preset)) for preset in list_presets()]
    return [(None, load_config(args.config, args.set))]


def _verilog(args, configs):
    from .verilog import write_verilog  # imports Amaranth: only when generating

    for preset, config in configs:
        if preset is None:
            print(*write_verilog(config, args.out), sep="\n")
        else:
            print(f"{preset}:", *write_verilog(config, args.out / preset))


def _presets(args, configs):
    width = max(len(preset) for preset, _ in configs)
    for preset, config in configs:
        lines = (PRESETS_DIR / f"{preset}.toml").read_text().splitlines()
        purpose = next((line.lstrip("# ") for line in lines if line.startswith("#")), "")
        print(f"{preset:<{width}}  {config.rows:>2}x{config.cols:<2}  {config.keep}:{config.block}  "
              f"{'signed' if config.act_signed else 'unsigned':<8}  {purpose}")


def _show(args, configs):
    [(_, config)] = configs
    derived = {name: getattr(config, name) for name in _DERIVED}
    print(json.dumps({"config": config.to_dict(), "derived": derived}, indent=2))


def _parser():
    parser = argparse.ArgumentParser(prog="sparsegen",
                                     description="Generator of N:M structured-sparse systolic arrays.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    config = dict(metavar="PRESET_OR_PATH", help="preset name or path of a .toml file")
    overrides = dict(action="append", default=[], metavar="FIELD=VALUE", help="override one field (repeatable)")

    verilog = commands.add_parser("verilog", help="emit <top>.v and <top>.json")
    source = verilog.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", **config)
    source.add_argument("--all", action="store_true", help="every preset, each into DIR/<preset>/")
    verilog.add_argument("--set", **overrides)
    verilog.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    verilog.set_defaults(run=_verilog)

    commands.add_parser("presets", help="list the presets").set_defaults(run=_presets, all=True, set=[])

    show = commands.add_parser("show", help="print the validated config and derived values as JSON")
    show.add_argument("--config", required=True, **config)
    show.add_argument("--set", **overrides)
    show.set_defaults(run=_show, all=False)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status.

    An invalid config prints ``sparsegen: error: <message>`` and returns 2 before anything is written;
    usage errors exit through argparse (``SystemExit(2)``).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        configs = _load(args)  # everything is validated before anything is written
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    args.run(args, configs)
    return 0
