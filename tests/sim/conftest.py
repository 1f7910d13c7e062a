"""The Alibaba trace slices the simulator's tests read: sigma.data_paths finds them
(SIGMA_DATA_DIR, a copy beside the repository, else the repository's own data/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigma.data_paths import alibaba_dir


@pytest.fixture(scope="session")
def alibaba() -> Path:
    return alibaba_dir()
