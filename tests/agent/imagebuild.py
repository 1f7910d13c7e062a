"""Build small OCI image layouts in tests (busybox from the host, or plain files)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from typing import Any


def tar_bytes(entries: dict[str, bytes | str | None], symlinks: dict[str, str] | None = None) -> bytes:
    """A layer: path -> file content (str = a source file on the host, None = directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            data = open(content, "rb").read() if isinstance(content, str) else content  # noqa: SIM115
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def write_layout(path: str, layers: list[bytes], config: dict[str, Any], ref: str) -> None:
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data: bytes, media: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}

    layer_descs = [put(layer, "application/vnd.oci.image.layer.v1.tar") for layer in layers]
    conf = put(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layer_descs]},
            }
        ).encode(),
        "application/vnd.oci.image.config.v1+json",
    )
    manifest = put(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": conf,
                "layers": layer_descs,
            }
        ).encode(),
        "application/vnd.oci.image.manifest.v1+json",
    )
    manifest["annotations"] = {"org.opencontainers.image.ref.name": ref}
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def busybox_layout(path: str, busybox: str) -> None:
    tools = ["sh", "sleep", "echo", "cat", "dd", "ls", "true", "head"]
    layer = tar_bytes(
        {"bin": None, "tmp": None, "proc": None, "sys": None, "dev": None, "bin/busybox": busybox},
        {f"bin/{t}": "busybox" for t in tools},
    )
    write_layout(path, [layer], {"Env": ["PATH=/bin"], "Cmd": ["sh"]}, "busybox:test")
