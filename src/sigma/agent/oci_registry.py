"""Pulling images from an OCI distribution registry into the node's ImageStore, and the
imagePullPolicy rule the agent applies before starting a container (`ensure_image`).

    GET /v2/NAME/manifests/REF   Accept: OCI/Docker manifest and index types
    GET /v2/NAME/blobs/DIGEST    every blob verified against its digest before it is stored

A pull resolves an index to the host's platform (linux/<arch>, else linux/amd64), then
fetches the config and layers that are not already in the store. Blobs come straight from
the registry, or through a `BlobFetcher` (the P2P downloader) that gets them from other
agents and goes to the registry only for pieces no peer holds; when the fetcher fails, for
whatever reason, the blob is fetched straight from the registry.

`push_*` are the reverse (POST an upload, PUT it with its digest, PUT the manifest): what
tests and the P2P benchmark use to fill a registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from sigma.agent.images import DigestMismatch, ImageNotFound, ImageStore, normalize

log = logging.getLogger("sigma.agent.oci_registry")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}

# (digest, size, blob URL at the registry, destination path): fetch, verify, write dest.
BlobFetcher = Callable[[str, int, str, str], object]


class RegistryError(RuntimeError):
    pass


class ImagePullError(RuntimeError):
    """Why an image is not there; `reason` is the Kubernetes container waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Reference:
    registry: str  # host[:port]
    repository: str
    tag: str | None
    digest: str | None

    @property
    def ref(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        at = f"@{self.digest}" if self.digest else f":{self.tag or 'latest'}"
        return f"{self.registry}/{self.repository}{at}"


def parse_reference(image: str, default_registry: str | None = None) -> Reference:
    """ "HOST[:PORT]/REPO[:TAG][@DIGEST]"; without a host the default registry is used."""
    name, _, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, name = first, rest
    elif default_registry:
        registry = default_registry
    else:
        raise ImagePullError("InvalidImageName", f'image "{image}" names no registry and no default registry is set')
    repo, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        repo, tag = name, ""
    if not repo or (digest and not digest.startswith("sha256:")):
        raise ImagePullError("InvalidImageName", f'"{image}" is not a valid image reference')
    return Reference(registry, repo, tag or None, digest or None)


class RegistryClient:
    def __init__(self, registry: str, plain_http: bool | None = None, timeout: float = 30.0) -> None:
        host = registry.split(":")[0]
        if plain_http is None:  # loopback registries speak plain HTTP; anything else TLS
            plain_http = host in ("localhost", "::1") or host.startswith("127.")
        self.base = f"{'http' if plain_http else 'https'}://{registry}"
        self.http = httpx.Client(timeout=timeout)

    def blob_url(self, repository: str, digest: str) -> str:
        return f"{self.base}/v2/{repository}/blobs/{digest}"

    def get_manifest(self, ref: Reference, which: str | None = None) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest or index, verified when named by digest."""
        which = which or ref.ref
        try:
            resp = self.http.get(f"{self.base}/v2/{ref.repository}/manifests/{which}", headers={"Accept": ACCEPT})
        except httpx.HTTPError as err:
            raise RegistryError(f"cannot reach the registry at {self.base} for {ref}: {err}") from err
        if resp.status_code == 404:
            codes = ", ".join(e.get("code", "?") for e in _errors(resp)) or "404"
            raise ImageNotFound(f'image "{ref}" not found: the registry at {self.base} answered {codes}')
        if resp.status_code >= 400:
            raise RegistryError(f"{ref}: the registry answered {resp.status_code}: {resp.text[:200]}")
        body = resp.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = which if which.startswith("sha256:") else resp.headers.get("Docker-Content-Digest")
        if expected and expected != digest:
            raise DigestMismatch(f"manifest of {ref}: content is {digest}, the registry said {expected}")
        media = resp.headers.get("Content-Type", "").split(";")[0] or json.loads(body).get("mediaType", "")
        return body, media, digest

    def download(self, repository: str, digest: str, dest: str) -> None:
        with self.http.stream("GET", self.blob_url(repository, digest)) as resp:
            if resp.status_code >= 400:
                raise RegistryError(f"blob {digest} of {repository}: the registry answered {resp.status_code}")
            with open(dest, "wb") as f:
                for chunk in resp.iter_bytes(1 << 20):
                    f.write(chunk)


def host_platform() -> str:
    return _ARCH.get(platform.machine(), platform.machine())


def choose_platform(index: dict[str, Any], ref: Reference, arch: str | None = None) -> dict[str, Any]:
    entries = index.get("manifests") or []
    for want in dict.fromkeys([arch or host_platform(), "amd64"]):
        for entry in entries:
            plat = entry.get("platform") or {}
            if plat.get("os", "linux") == "linux" and plat.get("architecture") == want:
                return dict(entry)
    offered = [
        f"{(e.get('platform') or {}).get('os')}/{(e.get('platform') or {}).get('architecture')}" for e in entries
    ]
    raise ImageNotFound(f'image "{ref}" has no linux/{arch or host_platform()} manifest; it offers {offered}')


class RegistryPuller:
    """`puller(store, image) -> manifest digest`: pull one image into the store."""

    def __init__(
        self,
        default_registry: str | None = None,
        blob_fetcher: BlobFetcher | None = None,
        plain_http: bool | None = None,
        arch: str | None = None,
    ) -> None:
        self.default_registry, self.blob_fetcher = default_registry, blob_fetcher
        self.plain_http, self.arch = plain_http, arch

    def __call__(self, store: ImageStore, image: str) -> str:
        ref = parse_reference(image, self.default_registry)
        client = RegistryClient(ref.registry, self.plain_http)
        body, media, digest = client.get_manifest(ref)
        manifest = json.loads(body)
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest:
            entry = choose_platform(manifest, ref, self.arch)
            body, media, digest = client.get_manifest(ref, entry["digest"])
            manifest = json.loads(body)
        for blob in [manifest["config"], *manifest["layers"]]:
            if not store.has_blob(blob["digest"]):
                self._fetch_blob(store, client, ref, blob)
        store.put_bytes(body, digest)
        store.set_ref(normalize(image), digest)
        store.touch(digest)
        return digest

    def _fetch_blob(self, store: ImageStore, client: RegistryClient, ref: Reference, blob: dict[str, Any]) -> None:
        digest, size = blob["digest"], int(blob["size"])
        if self.blob_fetcher is not None:
            # Straight to its final path: the fetcher checks the digest before it renames the
            # blob into place, and its peer keeps serving the pieces from there. Whatever
            # fails it (the P2P downloader falls back to the registry itself), the blob is
            # still fetched straight from the registry below: P2P never fails a pull.
            try:
                self.blob_fetcher(digest, size, client.blob_url(ref.repository, digest), store.blob_path(digest))
                if store.has_blob(digest):
                    return
            except Exception as err:
                log.warning("fetching blob %s of %s through peers failed (%s: %s); straight from the registry",
                            digest, ref, type(err).__name__, err)
        tmp = store.blob_path(digest) + f".pull.{os.getpid()}"
        try:
            client.download(ref.repository, digest, tmp)
            store.add_blob(tmp, digest, size, move=True, what=f'blob of image "{ref}"')
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def default_pull_policy(image: str) -> str:
    """Kubernetes' default: Always for :latest or no tag, IfNotPresent otherwise."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    return "Always" if (":" not in last or last.endswith(":latest")) else "IfNotPresent"


def ensure_image(
    store: ImageStore, image: str, policy: str | None, puller: Callable[[ImageStore, str], str] | None
) -> str:
    """Make `image` present as the container's imagePullPolicy says; its manifest digest.

    Raises ImagePullError with the waiting reason the pod's status should carry:
    ErrImageNeverPull (Never, and absent), ErrImagePull (the pull failed), InvalidImageName.
    """
    policy = policy or default_pull_policy(image)
    if policy not in PULL_POLICIES:
        msg = f'image "{image}": imagePullPolicy {policy!r} is not one of {PULL_POLICIES}'
        raise ImagePullError("InvalidImagePullPolicy", msg)
    present = store.has(image)
    if policy == "Never" or (policy == "IfNotPresent" and present):
        if not present:
            raise ImagePullError(
                "ErrImageNeverPull", f'image "{image}" is not on this node and imagePullPolicy is Never'
            )
        digest = store.resolve(image)
        store.touch(digest)
        return digest
    if puller is None:
        raise ImagePullError("ErrImagePull", f'image "{image}": this agent has no registry configured to pull from')
    try:
        return puller(store, image)
    except ImagePullError:
        raise  # already carries its reason (InvalidImageName)
    except (ImageNotFound, DigestMismatch, OSError, httpx.HTTPError, RuntimeError) as err:  # RuntimeError: P2P too
        raise ImagePullError("ErrImagePull", str(err)) from err


@contextlib.contextmanager
def pull_with(
    default_registry: str | None,
    plain_http: bool | None = None,
    tracker: str | None = None,
    listen: str = "0.0.0.0:0",
    advertise: str | None = None,
) -> Iterator[RegistryPuller]:
    """A puller, P2P when a tracker is given: this process serves the pieces it holds on
    `listen` for as long as the block runs (a one-shot `sigma image pull` helps the peers
    pulling beside it; the agent keeps its PeerServer for its whole life instead)."""
    if not tracker:
        yield RegistryPuller(default_registry, plain_http=plain_http)
        return
    from sigma.p2p.download import Downloader, TrackerClient
    from sigma.p2p.peer import PeerServer

    host, _, port = listen.rpartition(":")
    peer = PeerServer(host or "0.0.0.0", int(port or 0), advertise=advertise or socket.gethostname()).start()
    try:
        downloader = Downloader(TrackerClient(tracker), peer)
        yield RegistryPuller(default_registry, downloader.fetch, plain_http)
    finally:
        with contextlib.suppress(Exception):
            downloader.tracker.leave(peer.url)
        peer.stop()


def push_blob(client: httpx.Client, base: str, repository: str, data: bytes) -> dict[str, Any]:
    """Monolithic upload; returns the blob's descriptor (digest, size)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = client.post(f"{base}/v2/{repository}/blobs/uploads/")
    start.raise_for_status()
    # The Location carries the upload's state in its query string: add to it, don't replace it.
    location = httpx.URL(base).join(start.headers["Location"]).copy_merge_params({"digest": digest})
    done = client.put(location, content=data)
    done.raise_for_status()
    return {"digest": digest, "size": len(data)}


def push_manifest(client: httpx.Client, base: str, repository: str, ref: str, body: bytes, media: str) -> str:
    resp = client.put(f"{base}/v2/{repository}/manifests/{ref}", content=body, headers={"Content-Type": media})
    resp.raise_for_status()
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _errors(resp: httpx.Response) -> list[dict[str, Any]]:
    try:
        return list(resp.json().get("errors") or [])
    except ValueError:
        return []
