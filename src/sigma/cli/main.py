"""The `sigma` command: one sub-command per module in sigma.cli.

Each module listed in COMMANDS exposes ``add_parser(subparsers)``, which registers its
sub-command(s) and sets ``func(args) -> int`` as the parser default.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = (
    "sigma.cli.master",  # master, up
    "sigma.cli.agent",  # agent
    "sigma.cli.resources",  # get, describe, apply, delete, logs, create, scale
    "sigma.cli.image",  # image import/ls/rm
    "sigma.cli.bench",  # bench NAME
    "sigma.cli.sim",  # sim
    "sigma.cli.token",  # token create
    "sigma.cli.version",  # version
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigma", description="Sigma co-location cluster manager")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
