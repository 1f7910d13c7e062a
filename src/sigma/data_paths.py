"""Where Sigma finds the shared trace data (Alibaba cluster traces and friends).

The data lives beside the repository, not inside it: ``<repo>/../shared/data``. Set
``SIGMA_DATA_DIR`` to point somewhere else (a CI cache, another checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

import sigma

DATA_DIR_ENV = "SIGMA_DATA_DIR"


class DataDirNotFound(FileNotFoundError):
    """Neither SIGMA_DATA_DIR nor the default location holds the shared data."""


def shared_data_dir() -> Path:
    """The shared data directory: $SIGMA_DATA_DIR if set, else ../shared/data from the repo root."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise DataDirNotFound(f"{DATA_DIR_ENV}={override} is not a directory")
        return path
    # src/sigma/__init__.py -> parents[2] is the repository root.
    repo_root = Path(sigma.__file__).resolve().parents[2]
    path = (repo_root / ".." / "shared" / "data").resolve()
    if not path.is_dir():
        raise DataDirNotFound(f"no shared data at {path}; set {DATA_DIR_ENV} to its location")
    return path


def alibaba_dir() -> Path:
    """The Alibaba cluster-trace copies (see alibaba/SOURCES.md)."""
    return shared_data_dir() / "alibaba"
