"""`sigma completion bash|zsh`: a shell completion script, generated from the parser itself.

The script is written by shtab from the whole argparse tree, so it knows every sub-command,
option and choice the parsers declare and cannot drift from them. Building the whole tree
loads every command's module (the simulator's too), which is why this runs once, when the
shell is set up (``source <(sigma completion bash)``), and never on a completion key press.
"""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh")


def completion_script(shell: str) -> str:
    import shtab

    from sigma.cli.main import build_parser  # the whole tree, every command's module loaded

    script: str = shtab.complete(build_parser(None), shell=shell)
    return script


def cmd_completion(args: argparse.Namespace) -> int:
    print(completion_script(args.shell))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "completion", help="print a shell completion script (bash or zsh)",
        description="Print a completion script for the shell. bash: source <(sigma completion bash) "
                    "(or save it in /etc/bash_completion.d/sigma); zsh: sigma completion zsh > \"${fpath[1]}/_sigma\".")
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(func=cmd_completion)
