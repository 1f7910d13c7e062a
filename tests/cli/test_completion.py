"""`sigma completion`: the bash script parses, and bash completes sub-commands, options and choices with it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sigma.cli.main import COMMANDS, main


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sigma.cli.completion import completion_script

    path = tmp_path_factory.mktemp("completion") / "sigma.bash"
    path.write_text(completion_script("bash"))
    return path


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (sigma's words, "" for a fresh one)."""
    bash = shutil.which("bash")
    assert bash is not None
    line = " ".join(f"'{w}'" for w in ["sigma", *words])
    program = (f"source {script}\nCOMP_WORDS=({line})\nCOMP_CWORD={len(words)}\n"
               'COMP_LINE="${COMP_WORDS[*]}"\nCOMP_POINT=${#COMP_LINE}\n'
               '_shtab_sigma\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run([bash, "--norc", "-c", program], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [w.strip() for w in out.stdout.splitlines() if w.strip()]


def test_the_bash_script_is_valid_bash(bash_script: Path) -> None:
    out = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr


def test_bash_completes_every_sub_command(bash_script: Path) -> None:
    assert set(complete(bash_script, "")) == set(COMMANDS)
    assert set(complete(bash_script, "de")) == {"describe", "delete"}


def test_bash_completes_a_sub_commands_options_and_choices(bash_script: Path) -> None:
    assert {"--namespace", "--output", "--selector"} <= set(complete(bash_script, "get", "--"))
    assert complete(bash_script, "completion", "") == ["bash", "zsh"]


def test_the_command_prints_the_script_for_each_shell(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef sigma")
    assert main(["completion", "bash"]) == 0
    assert "complete -o bashdefault -F _shtab_sigma sigma" in capsys.readouterr().out
