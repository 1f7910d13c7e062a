"""Image pulls for the runc runtime, off the sync loop, and image GC under a disk budget.

    NodeRuntime._start ─► pulls.ready(image, imagePullPolicy)
                            True   start the container now
                            False  a pull is running in the background: try again next sync
                            raises ImagePullError: record a failed start with its reason
                                   (ErrImagePull, ErrImageNeverPull, InvalidImageName)

A pull can take minutes; doing it inside sync() would stall every other pod on the node,
so it runs on a worker thread and the pod shows ContainerCreating meanwhile. One worker:
pulls are serialized like kubelet's default (serializeImagePulls), which also keeps pulls
and GC from racing on the store's refs.json. A finished pull wakes the sync loop.

Blobs come from other agents through the master's P2P tracker when one is configured
(`start_pulls`), from the registry otherwise; each agent serves what it holds to the others
from its PeerServer for as long as it runs. On start it offers again the blobs already in its
image store (an agent restart must not make its images invisible to the others), and it keeps
its lease at the tracker alive with heartbeats (sigma.p2p.announce). Half-downloaded blobs
(`*.partial`, left by a pull the previous process died in) are removed, never offered.
The tracker knows the agent by its node credential (`master_http`): it serves node
identities only, and hands them the per-blob tokens its peers ask of each other. A P2P
failure of any kind (tracker refusing or down, a poisoned swarm) only sends the pull to
the registry (sigma.p2p.download, sigma.agent.oci_registry).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import httpx

from sigma.agent.images import ImageStore
from sigma.agent.oci_registry import ImagePullError, RegistryPuller, default_pull_policy, ensure_image
from sigma.agent.pull_credentials import BadCredentials, Keyring, keyring_from_file
from sigma.agent.statefile import read_json

log = logging.getLogger("sigma.agent.pulls")

DEFAULT_P2P_PORT = 10270


@dataclass
class ImageOptions:
    registry: str | None = None  # HOST:PORT for image references that name no registry (else docker.io)
    mirrors: dict[str, list[str]] = field(default_factory=dict)  # registry -> mirror endpoints, tried first
    credentials_file: str | None = None  # the node's docker config.json (pull_credentials)
    insecure_registry: bool = False  # plain HTTP to a registry that is not on loopback
    p2p: bool = True  # fetch blobs from other agents through the master's tracker
    p2p_port: int = DEFAULT_P2P_PORT  # where this agent serves pieces; 0 picks a free port
    p2p_upload_rate: float = 0.0  # bytes/s this agent uploads to peers; 0 = uncapped
    p2p_ttl: float = 30.0  # the tracker forgets this agent after this long without a heartbeat
    gc_budget: int = 0  # bytes the image store may use; 0 = never collect
    gc_interval: float = 300.0
    overlay: bool = True  # overlayfs rootfs for runc containers where it mounts, else a copy


Puller = Callable[..., str]  # (store, image[, keyring]) -> manifest digest
KeyringSource = Callable[[], Keyring]  # the pod's pull secrets, read when a pull starts


@dataclass(frozen=True)
class PullOutcome:
    """How the last pull of an image ended, for the agent's Pulled Event."""

    ok: bool
    seconds: float
    size: int  # bytes of the image's config and layers (0 when unknown)


class ImagePulls:
    def __init__(
        self,
        store: ImageStore,
        puller: Puller,
        gc_budget: int = 0,
        gc_interval: float = 300.0,
        on_done: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.puller = store, puller
        self.gc_budget, self.gc_interval = gc_budget, gc_interval
        self.on_done = on_done or (lambda: None)
        self.clock = clock
        self.on_close: list[Callable[[], None]] = []
        self.after_gc: list[Callable[[], None]] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="image-pull")
        self._pulls: dict[tuple[str, str], Future[str]] = {}
        self.outcomes: dict[str, PullOutcome] = {}  # image -> its last pull's end
        self._lock = threading.Lock()
        self._next_gc = clock() + gc_interval

    def ready(self, image: str, policy: str | None, keyring: KeyringSource | None = None) -> bool:
        """May a container of `image` start now? Starts a pull when the policy asks for one,
        with the credentials `keyring` gives (the pod's pull secrets) beside the node's.
        A failed pull is raised once; the next call (after the pod manager's back-off)
        pulls again."""
        key = (image, policy or default_pull_policy(image))
        with self._lock:
            pull = self._pulls.get(key)
            if pull is not None:
                if not pull.done():
                    return False
                del self._pulls[key]
                pull.result()  # raises the pull's ImagePullError
                return True
            if key[1] not in ("Always", "IfNotPresent") or (key[1] == "IfNotPresent" and self.store.has(image)):
                # No pull: present, or it raises ErrImageNeverPull / InvalidImagePullPolicy.
                ensure_image(self.store, image, key[1], None)
                return True
            self._pulls[key] = self._pool.submit(self._pull, image, key[1], keyring)
            return False

    def pulling(self) -> list[str]:
        with self._lock:
            return [image for image, _ in self._pulls]

    def _pull(self, image: str, policy: str, keyring: KeyringSource | None = None) -> str:
        started = time.monotonic()
        outcome = PullOutcome(False, 0.0, 0)
        try:
            keys = _read_keyring(image, keyring)
            digest = ensure_image(self.store, image, policy, self.puller, keys)
            outcome = PullOutcome(True, time.monotonic() - started, _image_size(self.puller, self.store, digest))
        except ImagePullError as err:
            log.warning("pulling %s failed: %s: %s", image, err.reason, err)
            raise
        except Exception as err:  # anything else a pull trips over is still the pull's failure
            log.warning("pulling %s failed", image, exc_info=True)
            raise ImagePullError("ErrImagePull", f'pulling image "{image}": {type(err).__name__}: {err}') from err
        finally:
            with self._lock:
                self.outcomes[image] = outcome
            self.on_done()
        log.info("pulled %s (%s) in %.1fs", image, digest[:19], outcome.seconds)
        return digest

    def outcome(self, image: str) -> PullOutcome | None:
        with self._lock:
            return self.outcomes.get(image)

    # -- garbage collection --------------------------------------------------------------
    def maybe_gc(self, in_use: Iterable[str]) -> None:
        """Every gc_interval, queue an LRU collection behind the pulls. `in_use`: images of
        the node's pods and containers; images being pulled are kept too."""
        if self.gc_budget <= 0 or self.clock() < self._next_gc:
            return
        self._next_gc = self.clock() + self.gc_interval
        keep = {*in_use, *self.pulling()}
        self._pool.submit(self._gc, keep)

    def _gc(self, keep: set[str]) -> None:
        try:
            removed = self.store.gc(self.gc_budget, keep)
        except (OSError, ValueError) as err:
            log.warning("image gc failed: %s", err)
            return
        if removed:
            log.info("image gc (budget %d bytes) removed %s", self.gc_budget, ", ".join(removed))
        for hook in self.after_gc:
            hook()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for hook in self.on_close:
            with contextlib.suppress(Exception):  # a tracker gone first must not stop the agent stopping
                hook()


def start_pulls(
    store: ImageStore,
    options: ImageOptions,
    master_url: str,
    listen_host: str,
    advertise: str,
    on_done: Callable[[], None] | None = None,
    master_http: httpx.Client | None = None,
) -> ImagePulls:
    """The agent's pulls: registry (plain HTTP when insecure), P2P through the master's
    tracker at MASTER/p2p when there is a master URL and P2P is on. `master_http` carries
    the agent's credentials and the master's CA (the tracker is behind the API's auth)."""
    plain_http = True if options.insecure_registry else None
    fetcher = None
    closers: list[Callable[[], None]] = []
    after_gc: list[Callable[[], None]] = []
    if options.p2p and master_url:
        from sigma.p2p.announce import Announcer
        from sigma.p2p.download import Downloader, TrackerClient
        from sigma.p2p.peer import PeerServer

        try:
            peer = PeerServer(listen_host, options.p2p_port, upload_rate=options.p2p_upload_rate, advertise=advertise)
        except OSError as err:  # the port is taken: still pull, straight from the registry
            log.warning("P2P is off: cannot serve pieces on %s:%d: %s", listen_host, options.p2p_port, err)
            return start_pulls(store, replace(options, p2p=False), master_url, listen_host, advertise, on_done)
        peer.start()
        tracker = TrackerClient(f"{master_url.rstrip('/')}/p2p", master_http)
        fetcher = Downloader(tracker, peer).fetch
        log.info("P2P image pulls through %s/p2p; serving pieces at %s", master_url, peer.url)

        def forget_collected() -> None:  # stop offering blobs the GC removed
            for digest in list(peer.blobs):
                if not store.has_blob(digest):
                    peer.drop(digest)

        after_gc.append(forget_collected)
        # Listed here, before any pull of this process can start a .partial of its own.
        stored = stored_blobs(store)
        announcer = Announcer(tracker, peer, lambda: stored, ttl=options.p2p_ttl).start()
        closers += [announcer.stop, lambda: tracker.leave(peer.url), peer.stop]
    node_keys = Keyring()
    if options.credentials_file:  # unreadable: pull without it (kubelet goes on too), and say so
        try:
            node_keys = keyring_from_file(options.credentials_file)
        except (OSError, BadCredentials) as err:
            log.warning("image credentials file %s is not used: %s", options.credentials_file, err)
    puller = RegistryPuller(options.registry, blob_fetcher=fetcher, plain_http=plain_http,
                            mirrors=options.mirrors, keyring=node_keys)
    pulls = ImagePulls(store, puller, options.gc_budget, options.gc_interval, on_done)
    pulls.on_close += closers
    pulls.after_gc += after_gc
    return pulls


def _read_keyring(image: str, source: KeyringSource | None) -> Keyring | None:
    """The pod's pull secrets; one that cannot be read leaves the pull to the others (as
    kubelet: "Unable to retrieve some image pull secrets; attempting to pull anyway")."""
    if source is None:
        return None
    try:
        return source()
    except Exception as err:
        log.warning("pull secrets for %s not read (%s: %s); pulling without them", image, type(err).__name__, err)
        return None


def _image_size(puller: Puller, store: ImageStore, digest: str) -> int:
    sizes = getattr(puller, "sizes", None)
    if isinstance(sizes, dict) and digest in sizes:
        return int(sizes[digest])
    try:
        manifest = read_json(store.blob_path(digest))
        return sum(int(b.get("size") or 0) for b in [manifest.get("config") or {}, *manifest.get("layers", [])])
    except (OSError, ValueError):
        return 0


_BLOB_NAME = re.compile(r"^[0-9a-f]{64}$")


def stored_blobs(store: ImageStore) -> list[tuple[str, str]]:
    """(digest, path) of the complete blobs in the store; the partial files of pulls that
    died with the previous agent process are removed: call it before any pull starts."""
    root = os.path.join(store.root, "blobs", "sha256")
    out = []
    for entry in os.scandir(root):
        if _BLOB_NAME.match(entry.name):
            out.append((f"sha256:{entry.name}", entry.path))
        elif entry.name.endswith(".partial"):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
    return out
