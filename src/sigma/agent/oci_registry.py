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
from typing import Any

import httpx

from sigma.agent.image_reference import ImageName, InvalidReference, endpoints, parse_image
from sigma.agent.images import DigestMismatch, ImageNotFound, ImageStore, normalize
from sigma.agent.pull_credentials import Keyring
from sigma.agent.registry_auth import Credential, RegistryAuth, RegistryAuthError, pull_scope, status_text

log = logging.getLogger("sigma.agent.oci_registry")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}

# (digest, size, blob URL, destination path, headers for that URL): fetch, verify, write dest.
BlobFetcher = Callable[[str, int, str, str, dict[str, str]], object]


class RegistryError(RuntimeError):
    """The registry (or its token server) refused; `status` is its HTTP status, if any."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ImagePullError(RuntimeError):
    """Why an image is not there; `reason` is the Kubernetes container waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


Reference = ImageName  # host[:port] (docker.io for the Hub), repository, tag, digest


def parse_reference(image: str, default_registry: str | None = None) -> Reference:
    """ "HOST[:PORT]/REPO[:TAG][@DIGEST]", short names as Docker reads them (docker.io,
    library/), or on `default_registry` when set (sigma.agent.image_reference)."""
    try:
        return parse_image(image, default_registry)
    except InvalidReference as err:
        raise ImagePullError("InvalidImageName", f'Failed to apply default image tag "{image}": {err}') from err


class RegistryClient:
    """One endpoint of a registry (the registry itself or a mirror), through an auth session."""

    def __init__(self, base: str, auth: RegistryAuth | None = None) -> None:
        self.base = base.rstrip("/")
        self.auth = auth or RegistryAuth()

    def blob_url(self, repository: str, digest: str) -> str:
        return f"{self.base}/v2/{repository}/blobs/{digest}"

    def get_manifest(self, ref: Reference, which: str | None = None) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest or index, verified when named by digest
        or when the registry says its digest (Docker-Content-Digest)."""
        which = which or ref.ref
        url = f"{self.base}/v2/{ref.repository}/manifests/{which}"
        try:
            resp = self.auth.open("GET", url, ref.repository, {"Accept": ACCEPT})
            try:
                resp.read()
            finally:
                resp.close()
        except httpx.HTTPError as err:
            raise RegistryError(f"cannot reach the registry at {self.base} for {ref}: {err}") from err
        except RegistryAuthError as err:
            raise RegistryError(f'pulling image "{ref}": {err}', err.status) from err
        if resp.status_code == 404:
            codes = ", ".join(e.get("code", "?") for e in _errors(resp)) or "404"
            raise ImageNotFound(f'image "{ref}" not found: the registry at {self.base} answered {codes} '
                                f"({status_text(resp)})")
        if resp.status_code >= 400:
            raise RegistryError(f'pulling image "{ref}": the registry at {self.base} answered {status_text(resp)}',
                                resp.status_code)
        body = resp.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = which if which.startswith("sha256:") else resp.headers.get("Docker-Content-Digest")
        if expected and expected != digest:
            raise DigestMismatch(f"manifest of {ref}: content is {digest}, the registry said {expected}; refusing it")
        media = resp.headers.get("Content-Type", "").split(";")[0] or json.loads(body).get("mediaType", "")
        return body, media, digest

    def blob_source(self, repository: str, digest: str) -> tuple[str, dict[str, str]]:
        """Where this node may fetch the blob from, and with which headers: asked of the
        registry with a HEAD under this node's own credentials. The registry's yes is what
        entitles the node to the blob's pieces from its peers (sigma.p2p: the entitlement
        rule); a storage redirect gives its URL without our Authorization."""
        url = self.blob_url(repository, digest)
        resp = self.auth.open("HEAD", url, repository)
        resp.close()
        if resp.status_code >= 400:
            raise RegistryError(f"blob {digest} of {repository}: the registry at {self.base} answered "
                                f"{status_text(resp)}", resp.status_code)
        final = str(resp.url)
        if httpx.URL(final).netloc != httpx.URL(url).netloc:
            return final, {}
        auth = self.auth.cached(httpx.URL(url).netloc.decode(), pull_scope(repository))
        if auth is None and self.auth.credential is not None and "authorization" in resp.request.headers:
            auth = resp.request.headers["authorization"]  # a Basic registry
        return url, ({"Authorization": auth} if auth else {})

    def download(self, repository: str, digest: str, dest: str) -> None:
        try:
            resp = self.auth.open("GET", self.blob_url(repository, digest), repository)
        except RegistryAuthError as err:
            raise RegistryError(f"blob {digest} of {repository}: {err}") from err
        try:
            if resp.status_code >= 400:
                resp.read()
                raise RegistryError(f"blob {digest} of {repository}: the registry at {self.base} answered "
                                    f"{status_text(resp)}", resp.status_code)
            with open(dest, "wb") as f:
                for chunk in resp.iter_bytes(1 << 20):
                    f.write(chunk)
        finally:
            resp.close()


def host_platform() -> str:
    return _ARCH.get(platform.machine(), platform.machine())


_VARIANT = {"arm64": "v8", "arm": "v7"}  # what containerd assumes of a node that names none


def choose_platform(index: dict[str, Any], ref: Reference, arch: str | None = None) -> dict[str, Any]:
    """The index entry for linux/ARCH (the node's), the node's variant first (arm64/v8,
    arm/v7), then any variant of it; linux/amd64 when the node's is not offered."""
    entries = index.get("manifests") or []
    for want in dict.fromkeys([arch or host_platform(), "amd64"]):
        linux = [e for e in entries
                 if (e.get("platform") or {}).get("os", "linux") == "linux"
                 and (e.get("platform") or {}).get("architecture") == want]
        variant = _VARIANT.get(want)
        for entry in [e for e in linux if (e.get("platform") or {}).get("variant") in (variant, None)] + linux:
            return dict(entry)
    offered = [
        f"{(e.get('platform') or {}).get('os')}/{(e.get('platform') or {}).get('architecture')}" for e in entries
    ]
    raise ImageNotFound(f'image "{ref}" has no linux/{arch or host_platform()} manifest; it offers {offered}')


class RegistryPuller:
    """`puller(store, image, keyring=None) -> manifest digest`: pull one image into the store.

    The registry's endpoints are tried in order (its mirrors, then itself: a mirror that
    fails in any way passes the pull on), and on each the credentials the keyring holds for
    the image, most specific first, then none: the first that gets the manifest serves the
    whole pull. The last endpoint's error is the pull's."""

    def __init__(
        self,
        default_registry: str | None = None,
        blob_fetcher: BlobFetcher | None = None,
        plain_http: bool | None = None,
        arch: str | None = None,
        mirrors: dict[str, list[str]] | None = None,
        keyring: Keyring | None = None,
        auth: RegistryAuth | None = None,
    ) -> None:
        self.default_registry, self.blob_fetcher = default_registry, blob_fetcher
        self.plain_http, self.arch = plain_http, arch
        self.mirrors = mirrors or {}
        self.keyring = keyring or Keyring()  # the node's own credentials file
        self.auth = auth or RegistryAuth()  # one HTTP client and token cache for every pull
        self.sizes: dict[str, int] = {}  # manifest digest -> bytes of its config and layers

    def __call__(self, store: ImageStore, image: str, keyring: Keyring | None = None) -> str:
        ref = parse_reference(image, self.default_registry)
        keys = (keyring or Keyring()).extend(self.keyring)
        client, body, media, digest = self._manifest(ref, keys)
        manifest = json.loads(body)
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest:
            entry = choose_platform(manifest, ref, self.arch)
            body, media, digest = client.get_manifest(ref, entry["digest"])
            manifest = json.loads(body)
        if "config" not in manifest or "layers" not in manifest:
            raise RegistryError(f'image "{ref}": manifest {digest} ({media or "no media type"}) is not an image '
                                f"manifest (Docker schema 2 or OCI)")
        blobs = [manifest["config"], *manifest["layers"]]
        for blob in blobs:
            if not store.has_blob(blob["digest"]):
                self._fetch_blob(store, client, ref, blob)
        store.put_bytes(body, digest)
        store.set_ref(normalize(image), digest)
        store.touch(digest)
        self.sizes[digest] = sum(int(b.get("size") or 0) for b in blobs)
        return digest

    def _manifest(self, ref: Reference, keys: Keyring) -> tuple[RegistryClient, bytes, str, str]:
        bases = endpoints(ref.registry, self.mirrors, self.plain_http)
        last: Exception | None = None
        for i, base in enumerate(bases):
            upstream = i == len(bases) - 1
            host = httpx.URL(base).netloc.decode()
            # The image's registry is asked with the credentials for the image; a mirror with
            # those for the mirror's host (if any), then anonymously.
            creds: list[Credential | None] = [*keys.lookup(ref.registry if upstream else host, ref.repository), None]
            first: Exception | None = None  # the endpoint's answer to the most specific credential
            for cred in creds:
                client = RegistryClient(base, self.auth.with_credential(cred))
                try:
                    return (client, *client.get_manifest(ref))
                except RegistryError as err:
                    first = first or err
                    if err.status in (401, 403) and cred is not creds[-1]:
                        continue  # the registry refused these credentials: try the next
                    break
                except (ImageNotFound, DigestMismatch) as err:
                    first = first or err
                    break
            last = first
            if not upstream:
                log.info("mirror %s failed for %s (%s); trying the next endpoint", base, ref, first)
        assert last is not None
        raise last

    def _fetch_blob(self, store: ImageStore, client: RegistryClient, ref: Reference, blob: dict[str, Any]) -> None:
        digest, size = blob["digest"], int(blob["size"])
        if self.blob_fetcher is not None:
            # Straight to its final path: the fetcher checks the digest before it renames the
            # blob into place, and its peer keeps serving the pieces from there. Whatever
            # fails it (the P2P downloader falls back to the registry itself), the blob is
            # still fetched straight from the registry below: P2P never fails a pull. Peers
            # are asked only once the registry said yes to this node's own HEAD of the blob
            # (blob_source): a node never gets from its peers what it could not pull itself.
            try:
                url, headers = client.blob_source(ref.repository, digest)
                self.blob_fetcher(digest, size, url, store.blob_path(digest), headers)
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
    store: ImageStore,
    image: str,
    policy: str | None,
    puller: Callable[..., str] | None,
    keyring: Keyring | None = None,
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
        return puller(store, image) if keyring is None else puller(store, image, keyring)
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
