"""The node's image store: content-addressed blobs, verified on import, unpacked into a
rootfs per container. Imports an OCI image layout (directory or tar) or a `docker save` tar.

    <root>/blobs/sha256/<hex>     manifests, configs, layers
    <root>/refs.json              {"busybox:latest": "sha256:..."} (name -> manifest digest)
    <root>/usage.json             {manifest digest: last used, unix time}: the LRU for gc()
    <root>/unpacked/<hex>/        a layer-merged rootfs per manifest: the lower layer of each
                                  container's overlay, or the source of its copy

Images also come from registries (sigma.agent.oci_registry, `sigma image pull`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable
from typing import Any

from sigma.agent.layers import LayerLimits, apply_layer
from sigma.agent.statefile import read_json, write_json
from sigma.digests import sha256_file

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DEFAULT_ROOT = os.environ.get("SIGMA_IMAGE_DIR", "/var/lib/sigma/images")


class ImageNotFound(LookupError):
    pass


class DigestMismatch(ValueError):
    pass


def normalize(name: str) -> str:
    """ "busybox", "docker.io/library/busybox:latest" -> "busybox:latest"."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    last = name.rsplit("/", 1)[-1]
    return name if (":" in last or "@" in name) else f"{name}:latest"


class ImageStore:
    def __init__(self, root: str = DEFAULT_ROOT, layer_limits: LayerLimits | None = None) -> None:
        self.root = root
        self.layer_limits = layer_limits or LayerLimits()  # what one layer may unpack to
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)

    def blob_path(self, digest: str) -> str:
        algo, _, hexd = digest.partition(":")
        if algo != "sha256" or len(hexd) != 64:
            raise DigestMismatch(f"unsupported digest {digest!r}")
        return os.path.join(self.root, "blobs", "sha256", hexd)

    def refs(self) -> dict[str, str]:
        path = os.path.join(self.root, "refs.json")
        return {k: str(v) for k, v in read_json(path).items()} if os.path.exists(path) else {}

    # -- import --------------------------------------------------------------------------
    def import_path(self, path: str, name: str | None = None) -> list[tuple[str, str]]:
        """Import every image in `path`; returns [(name, manifest digest)]."""
        if os.path.isdir(path):
            return self._import_dir(path, name)
        with tempfile.TemporaryDirectory(dir=self.root) as tmp, tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
            return self._import_dir(tmp, name)

    def _import_dir(self, path: str, name: str | None) -> list[tuple[str, str]]:
        if os.path.exists(os.path.join(path, "oci-layout")):
            found = self._import_oci(path)
        elif os.path.exists(os.path.join(path, "manifest.json")):
            found = self._import_docker(path)
        else:
            raise ValueError(f"{path}: neither an OCI image layout (oci-layout) nor a docker-save archive")
        if name:  # an explicit name is added for the first (usually only) image
            found = [(normalize(name), found[0][1]), *found]
        refs = self.refs()
        refs.update(found)
        write_json(os.path.join(self.root, "refs.json"), refs)
        return found

    def _import_oci(self, layout: str) -> list[tuple[str, str]]:
        def copy(desc: dict[str, Any]) -> None:
            hexd = desc["digest"].split(":", 1)[1]
            self._store(os.path.join(layout, "blobs", "sha256", hexd), desc["digest"], desc.get("size"))

        out = []
        for desc in read_json(os.path.join(layout, "index.json")).get("manifests", []):
            copy(desc)
            manifest = read_json(self.blob_path(desc["digest"]))
            if "manifests" in manifest:  # a nested index (multi-platform): take linux/amd64 or the first
                subs = manifest["manifests"]
                desc = next(
                    (m for m in subs if m.get("platform", {}).get("architecture") == "amd64"), subs[0]
                )
                copy(desc)
                manifest = read_json(self.blob_path(desc["digest"]))
            for blob in [manifest["config"], *manifest["layers"]]:
                copy(blob)
            ref = desc.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
            out.append((normalize(ref or desc["digest"][7:19]), desc["digest"]))
        return out

    def _import_docker(self, root: str) -> list[tuple[str, str]]:
        out = []
        with open(os.path.join(root, "manifest.json")) as f:
            entries = json.load(f)
        for entry in entries:
            config_path = os.path.join(root, entry["Config"])
            config_digest = self._store(config_path, sha256_file(config_path), None)
            layers = []
            for layer in entry["Layers"]:
                lpath = os.path.join(root, layer)
                digest = self._store(lpath, sha256_file(lpath), None)
                layers.append({"mediaType": OCI_LAYER, "digest": digest, "size": os.path.getsize(lpath)})
            manifest = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "layers": layers,
                "config": {
                    "mediaType": OCI_CONFIG,
                    "digest": config_digest,
                    "size": os.path.getsize(config_path),
                },
            }
            digest = self._store_bytes(json.dumps(manifest, sort_keys=True).encode())
            for tag in entry.get("RepoTags") or [digest[7:19]]:
                out.append((normalize(tag), digest))
        return out

    def _store(self, src: str, digest: str, size: int | None, move: bool = False, what: str = "") -> str:
        dest = self.blob_path(digest)
        if os.path.exists(dest):
            return digest
        actual = sha256_file(src)
        if actual != digest or (size is not None and os.path.getsize(src) != size):
            raise DigestMismatch(
                f"{what or src}: content is {actual} ({os.path.getsize(src)} bytes), "
                f"the descriptor says {digest} ({size} bytes); refusing it"
            )
        if move:
            os.replace(src, dest)
            return digest
        tmp = dest + ".tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return digest

    # -- the surface for registry pulls ----------------------------------------------------
    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def add_blob(self, src: str, digest: str, size: int | None = None, move: bool = False, what: str = "") -> str:
        """Verify `src` against digest (and size) and store it; `what` names it in errors."""
        return self._store(src, digest, size, move, what)

    def put_bytes(self, data: bytes, digest: str) -> str:
        if self._store_bytes(data) != digest:
            raise DigestMismatch(f"content is not {digest}")
        return digest

    def set_ref(self, name: str, digest: str) -> None:
        refs = self.refs()
        refs[normalize(name)] = digest
        write_json(os.path.join(self.root, "refs.json"), refs)

    def has(self, name: str) -> bool:
        try:
            return self.has_blob(self.resolve(name))
        except ImageNotFound:
            return False

    def _store_bytes(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(self.blob_path(digest), "wb") as f:
            f.write(data)
        return digest

    # -- use -----------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        refs = self.refs()
        digest = refs.get(normalize(name)) or (name if name in refs.values() else None)
        if digest is None:
            raise ImageNotFound(
                f'image "{name}" is not in the node\'s image store; import it with `sigma image import PATH`'
            )
        return digest

    def manifest(self, name: str) -> dict[str, Any]:
        return read_json(self.blob_path(self.resolve(name)))

    def config(self, name: str) -> dict[str, Any]:
        """The image's runtime config (Env, Cmd, Entrypoint, WorkingDir)."""
        conf = read_json(self.blob_path(self.manifest(name)["config"]["digest"]))
        return dict(conf.get("config") or {})

    def make_rootfs(self, name: str, dest: str, overlay: bool = False) -> str:
        """The image's rootfs for one container at `dest`; returns "overlay" or "copy".

        A copy by default: nothing stays mounted if the agent dies. With overlay=True the
        unpacked image is the read-only lower layer and the container writes to
        dest.upper (starts at once, shares page cache); where overlayfs cannot be
        mounted (no root, no overlay module) it falls back to a copy. Undo with
        release_rootfs(dest) either way."""
        digest = self.resolve(name)
        cache = os.path.join(self.root, "unpacked", digest.split(":", 1)[1])
        if not os.path.isdir(cache):
            tmp = cache + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            try:
                for layer in self.manifest(name)["layers"]:
                    unpack_layer(self.blob_path(layer["digest"]), tmp, self.layer_limits)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-applied image behind
                raise
            os.replace(tmp, cache)
        self.touch(digest)
        if overlay and _mount_overlay(cache, dest):
            return "overlay"
        # cp -a keeps what the image says (owners, modes with setuid, hard links); a Python
        # copytree would make every file root's, turning a user's setuid file into root's.
        os.makedirs(dest, exist_ok=True)
        done = subprocess.run(["cp", "-a", "--", f"{cache}/.", dest], capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(f"copying the rootfs of {name} failed: {done.stderr.strip()[:500]}")
        return "copy"

    # -- least recently used garbage collection ------------------------------------------
    def touch(self, digest: str, now: float | None = None) -> None:
        usage = self.last_used()
        usage[digest] = time.time() if now is None else now
        write_json(os.path.join(self.root, "usage.json"), usage)

    def last_used(self) -> dict[str, float]:
        path = os.path.join(self.root, "usage.json")
        return {k: float(v) for k, v in read_json(path).items()} if os.path.exists(path) else {}

    def image_blobs(self, digest: str) -> set[str]:
        """The manifest and every blob it references."""
        if not self.has_blob(digest):
            return set()
        manifest = read_json(self.blob_path(digest))
        return {digest, *(b["digest"] for b in [manifest.get("config"), *manifest.get("layers", [])] if b)}

    def disk_usage(self) -> int:
        return sum(_tree_size(os.path.join(self.root, d)) for d in ("blobs", "unpacked"))

    def gc(self, budget: int, in_use: Iterable[str] = ()) -> list[str]:
        """Remove least recently used images until the store fits `budget` bytes. Images in
        `in_use` (names or digests of running containers' images) are never removed; a
        blob shared with a kept image stays. Returns the names (or digests) removed."""
        keep = {self.resolve(n) if not n.startswith("sha256:") else n for n in in_use if self._known(n)}
        refs, usage = self.refs(), self.last_used()
        candidates = sorted((set(refs.values()) | set(usage)) - keep, key=lambda d: usage.get(d, 0.0))
        removed: list[str] = []
        for victim in candidates:
            if self.disk_usage() <= budget:
                break
            names = [n for n, d in refs.items() if d == victim]
            for n in names:
                del refs[n]
            usage.pop(victim, None)
            still = set().union(*(self.image_blobs(d) for d in set(refs.values()) | keep))
            for blob in self.image_blobs(victim) - still:
                os.unlink(self.blob_path(blob))
            shutil.rmtree(os.path.join(self.root, "unpacked", victim.split(":", 1)[1]), ignore_errors=True)
            write_json(os.path.join(self.root, "refs.json"), refs)
            write_json(os.path.join(self.root, "usage.json"), usage)
            removed += names or [victim]
        return removed

    def _known(self, name: str) -> bool:
        return name.startswith("sha256:") or self.has(name)

    def remove(self, name: str) -> None:
        refs = self.refs()
        refs.pop(normalize(name), None)
        write_json(os.path.join(self.root, "refs.json"), refs)


def unpack_layer(blob: str, rootfs: str, limits: LayerLimits | None = None) -> None:
    """Apply one layer (tar, maybe gzip) on top of rootfs, honouring OCI whiteouts; every
    path is resolved inside rootfs (sigma.agent.layers)."""
    apply_layer(blob, rootfs, limits)


def _mount_overlay(lower: str, dest: str) -> bool:
    upper, work = dest + ".upper", dest + ".work"
    for d in (dest, upper, work):
        os.makedirs(d, exist_ok=True)
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, dest], capture_output=True)
    if done.returncode != 0:
        for d in (upper, work):
            shutil.rmtree(d, ignore_errors=True)
        return False
    return True


def release_rootfs(dest: str) -> None:
    """Unmount a container's overlay rootfs (if it is one) and remove it."""
    if os.path.ismount(dest):
        subprocess.run(["umount", "-l", dest], capture_output=True, check=False)
    for d in (dest, dest + ".upper", dest + ".work"):
        shutil.rmtree(d, ignore_errors=True)


def _tree_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(FileNotFoundError):  # removed while we walked
                total += os.lstat(os.path.join(root, f)).st_size
    return total


def parse_size(text: str) -> int:
    """ "500M", "10G", "1048576" -> bytes (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("I").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)
