"""kubelet's AtomicWriter layout: a timestamped payload, ..data swapped, keys linked."""

from __future__ import annotations

import os
from pathlib import Path

from sigma.agent.volumes.atomic import DATA, Owner, current, write
from sigma.agent.volumes.plan import FileSpec

ME = Owner(os.geteuid(), os.getegid())


def test_first_write_makes_the_layout(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    assert write(str(vol), [FileSpec("a", b"1", 0o400), FileSpec("dir/b", b"2", 0o644)], ME)
    assert os.readlink(vol / "a") == f"{DATA}/a" and os.readlink(vol / "dir") == f"{DATA}/dir"
    target = os.readlink(vol / DATA)
    assert target.startswith("..") and (vol / target).is_dir()
    assert (vol / "a").read_bytes() == b"1" and (vol / "dir" / "b").read_bytes() == b"2"
    assert (vol / target / "a").stat().st_mode & 0o777 == 0o400
    assert (vol / target).stat().st_mode & 0o777 == 0o700 and vol.stat().st_mode & 0o777 == 0o700
    assert current(str(vol)) == {"a": (b"1", 0o400), "dir/b": (b"2", 0o644)}


def test_same_payload_writes_nothing(tmp_path: Path) -> None:
    vol = str(tmp_path / "v")
    files = [FileSpec("a", b"1", 0o644)]
    write(vol, files, ME)
    before = os.readlink(os.path.join(vol, DATA))
    assert not write(vol, files, ME)
    assert os.readlink(os.path.join(vol, DATA)) == before


def test_update_swaps_data_and_drops_old_keys_and_payload(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    write(str(vol), [FileSpec("a", b"1", 0o644), FileSpec("gone", b"x", 0o644)], ME)
    old = os.readlink(vol / DATA)
    assert write(str(vol), [FileSpec("a", b"2", 0o644)], ME)
    assert (vol / "a").read_bytes() == b"2"
    assert not os.path.lexists(vol / "gone") and not (vol / old).exists()
    assert sorted(os.listdir(vol)) == sorted([DATA, os.readlink(vol / DATA), "a"])


def test_fs_group_owns_and_may_read(tmp_path: Path) -> None:
    owner = Owner(os.geteuid(), os.getegid(), fs_group=os.getegid())
    vol = tmp_path / "v"
    write(str(vol), [FileSpec("a", b"1", 0o400)], owner)
    assert (vol / "a").stat().st_mode & 0o777 == 0o440 and vol.stat().st_mode & 0o777 == 0o750
