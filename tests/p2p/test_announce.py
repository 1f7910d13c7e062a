"""A peer stays known to the tracker: an agent offers its image store's blobs again when it
starts, heartbeats keep its lease, a tracker that lost everything hears it all again, and a
peer that went silent is dropped. Real tracker over HTTP, real PeerServers, a real ImageStore."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sigma.agent.images import ImageStore
from sigma.agent.pulls import ImageOptions, start_pulls
from sigma.p2p.download import Downloader, TrackerClient
from sigma.p2p.peer import PeerServer
from sigma.p2p.tracker import TrackerState

from .conftest import sha

MIB = 1 << 20
D = "sha256:" + "cd" * 32


def wait_until(what: str, check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not {what} after {timeout}s"
        time.sleep(0.05)


def holds_all(state: TrackerState, digest: str, pieces: int) -> bool:
    blob = state.blobs.get(digest)
    return blob is not None and any(len(s) == pieces for s in blob.holders.values())


def stored_blob(tmp_path: Path, size: int) -> tuple[ImageStore, str, bytes]:
    """A store as a previous agent process left it: one complete blob, one partial pull."""
    store = ImageStore(str(tmp_path / "store"))
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    digest = store.add_blob(str(tmp_path / "src"), sha(data))
    Path(store.blob_path(D) + ".partial").write_bytes(b"half a blob")
    return store, digest, data


def test_a_restarted_agent_offers_its_stored_blobs_and_drops_partial_ones(
    tracker: tuple[str, TrackerState], tmp_path: Path
) -> None:
    url, state = tracker
    store, digest, data = stored_blob(tmp_path, 9 * MIB)  # 3 pieces of 4 MiB
    pulls = start_pulls(store, ImageOptions(p2p_port=0), url.removesuffix("/p2p"), "127.0.0.1", "127.0.0.1")
    newcomer = PeerServer().start()
    try:
        wait_until("announced", lambda: holds_all(state, digest, 3))
        assert not os.path.exists(store.blob_path(D) + ".partial")  # removed, never offered
        assert D not in state.blobs
        # The registry is unreachable: the newcomer can only get the blob from the agent.
        report = Downloader(TrackerClient(url), newcomer).fetch(
            digest, len(data), f"http://127.0.0.1:9/v2/x/blobs/{digest}", str(tmp_path / "copy")
        )
    finally:
        pulls.close()
        newcomer.stop()
    assert (report.from_peers, report.from_registry) == (3, 0)
    assert (tmp_path / "copy").read_bytes() == data
    assert list(state.blobs[digest].holders) == [newcomer.url]  # the agent left when it closed


def test_after_the_tracker_lost_its_state_the_agent_announces_again(
    tracker: tuple[str, TrackerState], tmp_path: Path
) -> None:
    url, state = tracker
    store, digest, _ = stored_blob(tmp_path, 5 * MIB)
    options = ImageOptions(p2p_port=0, p2p_ttl=1.5)  # a heartbeat every 0.5 s
    pulls = start_pulls(store, options, url.removesuffix("/p2p"), "127.0.0.1", "127.0.0.1")
    try:
        wait_until("announced", lambda: holds_all(state, digest, 2))
        state.blobs.clear()  # what a restarted master's tracker knows
        state.peers.clear()
        wait_until("announced again", lambda: holds_all(state, digest, 2), timeout=5)
        time.sleep(2)  # longer than the TTL: the heartbeats keep the agent listed
        assert holds_all(state, digest, 2)
    finally:
        pulls.close()


def test_a_peer_that_went_silent_leaves_the_view_when_its_ttl_runs_out(tracker: tuple[str, TrackerState]) -> None:
    url, _ = tracker
    client = TrackerClient(url)
    client.register(D, 100, 10)
    client.announce(D, "http://crashed:1", [0], {0: "0" * 64}, ttl=1.0)
    assert client.view(D, "http://other:1")["holders"] == {"http://crashed:1": [0]}
    time.sleep(1.3)
    assert client.view(D, "http://other:1")["holders"] == {}
