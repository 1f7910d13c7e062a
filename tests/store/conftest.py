"""Store backends for the contract tests.

Each backend opens a store on a state directory; opening it again on the same directory
reaches the same data when the backend is persistent. To run the contract tests against
another implementation, add one line to BACKENDS.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sigma.store.contract import Store
from sigma.store.etcd import EtcdStore
from sigma.store.etcd_server import EtcdServer, etcd_binary
from sigma.store.sqlite import SqliteStore


@dataclass(frozen=True)
class Backend:
    name: str
    open: Callable[[Path], Store]
    persistent: bool  # a second open() on the same directory sees the same data


# etcd: a fresh single-member etcd per test state directory, because several contract tests
# need a store nobody else has written or compacted (revision 1, nothing compacted). Closing
# the store stops its etcd; opening the same state again restarts it on the same data and
# ports, so "reopen" really goes through etcd's disk. ~0.3s per test.
_ETCD_SERVERS: dict[Path, EtcdServer] = {}


class _OwnedEtcdStore(EtcdStore):
    def __init__(self, server: EtcdServer) -> None:
        super().__init__([server.endpoint])
        self.server = server

    def close(self) -> None:
        super().close()
        self.server.stop()


def open_etcd(state: Path) -> Store:
    server = _ETCD_SERVERS.get(state)
    if server is None:
        server = _ETCD_SERVERS[state] = EtcdServer(state / "etcd")
    return _OwnedEtcdStore(server.start())


BACKENDS = [
    Backend("sqlite-memory", lambda _state: SqliteStore(":memory:"), persistent=False),
    Backend("sqlite-file", lambda state: SqliteStore(str(state / "state.db")), persistent=True),
    # Each etcd test starts an etcd process: end-to-end, outside `make test-unit`.
    pytest.param(Backend("etcd", open_etcd, persistent=True), marks=pytest.mark.e2e),
]


@pytest.fixture(scope="session", autouse=True)
def _stop_etcd_servers() -> Iterator[None]:
    """Whatever a failing test left running is stopped at the end of the session."""
    yield
    for server in _ETCD_SERVERS.values():
        server.stop()
    _ETCD_SERVERS.clear()


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    if chosen.name == "etcd" and etcd_binary() is None:
        pytest.skip("etcd is not installed (scripts/setup.sh installs etcd-server)")
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


# -- etcd on its own (tests of EtcdStore's specifics) ----------------------------------------
@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """A fresh etcd; resumed first if the test paused it (a stopped etcd ignores SIGTERM)."""
    if etcd_binary() is None:
        pytest.skip("etcd is not installed (scripts/setup.sh installs etcd-server)")
    server = EtcdServer(tmp_path / "etcd").start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture
def etcd_store(etcd: EtcdServer) -> Iterator[EtcdStore]:
    store = EtcdStore([etcd.endpoint])
    try:
        yield store
    finally:
        store.close()
