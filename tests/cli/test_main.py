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
