"""Applying an image layer (a tar, maybe gzip or zstd) to a rootfs without ever leaving it.

The agent unpacks as root, and a layer comes from whoever controls a registry that a pod
names, so every path in it is hostile. Each one is resolved inside the rootfs the way
openat2(RESOLVE_IN_ROOT) would: component by component from a directory fd, symlinks read
and followed by hand, an absolute symlink target and `..` taken relative to the rootfs
(never above it), and every open made with O_NOFOLLOW, so that the host's files are out of
reach whatever an earlier layer planted (`evil -> /etc`, then `evil/.wh.passwd`).

Rules (the OCI image spec's layer format):
- whiteouts (`.wh.NAME`) and opaque whiteouts (`.wh..wh..opq`) hide what the LOWER layers
  put there, never what their own layer adds: they are applied in a first pass, before any
  entry of the layer is written;
- names with a `..` component are skipped; absolute names are relative to the rootfs;
- a hard link must name an existing non-directory inside the rootfs (resolved the same way);
- character and block devices are skipped (runc gives containers their own /dev); fifos,
  files, directories and symlinks keep the mode (setuid/setgid included: the container is
  confined, and images such as those shipping `su` rely on it), owner and mtime the layer says;
- a layer may not unpack to more than `limits.max_bytes` bytes or `limits.max_entries`
  entries (a decompression bomb stops there with LayerRejected), nor name a path or a link
  target longer than PATH_MAX.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from sigma.agent.layer_compression import open_layer

log = logging.getLogger("sigma.agent.layers")

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_SYMLINKS = 40  # as the kernel's ELOOP bound
PATH_MAX = 4096  # as the kernel's: a longer name or link target is no path a container could use
_DIR_CACHE = 256
_COPY = 1 << 20


@dataclass(frozen=True)
class LayerLimits:
    max_bytes: int = 32 << 30  # file bytes one layer may unpack to
    max_entries: int = 500_000  # tar members one layer may hold (each is kept in memory while it unpacks)


class LayerRejected(ValueError):
    """The layer cannot be applied safely (too large, a symlink loop, a path it may not use)."""


def split_name(name: str) -> list[str] | None:
    """The components of a member name relative to the rootfs; None for a name with `..`."""
    if len(name) > PATH_MAX:
        raise LayerRejected(f"a layer entry names a path of {len(name)} bytes (at most {PATH_MAX})")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return None if ".." in parts else parts


class Rootfs:
    """A rootfs directory, held by an fd; every path below it resolved inside it."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # Parent directories of recent entries, by the components the layer named them with:
        # a layer's entries come directory by directory, so most need no resolution at all.
        # Valid while no directory or symlink is removed (which is what could change where a
        # name leads: a name first met as missing is created as a directory there and then).
        self._dirs: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        self.forget_dirs()
        os.close(self.fd)

    def forget_dirs(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def parent_dir(self, parts: list[str]) -> int:
        """A new fd (the caller closes it) of the directory `parts` leads to, made where
        missing."""
        key = tuple(parts)
        fd = self._dirs.get(key)
        if fd is None:
            if len(self._dirs) >= _DIR_CACHE:
                self.forget_dirs()
            with self.open_dir(self.resolve(parts), create=True) as opened:
                fd = self._dirs[key] = os.dup(opened)
        return os.dup(fd)

    def remove(self, dfd: int, name: str) -> None:
        """remove_at, forgetting the cached directories when a directory or link went."""
        if remove_at(dfd, name):
            self.forget_dirs()

    def resolve(self, parts: list[str], follow_last: bool = True) -> list[str]:
        """The real components (no symlinks left but maybe the last, when not followed) that
        `parts` names inside the rootfs; components that do not exist are kept as they are."""
        done: list[str] = []
        todo = list(parts)
        links = 0
        while todo:
            name = todo.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if done:
                    done.pop()  # never above the rootfs: its `..` is itself
                continue
            last = not todo
            target = self._readlink(done, name)
            if target is None or (last and not follow_last):
                done.append(name)
                continue
            links += 1
            if links > MAX_SYMLINKS:
                raise LayerRejected(f"too many levels of symbolic links under /{'/'.join(parts)}")
            if target.startswith("/"):
                done = []  # absolute: from the rootfs, not from the host's /
            todo = target.split("/") + todo
        return done

    def _readlink(self, dirs: list[str], name: str) -> str | None:
        """The target of dirs/name when it is a symlink, else None (absent or not a link)."""
        try:
            with self.open_dir(dirs) as dfd:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                return os.readlink(name, dir_fd=dfd) if stat.S_ISLNK(st.st_mode) else None
        except (FileNotFoundError, NotADirectoryError):
            return None

    @contextlib.contextmanager
    def open_dir(self, dirs: list[str], create: bool = False) -> Iterator[int]:
        """An fd of the real directory dirs (resolved components: a symlink among them is
        refused by O_NOFOLLOW); with `create`, missing ones are made (0755) and a non-directory
        in the way is replaced."""
        fd = os.dup(self.fd)
        try:
            for name in dirs:
                nfd = _open_subdir(fd, name, create)
                os.close(fd)
                fd = nfd
            yield fd
        finally:
            os.close(fd)


def _open_subdir(fd: int, name: str, create: bool) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=fd)
    except OSError as err:
        # Absent, a file, or a symlink (ELOOP): resolve() followed every link it could, so a
        # link here was planted meanwhile or loops; never go through it.
        if not create or err.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise
    remove_at(fd, name)  # a file, or a symlink never traversed: no cached directory goes through it
    os.mkdir(name, 0o755, dir_fd=fd)
    return os.open(name, flags, dir_fd=fd)


def remove_at(dfd: int, name: str) -> bool:
    """Remove dfd/name whatever it is (a directory with all it holds), never following it;
    whether it was a directory or a symlink."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)
        return stat.S_ISLNK(st.st_mode)
    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    try:
        for entry in os.listdir(sub):
            remove_at(sub, entry)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=dfd)
    return True


def apply_layer(blob: str, rootfs: str, limits: LayerLimits | None = None) -> None:
    """Apply the layer at path `blob` on top of the directory `rootfs`."""
    limits = limits or LayerLimits()
    root = Rootfs(rootfs)
    try:
        # zstd layers inflate to a scratch file beside the rootfs (layer_compression); the
        # cap leaves room for each entry's tar header and padding beside its bytes.
        cap = limits.max_bytes + 1024 * limits.max_entries + (1 << 20)
        with open_layer(blob, os.path.dirname(os.path.abspath(rootfs)), cap) as tar:
            members = _members(tar, limits)
            for member in members:  # first the whiteouts: they hide the lower layers only
                _whiteout(root, member)
            budget = [limits.max_bytes]
            for member in members:
                _extract(root, tar, member, budget)
    finally:
        root.close()


def _members(tar: tarfile.TarFile, limits: LayerLimits) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    declared = 0
    for member in tar:
        members.append(member)
        if len(members) > limits.max_entries:
            raise LayerRejected(f"the layer has more than {limits.max_entries} entries")
        declared += member.size if member.isreg() else 0
        if declared > limits.max_bytes:
            raise LayerRejected(f"the layer unpacks to more than {limits.max_bytes} bytes")
    return members


def _whiteout(root: Rootfs, member: tarfile.TarInfo) -> None:
    parts = split_name(member.name)
    if not parts or not parts[-1].startswith(WHITEOUT):
        return
    base = parts[-1]
    parent = root.resolve(parts[:-1])
    try:
        with root.open_dir(parent) as dfd:
            if base == OPAQUE:
                for entry in os.listdir(dfd):
                    remove_at(dfd, entry)
                return
            hidden = base[len(WHITEOUT) :]
            if hidden and hidden not in (".", "..") and "/" not in hidden:
                remove_at(dfd, hidden)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing below to hide


def _extract(root: Rootfs, tar: tarfile.TarFile, member: tarfile.TarInfo, budget: list[int]) -> None:
    parts = split_name(member.name)
    if parts is None:
        log.warning("layer entry %r has a '..' component: skipped", member.name)
        return
    if not parts or parts[-1].startswith(WHITEOUT):
        return  # the rootfs itself, or a whiteout (applied already)
    if member.ischr() or member.isblk():
        return  # runc gives containers their own /dev
    if not (member.isdir() or member.isreg() or member.issym() or member.islnk() or member.isfifo()):
        return  # no other kind of entry makes sense in a rootfs
    dfd = root.parent_dir(parts[:-1])
    try:
        _create(root, tar, member, dfd, parts[-1], budget)
    finally:
        os.close(dfd)


def _create(
    root: Rootfs, tar: tarfile.TarFile, member: tarfile.TarInfo, dfd: int, name: str, budget: list[int]
) -> None:
    if member.isdir():
        _make_dir(root, dfd, name, member)
        return
    root.remove(dfd, name)
    if member.isreg():
        _write_file(tar, member, dfd, name, budget)  # with its attributes
        return
    if member.issym():
        if len(member.linkname) > PATH_MAX:
            raise LayerRejected(f"layer symlink {member.name!r} has a target of {len(member.linkname)} bytes")
        os.symlink(member.linkname, name, dir_fd=dfd)
    elif member.islnk():
        _hardlink(root, member, dfd, name)
        return  # the inode is the target's: its attributes are the target's
    else:
        os.mkfifo(name, 0o600, dir_fd=dfd)
    _set_attributes(dfd, name, member)


def _make_dir(root: Rootfs, dfd: int, name: str, member: tarfile.TarInfo) -> None:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            root.remove(dfd, name)
            os.mkdir(name, 0o700, dir_fd=dfd)
    except FileNotFoundError:
        os.mkdir(name, 0o700, dir_fd=dfd)
    _set_attributes(dfd, name, member)


def _hardlink(root: Rootfs, member: tarfile.TarInfo, dfd: int, name: str) -> None:
    target = split_name(member.linkname)
    if not target:
        log.warning("layer hard link %r -> %r: the target is not a name inside the rootfs", member.name,
                    member.linkname)
        return
    real = root.resolve(target, follow_last=False)
    try:
        with root.open_dir(real[:-1]) as tfd:
            if stat.S_ISDIR(os.stat(real[-1], dir_fd=tfd, follow_symlinks=False).st_mode):
                raise IsADirectoryError(member.linkname)
            os.link(real[-1], name, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
    except (OSError, IndexError) as err:
        log.warning("layer hard link %r -> %r skipped: %s", member.name, member.linkname, err)


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, dfd: int, name: str, budget: list[int]) -> None:
    src = tar.extractfile(member)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=dfd)
    try:
        if src is None:
            return
        while True:
            chunk = src.read(_COPY)
            if not chunk:
                break
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise LayerRejected("the layer unpacks to more bytes than a layer may")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        with contextlib.suppress(PermissionError):  # not root: the files stay ours
            os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)  # after chown, which clears setuid
        os.utime(fd, (member.mtime, member.mtime))
    finally:
        os.close(fd)


def _set_attributes(dfd: int, name: str, member: tarfile.TarInfo) -> None:
    """Owner, mode (setuid kept) and mtime as the layer says; never through a symlink."""
    with contextlib.suppress(PermissionError):  # not root: the files stay ours
        os.chown(name, member.uid, member.gid, dir_fd=dfd, follow_symlinks=False)
    if not member.issym():
        # chmod has no "do not follow" on Linux: through an O_NOFOLLOW fd instead (O_PATH
        # cannot fchmod, and a fifo opened for reading would block: O_NONBLOCK).
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        try:
            os.fchmod(fd, member.mode & 0o7777)
        finally:
            os.close(fd)
    with contextlib.suppress(OSError):
        os.utime(name, (member.mtime, member.mtime), dir_fd=dfd, follow_symlinks=False)
