from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from tests.harness import MasterProcess


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    # The API alone: no scheduler or controller writes to the objects the tests inspect.
    proc = MasterProcess(Path(tmp_path_factory.mktemp("master")), extra_args=("--no-controllers",)).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def controlled_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    """A master with its controllers and schedulers (no node): for tests where what a
    controller would do with an object is part of the answer."""
    proc = MasterProcess(Path(tmp_path_factory.mktemp("master"))).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def api(master: MasterProcess) -> Iterator[client.ApiClient]:
    """The kubernetes client against this module's ``master``."""
    config = client.Configuration()
    config.host = master.url
    with client.ApiClient(config) as api_client:
        yield api_client


@pytest.fixture
def http(master: MasterProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=master.url, timeout=10) as c:
        yield c


@pytest.fixture
def ns(http: httpx.Client) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name
