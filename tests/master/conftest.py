"""The in-process API every controller test runs against (a registry over an in-memory
store, with admission and the built-in objects, reached through LocalClient), and a real
master process for the tests that drive it with kubectl."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.client.local import LocalClient
from tests.harness import MasterProcess
from tests.registry_client import admitted_client


@pytest.fixture
def client() -> Iterator[LocalClient]:
    with admitted_client() as local:
        yield local


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    proc = MasterProcess(tmp_path).start()
    try:
        yield proc
    finally:
        proc.stop()
