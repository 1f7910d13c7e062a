"""The `sigma` command: one sub-command per entry of COMMANDS.

Each module named there exposes ``add_parser(subparsers)``, which registers its
sub-command(s) and sets ``func(args) -> int`` as the parser default. Only the module of the
command being run is imported: the simulator's and benchmarks' modules pull in numpy, scipy
and pyarrow, which `sigma get pods` has no use for. The others appear in `sigma --help` by
the one-line help kept here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module that registers it, help line shown by `sigma --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("sigma.cli.master", "run the embedded cluster: master, a local agent and demo workloads"),
    "master": ("sigma.cli.master", "run the control plane (API server, schedulers, controllers)"),
    "agent": ("sigma.cli.agent", "run the node agent: register the node and run the pods bound to it"),
    "get": ("sigma.cli.resources", "list objects as tables, YAML or JSON"),
    "describe": ("sigma.cli.resources", "show an object and its events"),
    "apply": ("sigma.cli.resources", "create or update objects from manifests"),
    "create": ("sigma.cli.resources", "create objects from manifests"),
    "delete": ("sigma.cli.resources", "delete objects"),
    "logs": ("sigma.cli.resources", "print a container's log"),
    "scale": ("sigma.cli.resources", "set the replicas of a deployment"),
    "image": ("sigma.cli.image", "manage the node's image store"),
    "token": ("sigma.cli.token", "manage bootstrap tokens (sigma token create)"),
    "secrets": ("sigma.cli.secrets", "manage the encryption of Secrets at rest (sigma secrets rotate-key)"),
    "sim": ("sigma.cli.sim", "trace-driven simulation of co-location policies"),
    "data": ("sigma.cli.data", "download the Alibaba cluster traces (sigma data fetch)"),
    "bench": ("sigma.cli.bench", "run a benchmark (the result is printed last, as JSON with --json)"),
    "version": ("sigma.cli.version", "print the client and server versions"),
    "completion": ("sigma.cli.completion", "print a shell completion script (bash or zsh)"),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sigma")
    except PackageNotFoundError:
        return "unknown"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with ``command``'s module loaded (none for "", every module for None: for tools that
    want the whole tree, such as shell completion or tests of every command's help)."""
    parser = argparse.ArgumentParser(prog="sigma", description="Sigma co-location cluster manager")
    parser.add_argument("--version", action="version", version=f"sigma {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = {module for name, (module, _) in COMMANDS.items() if command is None or name == command}
    for module in dict.fromkeys(module for module, _ in COMMANDS.values()):
        if module in wanted:
            importlib.import_module(module).add_parser(sub)
    for name, (_, help_line) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_line, add_help=False)
    _show_defaults(parser)
    return parser


class _DefaultsFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help, unless the help already says its default
    or there is none worth saying (None, False, an empty string)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, False, "", argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def _show_defaults(parser: argparse.ArgumentParser) -> None:
    """Every sub-command's help shows its defaults (read when help is formatted, so setting
    it after the modules built their parsers is enough)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.formatter_class = _DefaultsFormatter
                _show_defaults(child)


def _command(argv: list[str]) -> str | None:
    """The sub-command named on the command line: the first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _command(argv)
    # No (known) command: `sigma --help` and the usage error need only the help lines above.
    parser = build_parser(command if command in COMMANDS else "")
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
