"""Hostile image layers, pulled from a real docker-registry and unpacked by the image store as
the agent does (as root): nothing outside the rootfs may be touched, whatever the layers
plant, and whiteouts follow the OCI image spec."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.agent.images import ImageStore
from sigma.agent.layers import LayerLimits, LayerRejected
from sigma.agent.oci_registry import RegistryPuller
from tests.p2p.conftest import LocalRegistry, needs_registry, push_image, start_registry

pytestmark = [needs_registry, pytest.mark.e2e]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    reg, proc = start_registry(str(tmp_path))
    try:
        yield reg
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host directory outside every rootfs, with sentinel files a layer must not touch."""
    d = tmp_path / "host"
    (d / "etc").mkdir(parents=True)
    (d / "etc" / "passwd").write_text("root:x:0:0\n")
    (d / "etc" / "shadow").write_text("secret\n")
    (d / "data").mkdir()
    (d / "data" / "keep").write_text("keep\n")
    return d


def entry(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, len(data), 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def layer(*entries: tuple[tarfile.TarInfo, bytes], gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buf.getvalue()
    return gzip.compress(raw) if gz else raw


def unpack(registry: LocalRegistry, tmp_path: Path, layers: list[bytes], limits: LayerLimits | None = None) -> Path:
    """Push an image of `layers`, pull it into a fresh store and unpack its rootfs."""
    push_image(registry, "hostile", "v1", layers, {})
    store = ImageStore(str(tmp_path / "store"))
    if limits is not None:
        store.layer_limits = limits
    ref = f"{registry.host}/hostile:v1"
    RegistryPuller()(store, ref)
    rootfs = tmp_path / "rootfs"
    store.make_rootfs(ref, str(rootfs))
    return rootfs


def test_a_whiteout_through_a_planted_symlink_deletes_nothing_on_the_host(
    registry: LocalRegistry, tmp_path: Path, host: Path
) -> None:
    rootfs = unpack(registry, tmp_path, [
        layer(entry("evil", tarfile.SYMTYPE, linkname=str(host / "etc")), entry("etc", tarfile.DIRTYPE),
              entry("etc/shadow", data=b"image's own\n"), entry("etc/passwd", data=b"image's own\n"),
              entry("mine", tarfile.SYMTYPE, linkname="/etc")),
        layer(entry("evil/.wh.shadow"), entry("evil/.wh.passwd"), entry("mine/.wh.shadow")),
    ])
    assert (host / "etc" / "shadow").read_text() == "secret\n"
    assert (host / "etc" / "passwd").read_text() == "root:x:0:0\n"
    # Inside the rootfs an absolute target is the rootfs' own /etc: that is what it hides.
    assert not (rootfs / "etc" / "shadow").exists() and (rootfs / "etc" / "passwd").exists()
    assert os.readlink(rootfs / "evil") == str(host / "etc")


def test_an_opaque_whiteout_through_a_planted_symlink_empties_no_host_directory(
    registry: LocalRegistry, tmp_path: Path, host: Path
) -> None:
    unpack(registry, tmp_path, [
        layer(entry("evil", tarfile.SYMTYPE, linkname=str(host / "data"))),
        layer(entry("evil/.wh..wh..opq")),
        layer(entry("rel", tarfile.SYMTYPE, linkname="../../../../../../../../" + str(host / "data")),),
        layer(entry("rel/.wh..wh..opq"), entry("rel/.wh.keep")),
    ])
    assert (host / "data" / "keep").read_text() == "keep\n"


def test_files_written_through_a_planted_symlink_land_inside_the_rootfs(
    registry: LocalRegistry, tmp_path: Path, host: Path
) -> None:
    rootfs = unpack(registry, tmp_path, [
        layer(entry("evil", tarfile.SYMTYPE, linkname=str(host / "etc")),
              entry("up", tarfile.SYMTYPE, linkname="../../../../../../.." + str(host))),
        layer(entry("evil/passwd", data=b"pwned\n"), entry("up/etc/new", data=b"pwned\n")),
    ])
    assert (host / "etc" / "passwd").read_text() == "root:x:0:0\n"
    assert not (host / "etc" / "new").exists()
    assert (rootfs / str(host / "etc" / "passwd").lstrip("/")).read_text() == "pwned\n"
    assert (rootfs / str(host / "etc" / "new").lstrip("/")).read_text() == "pwned\n"


def test_an_opaque_whiteout_hides_only_the_lower_layers(registry: LocalRegistry, tmp_path: Path) -> None:
    rootfs = unpack(registry, tmp_path, [
        layer(entry("app", tarfile.DIRTYPE), entry("app/old", data=b"lower\n")),
        # The new files come before the opaque marker in the tar: it must not remove them.
        layer(entry("app", tarfile.DIRTYPE), entry("app/new", data=b"upper\n"), entry("app/.wh..wh..opq"),
              entry("app/.wh.newer"), entry("app/newer", data=b"same layer\n")),
    ])
    assert sorted(os.listdir(rootfs / "app")) == ["new", "newer"]
    assert (rootfs / "app" / "new").read_text() == "upper\n"


def test_hard_links_and_names_that_point_outside_the_rootfs_are_not_followed(
    registry: LocalRegistry, tmp_path: Path, host: Path
) -> None:
    shadow = str(host / "etc" / "shadow")
    rootfs = unpack(registry, tmp_path, [
        layer(entry("evil", tarfile.SYMTYPE, linkname=str(host / "etc")), entry("ok", data=b"mine\n")),
        layer(entry("abs", tarfile.LNKTYPE, linkname=shadow),
              entry("dots", tarfile.LNKTYPE, linkname="../../../../../../.." + shadow),
              entry("via", tarfile.LNKTYPE, linkname="evil/shadow"),
              entry("../../../../escape", data=b"pwned\n"),
              entry(str(host / "etc" / "abs-name"), data=b"inside\n"),
              entry("good", tarfile.LNKTYPE, linkname="ok")),
    ])
    # Writing through any of these would change the host's file.
    for name in ("abs", "dots", "via"):
        assert not (rootfs / name).exists() or os.stat(rootfs / name).st_ino != os.stat(shadow).st_ino
    assert os.stat(shadow).st_nlink == 1 and (host / "etc" / "shadow").read_text() == "secret\n"
    assert not (tmp_path / "escape").exists() and not (tmp_path.parent / "escape").exists()
    assert not (host / "etc" / "abs-name").exists()
    assert (rootfs / str(host / "etc" / "abs-name").lstrip("/")).read_text() == "inside\n"
    assert os.stat(rootfs / "good").st_ino == os.stat(rootfs / "ok").st_ino


@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes and owners need root")
def test_devices_are_skipped_and_setuid_owner_and_mode_kept(registry: LocalRegistry, tmp_path: Path) -> None:
    rootfs = unpack(registry, tmp_path, [
        layer(entry("dev", tarfile.DIRTYPE),
              entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
              entry("dev/mem", tarfile.CHRTYPE, devmajor=1, devminor=1),
              entry("bin", tarfile.DIRTYPE),
              entry("bin/su", data=b"#!/bin/true\n", mode=0o4755, uid=0, gid=0),
              entry("home", tarfile.DIRTYPE, mode=0o1777),
              entry("home/user", data=b"x", mode=0o600, uid=1000, gid=1000)),
    ])
    assert os.listdir(rootfs / "dev") == []
    assert stat.S_IMODE(os.stat(rootfs / "bin" / "su").st_mode) == 0o4755
    assert stat.S_IMODE(os.stat(rootfs / "home").st_mode) == 0o1777
    st = os.stat(rootfs / "home" / "user")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o600)


def test_a_decompression_bomb_stops_at_the_layer_cap_and_leaves_nothing(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    bomb = layer(entry("zeros", data=bytes(64 << 20)), gz=True)
    assert len(bomb) < 1 << 20  # a small blob that unpacks to 64 MiB
    with pytest.raises(LayerRejected, match="more than"):
        unpack(registry, tmp_path, [bomb], LayerLimits(max_bytes=16 << 20))
    many = layer(*(entry(f"f{i}") for i in range(300)))
    with pytest.raises(LayerRejected, match="entries"):
        unpack(registry, tmp_path, [many], LayerLimits(max_entries=100))
    deep = layer(entry("a/" * 3000 + "f"))  # 3000 levels: quadratic work for every lookup
    with pytest.raises(LayerRejected, match="at most 4096"):
        unpack(registry, tmp_path, [deep])
    assert not (tmp_path / "rootfs").exists()
    assert os.listdir(tmp_path / "store" / "unpacked") == []  # no half-applied image was kept


def test_a_symlink_loop_is_refused(registry: LocalRegistry, tmp_path: Path) -> None:
    with pytest.raises(LayerRejected, match="symbolic links"):
        unpack(registry, tmp_path, [
            layer(entry("a", tarfile.SYMTYPE, linkname="b"), entry("b", tarfile.SYMTYPE, linkname="/a")),
            layer(entry("a/file", data=b"x")),
        ])


def test_a_directory_replaced_by_a_symlink_mid_layer_is_followed_inside_the_rootfs(
    registry: LocalRegistry, tmp_path: Path, host: Path
) -> None:
    rootfs = unpack(registry, tmp_path, [
        layer(entry("a", tarfile.DIRTYPE), entry("a/f", data=b"1\n"),
              entry("a", tarfile.SYMTYPE, linkname=str(host / "etc")),  # replaces the directory
              entry("a/passwd", data=b"pwned\n"), entry("a/new", data=b"2\n")),
    ])
    assert (host / "etc" / "passwd").read_text() == "root:x:0:0\n" and not (host / "etc" / "new").exists()
    inside = rootfs / str(host / "etc").lstrip("/")
    assert (inside / "passwd").read_text() == "pwned\n" and (inside / "new").read_text() == "2\n"
    assert os.readlink(rootfs / "a") == str(host / "etc")
