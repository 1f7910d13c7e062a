"""Index resolution (pure), and a Docker schema 2 manifest list with gzip layers pulled from a
real registry; P2P asks peers only for what the registry lets this node pull."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest

from sigma.agent.images import ImageNotFound, ImageStore
from sigma.agent.oci_registry import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    RegistryPuller,
    choose_platform,
    parse_reference,
    push_blob,
    push_manifest,
)
from tests.agent.imagebuild import tar_bytes
from tests.p2p.conftest import LocalRegistry, needs_registry, start_registry

REF = parse_reference("reg.local/app:1")


def _entry(digest: str, arch: str, variant: str | None = None, os_name: str = "linux") -> dict[str, Any]:
    plat = {"os": os_name, "architecture": arch, **({"variant": variant} if variant else {})}
    return {"digest": digest, "platform": plat}


def test_the_nodes_platform_and_variant_are_chosen() -> None:
    index = {"manifests": [_entry("att", "unknown", os_name="unknown"), _entry("v7", "arm", "v7"),
                           _entry("v6", "arm", "v6"), _entry("v8", "arm64", "v8"), _entry("amd", "amd64"),
                           _entry("win", "amd64", os_name="windows")]}
    assert choose_platform(index, REF, "amd64")["digest"] == "amd"
    assert choose_platform(index, REF, "arm64")["digest"] == "v8"
    assert choose_platform(index, REF, "arm")["digest"] == "v7"
    only_v6 = {"manifests": [_entry("v6", "arm", "v6")]}
    assert choose_platform(only_v6, REF, "arm")["digest"] == "v6"  # another variant of the arch before amd64
    with pytest.raises(ImageNotFound, match=r"no linux/amd64 manifest; it offers \['windows/amd64'\]"):
        choose_platform({"manifests": [_entry("win", "amd64", os_name="windows")]}, REF, "amd64")


def _push_docker_image(reg: LocalRegistry, repo: str, content: bytes) -> tuple[str, int]:
    with httpx.Client() as client:
        layer = gzip.compress(tar_bytes({"which": content}))
        ldesc = {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                 **push_blob(client, reg.base, repo, layer)}
        conf = json.dumps({"architecture": "amd64", "os": "linux", "config": {}}).encode()
        cdesc = {"mediaType": "application/vnd.docker.container.image.v1+json",
                 **push_blob(client, reg.base, repo, conf)}
        body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": cdesc,
                           "layers": [ldesc]}).encode()
        return push_manifest(client, reg.base, repo, content.decode(), body, DOCKER_MANIFEST), len(body)


@needs_registry
@pytest.mark.e2e
def test_a_docker_manifest_list_pulls_linux_amd64_with_gzip_layers(tmp_path: Any) -> None:
    reg, proc = start_registry(str(tmp_path))
    try:
        arm, arm_size = _push_docker_image(reg, "multi", b"arm64")
        amd, amd_size = _push_docker_image(reg, "multi", b"amd64")
        manifests = [{"mediaType": DOCKER_MANIFEST, "digest": arm, "size": arm_size,
                      "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                     {"mediaType": DOCKER_MANIFEST, "digest": amd, "size": amd_size,
                      "platform": {"os": "linux", "architecture": "amd64"}}]
        with httpx.Client() as client:
            push_manifest(client, reg.base, "multi", "latest",
                          json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": manifests}).encode(),
                          DOCKER_LIST)
        store = ImageStore(str(tmp_path / "store"))
        puller = RegistryPuller(arch="amd64")
        assert puller(store, f"{reg.host}/multi") == amd
        assert puller.sizes[amd] > 0
        store.make_rootfs(f"{reg.host}/multi", str(tmp_path / "rootfs"))
        assert (tmp_path / "rootfs" / "which").read_bytes() == b"amd64"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
