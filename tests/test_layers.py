"""The architecture as contracts: layers only point down and the pure core does no I/O
(import-linter, contracts in pyproject.toml), and no two packages import each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold() -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_no_package_cycles() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert "cycles between packages: 0" in out.stdout
