"""Where Sigma finds the trace data (Alibaba cluster traces and friends).

``SIGMA_DATA_DIR`` first; then a fuller copy beside the repository (``<repo>/../shared/data``)
when there is one; else the slices the repository ships in ``<repo>/data`` (the files the tests
and benchmarks read: a fresh clone runs them with nothing beside it).
"""

from __future__ import annotations

import os
from pathlib import Path

import sigma
from sigma.data_manifest import fetch_name

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
            raise DataDirNotFound(f"{DATA_DIR_ENV}={override} is not a directory; create it and run "
                                  f"`sigma data fetch slices` (or unset {DATA_DIR_ENV})")
        return path
    # src/sigma/__init__.py -> parents[2] is the repository root.
    repo_root = Path(sigma.__file__).resolve().parents[2]
    for path in ((repo_root / ".." / "shared" / "data").resolve(), repo_root / "data"):
        if path.is_dir():
            return path
    raise DataDirNotFound(f"no trace data beside or inside {repo_root}; set {DATA_DIR_ENV} to its location, "
                          "or run `sigma data fetch slices`")


def alibaba_dir() -> Path:
    """The Alibaba cluster-trace copies (see alibaba/SOURCES.md)."""
    return shared_data_dir() / "alibaba"


def full_trace_dir(version: str) -> Path:
    """Where `sigma data fetch` puts an official trace version's archives (and, with
    --extract, their tables): <data dir>/alibaba/<version>/full, apart from the slices."""
    return alibaba_dir() / version / "full"


def fetch_hint(path: Path | str) -> str:
    """"; `sigma data fetch NAME` downloads it" for a trace file Sigma knows how to fetch."""
    name = fetch_name(str(path))
    return f"; `sigma data fetch {name}` downloads it" if name else ""
