"""Pulling images from a real local docker-registry into the node's image store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from sigma.agent.images import DigestMismatch, ImageNotFound, ImageStore
from sigma.agent.oci_registry import (
    OCI_INDEX,
    ImagePullError,
    RegistryPuller,
    ensure_image,
    parse_reference,
    push_manifest,
)
from tests.agent.imagebuild import tar_bytes

from .conftest import LocalRegistry, needs_registry, push_image, sha

pytestmark = needs_registry
BUSYBOX = "/bin/busybox"


def busybox_layer() -> bytes:
    return tar_bytes(
        {"bin": None, "tmp": None, "bin/busybox": BUSYBOX},
        {f"bin/{t}": "busybox" for t in ("sh", "echo", "cat")},
    )


@pytest.mark.e2e
def test_an_image_is_pulled_by_tag_verified_and_runnable_as_a_rootfs(registry: LocalRegistry, tmp_path: Any) -> None:
    digest = push_image(registry, "tools/busybox", "1.36", [busybox_layer()], {"Cmd": ["sh"], "Env": ["PATH=/bin"]})
    store = ImageStore(str(tmp_path / "store"))
    ref = f"{registry.host}/tools/busybox:1.36"
    assert RegistryPuller()(store, ref) == digest
    assert store.config(ref) == {"Cmd": ["sh"], "Env": ["PATH=/bin"]}
    assert store.make_rootfs(ref, str(tmp_path / "rootfs")) == "copy"
    out = subprocess.run(["chroot", str(tmp_path / "rootfs"), "/bin/echo", "hi"], capture_output=True)
    if os.geteuid() == 0:
        assert out.stdout == b"hi\n"


@pytest.mark.e2e
def test_a_pull_by_digest_fetches_only_missing_blobs(registry: LocalRegistry, tmp_path: Any) -> None:
    layer = busybox_layer()
    digest = push_image(registry, "app", "v1", [layer, tar_bytes({"app": b"v1"})], {})
    push_image(registry, "app", "v2", [layer, tar_bytes({"app": b"v2"})], {})
    store = ImageStore(str(tmp_path / "store"))
    RegistryPuller()(store, f"{registry.host}/app@{digest}")
    RegistryPuller()(store, f"{registry.host}/app:v2")
    assert registry.blob_gets(sha(layer)) == 1  # the shared base layer came once


def push_index(registry: LocalRegistry, repo: str, tag: str, platforms: dict[str, str]) -> None:
    entries = []
    with httpx.Client() as client:
        for arch, digest in platforms.items():
            body = client.get(f"{registry.base}/v2/{repo}/manifests/{digest}", headers={"Accept": "*/*"}).content
            entries.append(
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest,
                    "size": len(body),
                    "platform": {"os": "linux", "architecture": arch},
                }
            )
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        push_manifest(client, registry.base, repo, tag, json.dumps(index).encode(), OCI_INDEX)


@pytest.mark.e2e
def test_an_index_resolves_to_the_host_platform_else_linux_amd64(registry: LocalRegistry, tmp_path: Any) -> None:
    amd = push_image(registry, "multi", "amd64", [tar_bytes({"arch": b"amd64"})], {})
    arm = push_image(registry, "multi", "arm64", [tar_bytes({"arch": b"arm64"})], {})
    push_index(registry, "multi", "latest", {"arm64": arm, "amd64": amd})
    push_index(registry, "multi", "armonly", {"arm64": arm})
    store = ImageStore(str(tmp_path / "store"))
    assert RegistryPuller(arch="amd64")(store, f"{registry.host}/multi") == amd
    assert RegistryPuller(arch="arm64")(store, f"{registry.host}/multi:latest") == arm
    assert RegistryPuller(arch="s390x")(store, f"{registry.host}/multi:latest") == amd
    store.make_rootfs(f"{registry.host}/multi:latest", str(tmp_path / "r"))
    assert (tmp_path / "r" / "arch").read_bytes() == b"amd64"
    with pytest.raises(ImageNotFound, match=r"no linux/amd64 manifest; it offers \['linux/arm64'\]"):
        RegistryPuller(arch="amd64")(store, f"{registry.host}/multi:armonly")


@pytest.mark.e2e
def test_a_tampered_blob_is_refused_and_not_stored(registry: LocalRegistry, tmp_path: Any) -> None:
    layer = tar_bytes({"data": b"x" * 4096})
    push_image(registry, "victim", "1", [layer], {})
    path = registry.blob_data_path(sha(layer))
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"EVIL")
    store = ImageStore(str(tmp_path / "store"))
    with pytest.raises(DigestMismatch, match=rf'blob of image "{registry.host}/victim:1": content is sha256:'):
        RegistryPuller()(store, f"{registry.host}/victim:1")
    assert not store.has_blob(sha(layer)) and store.refs() == {}


@pytest.mark.e2e
@pytest.mark.parametrize("ref", ["nothere:1", "victim:missing"])
def test_a_missing_image_or_tag_is_a_clear_error_naming_the_reference(
    registry: LocalRegistry, tmp_path: Any, ref: str
) -> None:
    push_image(registry, "victim", "1", [tar_bytes({"a": b"a"})], {})
    store = ImageStore(str(tmp_path / "store"))
    with pytest.raises(ImagePullError) as err:
        ensure_image(store, f"{registry.host}/{ref}", "IfNotPresent", RegistryPuller())
    assert err.value.reason == "ErrImagePull"
    assert f'image "{registry.host}/{ref}" not found' in str(err.value)
    assert "UNKNOWN" in str(err.value)  # the registry's own code: NAME_UNKNOWN / MANIFEST_UNKNOWN


def test_an_unreachable_registry_is_an_image_pull_error(tmp_path: Any) -> None:
    with pytest.raises(ImagePullError, match=r"cannot reach the registry at http://127\.0\.0\.1:9"):
        ensure_image(ImageStore(str(tmp_path / "s")), "127.0.0.1:9/x:1", None, RegistryPuller())


def test_references_are_parsed_like_docker_does() -> None:
    ref = parse_reference("127.0.0.1:5000/team/app:v1")
    assert (ref.registry, ref.repository, ref.tag) == ("127.0.0.1:5000", "team/app", "v1")
    ref = parse_reference("team/app", default_registry="reg.local")
    assert (ref.registry, ref.repository, ref.ref) == ("reg.local", "team/app", "latest")
    ref = parse_reference("localhost:5000/app@sha256:" + "a" * 64)
    assert ref.digest == "sha256:" + "a" * 64 and ref.tag is None
    ref = parse_reference("busybox")  # as Docker reads it
    assert (ref.registry, ref.repository, ref.ref) == ("docker.io", "library/busybox", "latest")
    with pytest.raises(ImagePullError, match='"Busybox"') as err:
        parse_reference("Busybox")
    assert err.value.reason == "InvalidImageName"


@pytest.mark.e2e
def test_sigma_image_pull_and_ls(registry: LocalRegistry, tmp_path: Any) -> None:
    digest = push_image(registry, "cli", "1", [tar_bytes({"a": b"a"})], {})
    store = str(tmp_path / "store")
    sigma = [sys.executable, "-m", "sigma", "image", "--store", store]
    out = subprocess.run([*sigma, "pull", f"{registry.host}/cli:1"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{registry.host}/cli:1\t{digest}"
    assert digest in subprocess.run([*sigma, "ls"], capture_output=True, text=True, check=True).stdout
    bad = subprocess.run([*sigma, "pull", f"{registry.host}/cli:2"], capture_output=True, text=True)
    assert bad.returncode == 1 and f'ErrImagePull: image "{registry.host}/cli:2" not found' in bad.stderr
