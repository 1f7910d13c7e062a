"""Files of a volume written as kubelet's AtomicWriter writes them, so a reader never sees a
half-updated volume:

    VOLUME/..2026_12_07_04_30_00.123456789/   the payload, in a fresh timestamped directory
    VOLUME/..data -> ..2026_12_07_...          swapped at once (rename of a new symlink)
    VOLUME/KEY -> ..data/KEY                   what the pod sees, stable across updates

An update writes a new timestamped directory, swaps ``..data``, then removes the old one
and the entries no longer in the payload. Nothing is written when the payload is the same.
Directories are 0700 (0750 with an fsGroup), files have the mode asked for; all are owned
by the pod's user (and fsGroup), so the pod, and only it, can read them.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sigma.agent.volumes.plan import FileSpec

DATA = "..data"


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    fs_group: int | None = None  # given: the group of every file, which it may read

    def file_mode(self, mode: int) -> int:
        return mode | 0o040 if self.fs_group is not None else mode

    @property
    def dir_mode(self) -> int:
        return 0o750 if self.fs_group is not None else 0o700

    @property
    def group(self) -> int:
        return self.fs_group if self.fs_group is not None else self.gid


def current(volume_dir: str) -> dict[str, tuple[bytes, int]]:
    """The payload behind ``..data`` now: path -> (data, mode); {} when none."""
    base = os.path.join(volume_dir, DATA)
    out: dict[str, tuple[bytes, int]] = {}
    if not os.path.isdir(base):
        return out
    for root, _dirs, files in os.walk(base):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, base)] = (f.read(), os.stat(full).st_mode & 0o777)
    return out


def write(volume_dir: str, files: Sequence[FileSpec], owner: Owner) -> bool:
    """Make ``volume_dir`` show exactly ``files``; True when something changed."""
    os.makedirs(volume_dir, mode=owner.dir_mode, exist_ok=True)
    _own(volume_dir, owner, owner.dir_mode)
    wanted = {f.path: (f.data, owner.file_mode(f.mode)) for f in files}
    if os.path.islink(os.path.join(volume_dir, DATA)) and current(volume_dir) == wanted:
        return False
    old_target = _link_target(os.path.join(volume_dir, DATA))
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}"
    ts_name = f"..{stamp}"
    ts_dir = os.path.join(volume_dir, ts_name)
    os.mkdir(ts_dir, owner.dir_mode)
    _own(ts_dir, owner, owner.dir_mode)
    for spec in files:
        path = os.path.join(ts_dir, spec.path)
        parent = os.path.dirname(path)
        _makedirs(parent, ts_dir, owner)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(spec.data)
        _own(path, owner, owner.file_mode(spec.mode))
    tmp_link = os.path.join(volume_dir, "..data_tmp")
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(ts_name, tmp_link)
    os.rename(tmp_link, os.path.join(volume_dir, DATA))  # the atomic swap
    tops = {f.path.split("/", 1)[0] for f in files}
    for top in tops:
        link = os.path.join(volume_dir, top)
        if not os.path.lexists(link):
            os.symlink(os.path.join(DATA, top), link)
    for entry in os.listdir(volume_dir):
        full = os.path.join(volume_dir, entry)
        if entry.startswith(".."):
            if entry not in (DATA, ts_name) and os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)  # an older payload (also one a crash left)
        elif entry not in tops and os.path.islink(full):
            os.unlink(full)  # a key no longer in the payload
    if old_target and old_target != ts_name:
        shutil.rmtree(os.path.join(volume_dir, old_target), ignore_errors=True)
    return True


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _makedirs(path: str, top: str, owner: Owner) -> None:
    if path == top or os.path.isdir(path):
        return
    _makedirs(os.path.dirname(path), top, owner)
    os.mkdir(path, owner.dir_mode)
    _own(path, owner, owner.dir_mode)


def _own(path: str, owner: Owner, mode: int) -> None:
    if os.geteuid() == 0:
        os.chown(path, owner.uid, owner.group, follow_symlinks=False)
    os.chmod(path, mode)
