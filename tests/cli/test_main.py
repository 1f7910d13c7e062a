"""The `sigma` command's entry point: what it imports and what its help lists."""

from __future__ import annotations

import subprocess
import sys


def test_a_client_command_imports_neither_the_simulator_nor_numpy() -> None:
    # `sigma get` must start fast on any machine: the simulator's and benchmarks' packages
    # (numpy, scipy, pyarrow) are imported only by the commands that use them.
    code = ("import sys; from sigma.cli.main import build_parser; build_parser('get');"
            "print(','.join(m for m in ('numpy', 'scipy', 'pyarrow', 'sigma.sim', 'sigma.bench') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_help_lists_every_command_without_loading_them() -> None:
    from sigma.cli.main import COMMANDS, build_parser

    text = build_parser("version").format_help()
    assert all(name in text for name in COMMANDS)


def test_every_argument_of_every_command_says_what_it_is_for() -> None:
    import argparse

    from sigma.cli.main import build_parser

    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction | argparse._VersionAction) and not action.help:
                missing.append(f"{path} {(action.option_strings or [action.dest])[0]}")

    walk(build_parser(None), "sigma")
    assert missing == []


def test_help_and_version_without_a_command_load_no_command_module() -> None:
    # `sigma --help` and `sigma --version` need only COMMANDS' help lines.
    code = ("import sys; from sigma.cli.main import main\n"
            "for argv in (['--help'], ['--version']):\n"
            "    try: main(argv)\n"
            "    except SystemExit: pass\n"
            "print('loaded:', ','.join(m for m in sys.modules"
            "                           if m.startswith('sigma.cli.') and m != 'sigma.cli.main'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1].strip() == "loaded:"
