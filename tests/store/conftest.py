"""Store backends for the contract tests.

Each backend opens a store on a state directory; opening it again on the same directory
reaches the same data when the backend is persistent. To run the contract tests against
another implementation, add one line to BACKENDS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sigma.store.contract import Store
from sigma.store.sqlite import SqliteStore


@dataclass(frozen=True)
class Backend:
    name: str
    open: Callable[[Path], Store]
    persistent: bool  # a second open() on the same directory sees the same data


BACKENDS = [
    Backend("sqlite-memory", lambda _state: SqliteStore(":memory:"), persistent=False),
    Backend("sqlite-file", lambda state: SqliteStore(str(state / "state.db")), persistent=True),
]


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def store_opener(backend: Backend, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens stores on the test's state; every store opened is closed at teardown."""
    opened: list[Store] = []

    def open_store() -> Store:
        store = backend.open(tmp_path)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(store_opener: Callable[[], Store]) -> Store:
    return store_opener()
