"""The in-process API every controller test runs against: a registry over an in-memory
store, with admission and the built-in objects, reached through LocalClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sigma.api import admission
from sigma.api.registry import Registry
from sigma.client.local import LocalClient
from sigma.store.sqlite import SqliteStore


@pytest.fixture
def client() -> Iterator[LocalClient]:
    store = SqliteStore(":memory:")
    registry = Registry(store)
    admission.install(registry)
    admission.bootstrap(registry)
    yield LocalClient(registry)
    store.close()
