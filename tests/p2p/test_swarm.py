"""P2P distribution on loopback: real peers, a real tracker, a real docker-registry whose
access log counts what reached it."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from sigma.agent.images import ImageStore
from sigma.agent.oci_registry import RegistryPuller
from sigma.p2p.download import Downloader, FetchReport, P2PError, TrackerClient, seed_blob
from sigma.p2p.peer import PeerServer
from sigma.p2p.ratelimit import TokenBucket
from sigma.p2p.tracker import TrackerState
from tests.agent.imagebuild import tar_bytes

from .conftest import LocalRegistry, needs_registry, push_image, push_raw_blob, sha

pytestmark = needs_registry
PIECE = 256 * 1024


def node(tracker_url: str, down: float = 0.0, up: float = 0.0) -> tuple[PeerServer, Downloader]:
    peer = PeerServer(upload_rate=up).start()
    return peer, Downloader(TrackerClient(tracker_url), peer, download=TokenBucket(down), piece_size=PIECE, poll=0.05)


def fetch_all(nodes: list[tuple[PeerServer, Downloader]], digest: str, size: int, url: str, tmp: Any) -> list[Any]:
    results: list[Any] = [None] * len(nodes)

    def run(i: int) -> None:
        try:
            results[i] = nodes[i][1].fetch(digest, size, url, str(tmp / f"blob{i}"))
        except Exception as err:  # reported by the assertion below
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(nodes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.e2e
def test_peers_share_a_blob_and_the_registry_serves_each_piece_once(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    data = os.urandom(16 * PIECE + 1234)  # 17 pieces, the last one short
    digest = push_raw_blob(registry, "big", data)
    url = f"{registry.base}/v2/big/blobs/{digest}"
    nodes = [node(tracker[0], down=4e6) for _ in range(6)]
    try:
        reports = fetch_all(nodes, digest, len(data), url, tmp_path)
    finally:
        for peer, _ in nodes:
            peer.stop()
    assert all(isinstance(r, FetchReport) for r in reports), reports
    for i in range(6):
        assert (tmp_path / f"blob{i}").read_bytes() == data
    assert sum(r.from_registry for r in reports) == 17  # every piece went to the registry once
    assert registry.blob_gets(digest) == 17  # ...as the registry itself saw it
    assert sum(r.from_peers for r in reports) == 5 * 17
    assert all(r.failures == [] for r in reports)


@pytest.mark.e2e
def test_a_partial_file_left_in_place_is_reused_but_none_of_its_bytes_trusted(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(6 * PIECE + 77)
    digest = push_raw_blob(registry, "reserved", data)
    partial = tmp_path / "b.partial"
    partial.write_bytes(b"\xaa" * len(data))  # reserved ahead (the benchmark's warm memory): garbage
    inode = partial.stat().st_ino
    allocated: list[int] = []
    real = os.posix_fallocate
    monkeypatch.setattr(os, "posix_fallocate", lambda fd, off, n: allocated.append(n) or real(fd, off, n))
    peer, downloader = node(tracker[0])
    try:
        report = downloader.fetch(digest, len(data), f"{registry.base}/v2/reserved/blobs/{digest}", str(tmp_path / "b"))
    finally:
        peer.stop()
    assert allocated == []  # kept in place, not truncated and allocated again
    assert (tmp_path / "b").stat().st_ino == inode
    assert (tmp_path / "b").read_bytes() == data  # every byte written over and verified
    assert report.from_registry == 7


@pytest.mark.e2e
def test_a_partial_file_of_another_size_is_started_afresh(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    data = os.urandom(3 * PIECE)
    digest = push_raw_blob(registry, "resized", data)
    (tmp_path / "b.partial").write_bytes(b"\xaa" * (len(data) + 10))
    peer, downloader = node(tracker[0])
    try:
        downloader.fetch(digest, len(data), f"{registry.base}/v2/resized/blobs/{digest}", str(tmp_path / "b"))
    finally:
        peer.stop()
    assert (tmp_path / "b").read_bytes() == data


@pytest.mark.e2e
def test_a_peer_joining_after_a_seed_never_touches_the_registry(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    data = os.urandom(5 * PIECE)
    digest = push_raw_blob(registry, "seeded", data)
    (tmp_path / "seed").write_bytes(data)
    seed, _ = node(tracker[0])
    late, downloader = node(tracker[0])
    try:
        assert seed_blob(TrackerClient(tracker[0]), seed, digest, str(tmp_path / "seed"), PIECE) == 5
        report = downloader.fetch(digest, len(data), f"{registry.base}/v2/seeded/blobs/{digest}", str(tmp_path / "b"))
    finally:
        seed.stop()
        late.stop()
    assert (report.from_peers, report.from_registry) == (5, 0)
    assert registry.blob_gets(digest) == 0


@pytest.mark.e2e
def test_a_peer_out_of_upload_slots_turns_askers_away_without_counting_a_fault(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    data = os.urandom(6 * PIECE)
    digest = push_raw_blob(registry, "slots", data)
    (tmp_path / "seed").write_bytes(data)
    seed = PeerServer(upload_rate=2e6, upload_slots=1).start()  # one piece at a time, 0.13 s each
    nodes = [node(tracker[0]) for _ in range(2)]
    try:
        seed_blob(TrackerClient(tracker[0]), seed, digest, str(tmp_path / "seed"), PIECE)
        reports = fetch_all(nodes, digest, len(data), f"{registry.base}/v2/slots/blobs/{digest}", tmp_path)
    finally:
        seed.stop()
        for peer, _ in nodes:
            peer.stop()
    assert all(isinstance(r, FetchReport) for r in reports), reports
    for i in range(2):
        assert (tmp_path / f"blob{i}").read_bytes() == data
    assert seed.busy_refusals > 0 and sum(r.busy_refusals for r in reports) == seed.busy_refusals
    assert all(r.failures == [] and r.from_registry == 0 for r in reports)  # a refusal is no fault


@pytest.mark.e2e
def test_a_dead_peer_mid_transfer_is_survived_and_reported(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    data = os.urandom(12 * PIECE)
    digest = push_raw_blob(registry, "dying", data)
    (tmp_path / "seed").write_bytes(data)
    slow, _ = node(tracker[0], up=400_000)  # about 0.6 s a piece: surely mid-piece when it dies
    healthy, _ = node(tracker[0])
    me, downloader = node(tracker[0])
    for s in (slow, healthy):
        seed_blob(TrackerClient(tracker[0]), s, digest, str(tmp_path / "seed"), PIECE)
    killer = threading.Timer(0.3, slow.kill)
    killer.start()
    try:
        report = downloader.fetch(digest, len(data), f"{registry.base}/v2/dying/blobs/{digest}", str(tmp_path / "b"))
    finally:
        killer.join()
        healthy.stop()
        me.stop()
    assert (tmp_path / "b").read_bytes() == data
    assert report.failures and {f["peer"] for f in report.failures} == {slow.url}
    assert all("transfer failed" in f["reason"] for f in report.failures)
    assert report.from_peers == 12 and report.from_registry == 0  # re-fetched from the healthy peer


@pytest.mark.e2e
def test_a_corrupted_piece_is_refused_and_fetched_elsewhere(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    data = os.urandom(8 * PIECE)
    digest = push_raw_blob(registry, "corrupt", data)
    (tmp_path / "seed").write_bytes(data)
    liar, _ = node(tracker[0])
    me, downloader = node(tracker[0])
    seed_blob(TrackerClient(tracker[0]), liar, digest, str(tmp_path / "seed"), PIECE)
    liar.corrupt = True  # its disk rotted after it announced
    try:
        report = downloader.fetch(digest, len(data), f"{registry.base}/v2/corrupt/blobs/{digest}", str(tmp_path / "b"))
    finally:
        liar.stop()
        me.stop()
    assert (tmp_path / "b").read_bytes() == data
    assert report.failures and all(f["peer"] == liar.url and "corrupt piece" in f["reason"] for f in report.failures)
    # The liar is excluded after its first bad piece; nobody else holds any: the registry.
    assert report.from_registry == 8 and report.from_peers == 0


@pytest.mark.e2e
def test_an_image_pull_goes_through_peers(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    layer = tar_bytes({"payload": os.urandom(3 * PIECE)})
    push_image(registry, "app", "1", [layer], {"Cmd": ["true"]})
    ref = f"{registry.host}/app:1"
    (a_peer, a), (b_peer, b) = node(tracker[0]), node(tracker[0])
    try:
        RegistryPuller(blob_fetcher=a.fetch)(ImageStore(str(tmp_path / "a")), ref)
        started = time.monotonic()
        store_b = ImageStore(str(tmp_path / "b"))
        RegistryPuller(blob_fetcher=b.fetch)(store_b, ref)
        assert time.monotonic() - started < 10
    finally:
        a_peer.stop()
        b_peer.stop()
    assert registry.blob_gets(sha(layer)) == 4  # 4 pieces, all fetched by the first node only
    store_b.make_rootfs(ref, str(tmp_path / "r"))
    assert (tmp_path / "r" / "payload").stat().st_size == 3 * PIECE


def test_the_upload_cap_holds(tmp_path: Any) -> None:
    bucket = TokenBucket(2e6, burst=64 * 1024)
    started = time.monotonic()
    for _ in range(16):
        bucket.take(64 * 1024)
    assert time.monotonic() - started == pytest.approx(15 * 64 * 1024 / 2e6, abs=0.15)


@pytest.mark.e2e
def test_a_blob_no_source_supplies_intact_is_never_left_under_its_name(
    registry: LocalRegistry, tracker: tuple[str, TrackerState], tmp_path: Any
) -> None:
    data = os.urandom(4 * PIECE)
    digest = sha(data)  # never pushed: the registry answers 404 for every piece
    (tmp_path / "seed").write_bytes(data)
    liar, _ = node(tracker[0])
    me, downloader = node(tracker[0])
    seed_blob(TrackerClient(tracker[0]), liar, digest, str(tmp_path / "seed"), PIECE)
    liar.corrupt = True
    try:
        # The swarm failed it, then the registry's whole blob too: the registry's answer is the error.
        with pytest.raises(P2PError, match="the registry answered 404"):
            downloader.fetch(digest, len(data), f"{registry.base}/v2/none/blobs/{digest}", str(tmp_path / "b"))
    finally:
        liar.stop()
        me.stop()
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()
    assert digest not in me.blobs  # and no longer offered to others
