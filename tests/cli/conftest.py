"""A real `sigma master` for the client and CLI tests: a subprocess on a free loopback port with
a temporary SQLite store and no controllers (the tests look at the objects they wrote), shared
by the whole session (tests isolate themselves by namespace)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from sigma.client.http import HttpClient
from tests.harness import MasterProcess


@pytest.fixture(scope="session")
def sigma_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running `sigma master`."""
    master = MasterProcess(tmp_path_factory.mktemp("master"), extra_args=("--no-controllers",)).start()
    try:
        yield master.url
    finally:
        master.stop()


@pytest.fixture
def client(sigma_master: str) -> Iterator[HttpClient]:
    with HttpClient(sigma_master) as c:
        yield c


@pytest.fixture
def namespace(client: HttpClient) -> str:
    """A fresh namespace per test, so tests sharing one master never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name
