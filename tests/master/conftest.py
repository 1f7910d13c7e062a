"""The in-process API every controller test runs against (a registry over an in-memory
store, with admission and the built-in objects, reached through LocalClient), and a real
master process for the tests that drive it with kubectl."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.api import admission
from sigma.api.registry import Registry
from sigma.client.local import LocalClient
from sigma.store.sqlite import SqliteStore
from tests.harness import MasterProcess


@pytest.fixture
def client() -> Iterator[LocalClient]:
    store = SqliteStore(":memory:")
    registry = Registry(store)
    admission.install(registry)
    admission.bootstrap(registry)
    yield LocalClient(registry)
    store.close()


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    proc = MasterProcess(tmp_path).start()
    try:
        yield proc
    finally:
        proc.stop()
