"""zstd layers: read through the zstd binary, capped, and pulled from a registry like any other."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from sigma.agent.images import ImageStore
from sigma.agent.layer_compression import LayerFormatError, is_zstd, open_layer
from sigma.agent.layers import LayerLimits, apply_layer
from sigma.agent.oci_registry import RegistryPuller
from tests.agent.imagebuild import tar_bytes
from tests.p2p.conftest import needs_registry, push_image, start_registry

ZSTD = shutil.which("zstd")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(ZSTD is None, reason="needs the zstd binary")]


def zstd(data: bytes) -> bytes:
    assert ZSTD is not None
    return subprocess.run([ZSTD, "-q", "-c"], input=data, capture_output=True, check=True).stdout


def test_a_zstd_layer_is_applied_like_a_tar(tmp_path: Any) -> None:
    blob = tmp_path / "layer"
    blob.write_bytes(zstd(tar_bytes({"etc": None, "etc/motd": b"from zstd\n"})))
    assert is_zstd(str(blob))
    root = tmp_path / "rootfs"
    root.mkdir()
    apply_layer(str(blob), str(root))
    assert (root / "etc" / "motd").read_bytes() == b"from zstd\n"
    assert [p for p in os.listdir(tmp_path) if p not in ("layer", "rootfs")] == []  # no scratch file left


def test_a_zstd_bomb_stops_at_the_cap(tmp_path: Any) -> None:
    blob = tmp_path / "bomb"
    blob.write_bytes(zstd(tar_bytes({"big": b"\0" * (4 << 20)})))
    with pytest.raises(LayerFormatError, match="inflates to more than"), open_layer(str(blob), str(tmp_path), 1 << 20):
        pass
    root = tmp_path / "rootfs"
    root.mkdir()
    with pytest.raises(ValueError):  # the layer limits give the cap: LayerFormatError or LayerRejected
        apply_layer(str(blob), str(root), LayerLimits(max_bytes=1 << 20, max_entries=1))
    assert not (root / "big").exists()


def test_a_broken_zstd_stream_is_refused(tmp_path: Any) -> None:
    blob = tmp_path / "broken"
    blob.write_bytes(zstd(tar_bytes({"a": b"a" * 10000}))[:30])
    with pytest.raises(LayerFormatError, match="does not decompress"), open_layer(str(blob), str(tmp_path), 1 << 30):
        pass


@needs_registry
def test_an_image_with_a_zstd_layer_is_pulled_and_unpacked(tmp_path: Any) -> None:
    reg, proc = start_registry(str(tmp_path))
    try:
        plain = tar_bytes({"bin": None, "bin/base": b"base"})
        packed = zstd(tar_bytes({"app": None, "app/data": b"zstd layer"}))
        digest = push_image(reg, "zstd/app", "1", [plain, packed], {})
        store = ImageStore(str(tmp_path / "store"))
        assert RegistryPuller()(store, f"{reg.host}/zstd/app:1") == digest
        store.make_rootfs(f"{reg.host}/zstd/app:1", str(tmp_path / "rootfs"))
        assert (tmp_path / "rootfs" / "app" / "data").read_bytes() == b"zstd layer"
        assert (tmp_path / "rootfs" / "bin" / "base").read_bytes() == b"base"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
