"""Suite-wide setup: the tools the project installs into its virtualenv (kubectl from the
`test` extra) come first on PATH, so that every test runs the same kubectl on every machine,
whatever the host has installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_VENV_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _VENV_BIN:
    os.environ["PATH"] = os.pathsep.join([_VENV_BIN, os.environ.get("PATH", "")])
