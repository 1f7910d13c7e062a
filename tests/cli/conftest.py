"""A real `sigma master` for the client and CLI tests: a subprocess on a free loopback port with
a temporary SQLite store, shared by the whole session (tests isolate themselves by namespace)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sigma.client.http import HttpClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sigma master exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"sigma master at {url} not ready after {timeout}s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def sigma_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running `sigma master`."""
    workdir = tmp_path_factory.mktemp("master")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "master.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sigma", "master", "--listen", f"127.0.0.1:{port}",
             "--store", f"sqlite:///{workdir / 'sigma.db'}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
