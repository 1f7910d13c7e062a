"""Opening a layer blob whatever it is compressed with, told by its first bytes (a media
type may lie; the bytes cannot):

    application/vnd.oci.image.layer.v1.tar          plain tar
    application/vnd.oci.image.layer.v1.tar+gzip     gzip (also Docker's ...rootfs.diff.tar.gzip)
    application/vnd.oci.image.layer.v1.tar+zstd     zstd

tarfile reads plain, gzip, bzip2 and xz itself. zstd is not in this Python (3.11: no
`compression.zstd`) nor in the venv (no `zstandard`), so it is decompressed by the `zstd`
binary into an unnamed scratch file next to the rootfs, at most `cap` bytes of it (a
decompression bomb stops there); the layer is then read from that file like any tar.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from typing import IO

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20


class LayerFormatError(ValueError):
    """The layer cannot be decompressed here (no zstd binary, a broken or oversized stream)."""


def is_zstd(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == ZSTD_MAGIC


@contextlib.contextmanager
def open_layer(path: str, scratch_dir: str, cap: int) -> Iterator[tarfile.TarFile]:
    """The layer at `path` as a seekable TarFile; `cap`: bytes a zstd layer may inflate to."""
    if not is_zstd(path):
        with tarfile.open(path, "r:*") as tar:
            yield tar
        return
    with tempfile.TemporaryFile(dir=scratch_dir) as scratch:
        _unzstd(path, scratch, cap)
        scratch.seek(0)
        with tarfile.open(fileobj=scratch, mode="r:") as tar:
            yield tar


def _unzstd(path: str, out: IO[bytes], cap: int) -> None:
    binary = shutil.which("zstd")
    if binary is None:
        raise LayerFormatError("the layer is zstd-compressed and this node has no zstd binary to read it")
    proc = subprocess.Popen([binary, "-d", "-c", "-q", "--", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    written = 0
    try:
        while chunk := proc.stdout.read(_CHUNK):
            written += len(chunk)
            if written > cap:
                raise LayerFormatError(f"the zstd layer inflates to more than {cap} bytes")
            out.write(chunk)
        err = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise LayerFormatError(f"the zstd layer does not decompress: {err[:300]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
