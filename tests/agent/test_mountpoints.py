"""Mount points made on the host for a process pod's read-only view."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.agent.runtime.mountpoints import ensure_mount_points, ensure_rootfs_parents, host_only_token


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A directory outside /tmp (paths under /tmp are the pod's own and left alone)."""
    path = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_missing_directory_and_file_mount_points_are_made(outside_tmp: Path) -> None:
    tmp_path = outside_tmp
    src_dir, src_file = tmp_path / "vol", tmp_path / "vol" / "key"
    src_dir.mkdir()
    src_file.write_text("x")
    ensure_mount_points([(str(tmp_path / "a" / "b"), str(src_dir), True),
                         (str(tmp_path / "c" / "file"), str(src_file), True),
                         ("/tmp/never-made-by-the-agent/x", str(src_dir), False)])
    assert (tmp_path / "a" / "b").is_dir() and (tmp_path / "c" / "file").is_file()
    assert not Path("/tmp/never-made-by-the-agent").exists()  # the pod's own /tmp: runc makes it


def test_host_only_token() -> None:
    token = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert host_only_token([], token) and host_only_token([(token, "/x", True)], token)
    assert not host_only_token([(token, "/x", True), ("/data", "/y", False)], token)


def test_rootfs_parents_are_0755_and_symlinks_are_not_followed(tmp_path: Path) -> None:
    rootfs, outside = tmp_path / "rootfs", tmp_path / "outside"
    rootfs.mkdir()
    outside.mkdir()
    (rootfs / "var").symlink_to(outside)  # a hostile image pointing out of its rootfs
    ensure_rootfs_parents(str(rootfs), [("/etc/app/conf", "/src", True), ("/var/run/x/y", "/src", True)])
    assert (rootfs / "etc" / "app").stat().st_mode & 0o777 == 0o755
    assert not (rootfs / "etc" / "app" / "conf").exists()  # the mount point itself is runc's
    assert list(outside.iterdir()) == []
