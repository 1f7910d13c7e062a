"""The image store around pulls: rootfs per container, LRU garbage collection under a disk
budget, and imagePullPolicy in ensure_image (the registry behind a narrow fake puller)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from sigma.agent.images import ImageStore, parse_size, release_rootfs
from sigma.agent.oci_registry import ImagePullError, default_pull_policy, ensure_image
from tests.agent.imagebuild import tar_bytes, write_layout

IS_ROOT = os.geteuid() == 0


def add_image(store: ImageStore, tmp: Any, name: str, payload: bytes, shared: bytes = b"base") -> str:
    layout = str(tmp / f"layout-{name.replace(':', '-')}")
    write_layout(layout, [tar_bytes({"base": shared}), tar_bytes({"payload": payload})], {}, name)
    return store.import_path(layout)[0][1]


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class FakePuller:
    """Stands in for the registry: imports a fresh layout and counts pulls."""

    def __init__(self, tmp: Any) -> None:
        self.tmp, self.pulls = tmp, 0

    def __call__(self, store: ImageStore, image: str) -> str:
        self.pulls += 1
        return add_image(store, self.tmp, image, f"v{self.pulls}".encode())


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT, reason="mounting overlayfs needs root")
def test_with_overlay_each_container_writes_to_its_own_upper_layer(tmp_path: Any) -> None:
    store = ImageStore(str(tmp_path / "store"))
    add_image(store, tmp_path, "app:1", b"image")
    a, b = str(tmp_path / "a" / "rootfs"), str(tmp_path / "b" / "rootfs")
    assert store.make_rootfs("app:1", a, overlay=True) == "overlay"
    assert store.make_rootfs("app:1", b, overlay=True) == "overlay"
    try:
        with open(os.path.join(a, "payload"), "wb") as f:
            f.write(b"changed by a")
        assert read(os.path.join(b, "payload")) == b"image"
        assert read(os.path.join(a + ".upper", "payload")) == b"changed by a"
    finally:
        release_rootfs(a)
        release_rootfs(b)
    assert not os.path.exists(a) and not os.path.ismount(b)
    unpacked = os.listdir(os.path.join(store.root, "unpacked"))
    assert len(unpacked) == 1  # the image itself was never written to
    assert read(os.path.join(store.root, "unpacked", unpacked[0], "payload")) == b"image"


def test_without_overlay_a_rootfs_is_a_private_copy(tmp_path: Any) -> None:
    store = ImageStore(str(tmp_path / "store"))
    add_image(store, tmp_path, "app:1", b"image")
    assert store.make_rootfs("app:1", str(tmp_path / "r")) == "copy"
    assert (tmp_path / "r" / "payload").read_bytes() == b"image"
    release_rootfs(str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_gc_removes_least_recently_used_images_first_and_keeps_images_in_use(tmp_path: Any) -> None:
    store = ImageStore(str(tmp_path / "store"))
    big = os.urandom(200_000)
    digests = {n: add_image(store, tmp_path, n, big + n.encode()) for n in ("old:1", "used:1", "mid:1", "new:1")}
    for i, name in enumerate(("used:1", "old:1", "mid:1", "new:1")):  # "used" is the oldest of all
        store.touch(digests[name], now=1000.0 + i)
    full = store.disk_usage()
    removed = store.gc(budget=full - 250_000, in_use=["used:1"])
    assert removed == ["old:1", "mid:1"]
    assert sorted(store.refs()) == ["new:1", "used:1"]
    assert store.disk_usage() <= full - 250_000
    store.make_rootfs("used:1", str(tmp_path / "r"))  # the shared base layer survived
    assert (tmp_path / "r" / "base").read_bytes() == b"base"
    assert store.gc(budget=0, in_use=["used:1"]) == ["new:1"]
    assert list(store.refs()) == ["used:1"]


def test_sizes_read_like_kubernetes_quantities() -> None:
    assert parse_size("500M") == 500 << 20 and parse_size("10Gi") == 10 << 30 and parse_size("123") == 123


@pytest.mark.parametrize(
    ("policy", "present", "pulls", "reason"),
    [
        ("Always", True, 1, None),
        ("Always", False, 1, None),
        ("IfNotPresent", True, 0, None),
        ("IfNotPresent", False, 1, None),
        ("Never", True, 0, None),
        ("Never", False, 0, "ErrImageNeverPull"),
        ("Sometimes", True, 0, "InvalidImagePullPolicy"),
    ],
)
def test_image_pull_policy_decides_whether_the_registry_is_asked(
    tmp_path: Any, policy: str, present: bool, pulls: int, reason: str | None
) -> None:
    store = ImageStore(str(tmp_path / "store"))
    puller = FakePuller(tmp_path)
    if present:
        add_image(store, tmp_path, "reg.local/app:1", b"v0")
    if reason:
        with pytest.raises(ImagePullError) as err:
            ensure_image(store, "reg.local/app:1", policy, puller)
        assert err.value.reason == reason and "reg.local/app:1" in str(err.value)
    else:
        assert ensure_image(store, "reg.local/app:1", policy, puller) == store.resolve("reg.local/app:1")
    assert puller.pulls == pulls


def test_the_default_policy_is_always_for_latest_and_if_not_present_otherwise() -> None:
    assert default_pull_policy("reg.local:5000/app") == "Always"
    assert default_pull_policy("reg.local:5000/app:latest") == "Always"
    assert default_pull_policy("reg.local:5000/app:1.2") == "IfNotPresent"
    assert default_pull_policy("app@sha256:" + "0" * 64) == "IfNotPresent"


def test_without_a_registry_an_absent_image_cannot_be_pulled(tmp_path: Any) -> None:
    with pytest.raises(ImagePullError, match="no registry configured") as err:
        ensure_image(ImageStore(str(tmp_path / "s")), "reg.local/app:1", "IfNotPresent", None)
    assert err.value.reason == "ErrImagePull"
