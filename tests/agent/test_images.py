"""The image store: OCI layout and tar import, digest checks, layers with whiteouts."""

from __future__ import annotations

import io
import json
import os
import tarfile
from typing import Any

import pytest

from sigma.agent.images import DigestMismatch, ImageNotFound, ImageStore, normalize

from .imagebuild import tar_bytes, write_layout


def two_layer_image(path: str) -> None:
    lower = tar_bytes(
        {"etc": None, "etc/keep": b"keep", "etc/gone": b"x", "opaque": None, "opaque/old": b"o"}
    )
    upper = tar_bytes(
        {"etc/.wh.gone": b"", "opaque/.wh..wh..opq": b"", "opaque/new": b"n", "etc/keep": b"v2"}
    )
    write_layout(path, [lower, upper], {"Cmd": ["/bin/true"]}, "demo:1")


def test_oci_layout_import_applies_layers_in_order_with_whiteouts(tmp_path: Any) -> None:
    two_layer_image(str(tmp_path / "layout"))
    store = ImageStore(str(tmp_path / "store"))
    [(name, digest)] = store.import_path(str(tmp_path / "layout"))
    assert name == "demo:1" and digest.startswith("sha256:")
    assert store.config("demo:1") == {"Cmd": ["/bin/true"]}
    store.make_rootfs("demo:1", str(tmp_path / "rootfs"))
    root = tmp_path / "rootfs"
    assert (root / "etc/keep").read_bytes() == b"v2"
    assert not (root / "etc/gone").exists()
    assert sorted(os.listdir(root / "opaque")) == ["new"]


def test_oci_tar_import_and_explicit_name(tmp_path: Any) -> None:
    two_layer_image(str(tmp_path / "layout"))
    with tarfile.open(tmp_path / "img.tar", "w") as tar:
        tar.add(tmp_path / "layout", arcname=".")
    store = ImageStore(str(tmp_path / "store"))
    store.import_path(str(tmp_path / "img.tar"), name="registry.local/demo:2")
    assert store.resolve("registry.local/demo:2") == store.resolve("demo:1")


def test_docker_save_tar_import(tmp_path: Any) -> None:
    layer = tar_bytes({"hello": b"world"})
    config = json.dumps({"config": {"Cmd": ["cat", "/hello"]}}).encode()
    with tarfile.open(tmp_path / "save.tar", "w") as tar:
        for name, data in {
            "abc/layer.tar": layer,
            "cfg.json": config,
            "manifest.json": json.dumps(
                [{"Config": "cfg.json", "RepoTags": ["hello:latest"], "Layers": ["abc/layer.tar"]}]
            ).encode(),
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    store = ImageStore(str(tmp_path / "store"))
    assert store.import_path(str(tmp_path / "save.tar"))[0][0] == "hello:latest"
    store.make_rootfs("hello", str(tmp_path / "r"))
    assert (tmp_path / "r" / "hello").read_bytes() == b"world"


def test_a_corrupted_blob_is_refused(tmp_path: Any) -> None:
    two_layer_image(str(tmp_path / "layout"))
    blobs = tmp_path / "layout" / "blobs" / "sha256"
    biggest = max(blobs.iterdir(), key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:-1] + b"!")
    with pytest.raises(DigestMismatch):
        ImageStore(str(tmp_path / "store")).import_path(str(tmp_path / "layout"))


def test_unknown_image_and_name_normalisation(tmp_path: Any) -> None:
    assert normalize("docker.io/library/busybox") == "busybox:latest"
    assert normalize("localhost:5000/app") == "localhost:5000/app:latest"
    with pytest.raises(ImageNotFound, match="sigma image import"):
        ImageStore(str(tmp_path / "s")).resolve("nope")
