"""Where Sigma finds the trace data (Alibaba cluster traces and friends).

``SIGMA_DATA_DIR`` first; then a fuller copy beside the repository (``<repo>/../shared/data``)
when there is one; else the slices the repository ships in ``<repo>/data`` (the files the tests
and benchmarks read: a fresh clone runs them with nothing beside it).
"""

from __future__ import annotations

import os
from pathlib import Path

import sigma

DATA_DIR_ENV = "SIGMA_DATA_DIR"


class DataDirNotFound(FileNotFoundError):
    """Neither SIGMA_DATA_DIR nor the default location holds the shared data."""


def shared_data_dir() -> Path:
    """The data directory: $SIGMA_DATA_DIR if set, else ../shared/data beside the repository,
    else the repository's own data/."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise DataDirNotFound(f"{DATA_DIR_ENV}={override} is not a directory")
        return path
    # src/sigma/__init__.py -> parents[2] is the repository root.
    repo_root = Path(sigma.__file__).resolve().parents[2]
    for path in ((repo_root / ".." / "shared" / "data").resolve(), repo_root / "data"):
        if path.is_dir():
            return path
    raise DataDirNotFound(f"no trace data beside or inside {repo_root}; set {DATA_DIR_ENV} to its location")


def alibaba_dir() -> Path:
    """The Alibaba cluster-trace copies (see alibaba/SOURCES.md)."""
    return shared_data_dir() / "alibaba"
