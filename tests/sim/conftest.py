"""Where the shared Alibaba data lives: SIGMA_DATA_DIR, else the checkout's sibling shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _data_dir() -> Path:
    try:  # the project's helper, when it exists
        from sigma.data_paths import shared_data_dir  # type: ignore[import-not-found]

        return Path(shared_data_dir())
    except ImportError:
        pass
    if env := os.environ.get("SIGMA_DATA_DIR"):
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def alibaba() -> Path:
    root = _data_dir() / "alibaba"
    if not root.is_dir():
        pytest.skip(f"shared Alibaba data not found at {root}")
    return root

