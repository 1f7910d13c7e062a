"""Content digests in the OCI form ("sha256:<hex>"), shared by the image store and the P2P
downloader: both verify blobs they did not produce."""

from __future__ import annotations

import hashlib


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()
