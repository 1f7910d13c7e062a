"""kubectl fetches /openapi/v2 in protobuf first and has no JSON fallback: the master must
answer it in protobuf, or every client-side-validated `kubectl apply` fails on the document
instead of on the manifest. Against a real `sigma master` and the unmodified kubectl."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")]

WIDGET = """apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
spec:
  size: 3
"""

POD = """apiVersion: v1
kind: Pod
metadata:
  name: validated
spec:
  containers:
  - name: main
    image: busybox
"""


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    with MasterProcess(Path(tmp_path_factory.mktemp("openapi-pb")), extra_args=("--no-controllers",)) as m:
        yield m


def kubectl(master: MasterProcess, *args: str, manifest: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--server", master.url, *args], capture_output=True, text=True,
                          input=manifest, timeout=60)


def test_the_protobuf_document_is_served_as_protobuf(master: MasterProcess) -> None:
    r = httpx.get(f"{master.url}/openapi/v2",
                  headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert r.status_code == 200 and "protobuf" in r.headers["content-type"]
    assert r.content[:1] == b"\x0a" and b"2.0" in r.content[:8]  # field 1 (swagger) = "2.0"
    plain = httpx.get(f"{master.url}/openapi/v2")
    assert plain.headers["content-type"].startswith("application/json") and plain.json()["swagger"] == "2.0"


def test_applying_an_unknown_kind_says_no_matches_for_kind(master: MasterProcess) -> None:
    result = kubectl(master, "apply", "-f", "-", manifest=WIDGET)
    assert result.returncode != 0
    assert 'no matches for kind "Widget" in version "example.com/v1"' in result.stderr, result.stderr
    assert "proto:" not in result.stderr and "openapi" not in result.stderr


def test_client_side_validation_still_applies_known_kinds(master: MasterProcess) -> None:
    result = kubectl(master, "apply", "-n", "default", "-f", "-", manifest=POD)
    assert result.returncode == 0, result.stderr
    explained = kubectl(master, "explain", "pods")
    assert explained.returncode == 0 and "KIND:" in explained.stdout and "Pod" in explained.stdout
