"""Fixtures for image and P2P tests: Debian's docker-registry on loopback (its access log is
how tests count what reached the registry), a tracker served by uvicorn, and a pusher."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from sigma.agent.oci_registry import OCI_MANIFEST, push_blob, push_manifest
from sigma.p2p.tracker import TrackerState, standalone_app

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
needs_registry = pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalRegistry:
    host: str  # 127.0.0.1:PORT
    storage: str
    log: str

    @property
    def base(self) -> str:
        return f"http://{self.host}"

    def blob_data_path(self, digest: str) -> str:
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")

    def blob_gets(self, digest: str) -> int:
        """GETs of this blob the registry answered, from its access log."""
        with open(self.log) as f:
            return sum(1 for line in f if f"blobs/{digest}" in line and "GET" in line and "response completed" in line)


def start_registry(workdir: str) -> tuple[LocalRegistry, subprocess.Popen[bytes]]:
    port = free_port()
    storage = os.path.join(workdir, "registry-data")
    config = os.path.join(workdir, "registry.yml")
    with open(config, "w") as f:
        f.write(
            f"version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
    log = os.path.join(workdir, "registry.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", config], stdout=out, stderr=subprocess.STDOUT)
    reg = LocalRegistry(f"127.0.0.1:{port}", storage, log)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if httpx.get(f"{reg.base}/v2/", timeout=1).status_code == 200:
                return reg, proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    with open(log) as f:
        raise RuntimeError(f"docker-registry did not start: {f.read()[-2000:]}")


@pytest.fixture
def registry(tmp_path: Any) -> Iterator[LocalRegistry]:
    reg, proc = start_registry(str(tmp_path))
    try:
        yield reg
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def push_image(reg: LocalRegistry, repo: str, tag: str, layers: list[bytes], config: dict[str, Any]) -> str:
    """Push an image (layers + config); returns the manifest digest."""
    with httpx.Client(timeout=30) as client:
        layer_descs = [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", **push_blob(client, reg.base, repo, data)}
            for data in layers
        ]
        conf = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layer_descs]},
            }
        ).encode()
        conf_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", **push_blob(client, reg.base, repo, conf)}
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": conf_desc, "layers": layer_descs}
        ).encode()
        return push_manifest(client, reg.base, repo, tag, manifest, OCI_MANIFEST)


def push_raw_blob(reg: LocalRegistry, repo: str, data: bytes) -> str:
    with httpx.Client(timeout=60) as client:
        return str(push_blob(client, reg.base, repo, data)["digest"])


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def tracker() -> Iterator[tuple[str, TrackerState]]:
    """A tracker on loopback (as mounted in the master: under /p2p); short claim leases."""
    state = TrackerState(claim_lease=2.0)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(standalone_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/p2p", state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
