"""Leader election and fencing (sigma.master.leader) against a real etcd, in one process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.master.leader import LEADER_KEY, Elector, current_leader
from sigma.store.contract import Store
from sigma.store.etcd import EtcdStore, Fenced
from sigma.store.etcd_server import EtcdServer, etcd_binary

pytestmark = pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed")


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    with EtcdServer(tmp_path / "etcd") as server:
        yield server


class Candidate:
    """An elector with its own store, recording what it was told."""

    def __init__(self, server: EtcdServer, name: str, ttl_s: int = 2) -> None:
        self.store = EtcdStore([server.endpoint])
        self.fenced: Store | None = None
        self.deposed = threading.Event()
        self.elected = threading.Event()
        self.elector = Elector(self.store, name, self._on_elected, self.deposed.set, ttl_s=ttl_s,
                               keepalive_every_s=0.5)

    def _on_elected(self, fenced: Store) -> None:
        self.fenced = fenced
        self.elected.set()

    def close(self) -> None:
        self.elector.stop()
        self.store.close()


@pytest.fixture
def candidates(etcd: EtcdServer) -> Iterator[list[Candidate]]:
    made = [Candidate(etcd, f"master-{i}") for i in range(3)]
    yield made
    for candidate in made:
        candidate.close()


def wait_for_leader(candidates: list[Candidate], timeout: float = 10.0) -> Candidate:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [c for c in candidates if c.elector.leading]
        if leaders:
            assert len(leaders) == 1, [c.elector.identity for c in leaders]
            return leaders[0]
        time.sleep(0.02)
    raise AssertionError("no leader elected")


@pytest.mark.e2e
def test_exactly_one_of_several_candidates_leads(candidates: list[Candidate]) -> None:
    for candidate in candidates:
        candidate.elector.start()
    leader = wait_for_leader(candidates)
    time.sleep(1.5)  # several keep-alive rounds: still one leader, the same one
    assert [c for c in candidates if c.elector.leading] == [leader]
    found = current_leader(leader.store)
    assert found is not None and found["identity"] == leader.elector.identity


@pytest.mark.e2e
def test_a_leader_that_stops_hands_over_at_once(candidates: list[Candidate]) -> None:
    for candidate in candidates:
        candidate.elector.start()
    leader = wait_for_leader(candidates)
    stopped = time.monotonic()
    leader.elector.stop()  # revokes the lease
    rest = [c for c in candidates if c is not leader]
    successor = wait_for_leader(rest)
    assert time.monotonic() - stopped < 2.0
    assert successor.fenced is not None


@pytest.mark.e2e
def test_fenced_writes_of_a_deposed_leader_are_refused(candidates: list[Candidate]) -> None:
    first, second, _ = candidates
    first.elector.start()
    assert first.elected.wait(10)
    assert first.fenced is not None
    first.fenced.create("/registry/x/a", b"written while leading")

    # The lease ends behind the leader's back (as when the process is paused past the TTL):
    # etcd deletes the key, another master wins, and the old term's writes must fail.
    first.elector.revoke_lease()
    second.elector.start()
    assert second.elected.wait(10)
    with pytest.raises(Fenced):
        first.fenced.create("/registry/x/b", b"stale")
    with pytest.raises(Fenced):
        first.fenced.update("/registry/x/a", b"stale")
    with pytest.raises(Fenced):
        first.fenced.delete("/registry/x/a")
    assert first.store.get("/registry/x/b") is None
    # The new leader's fenced writes go through; unfenced (API) writes never needed a leader.
    assert second.fenced is not None
    second.fenced.update("/registry/x/a", b"new term")
    first.store.create("/registry/x/c", b"from a client")
    # The old leader notices at its next keep-alive and stops its controllers.
    assert first.deposed.wait(5)
    assert not first.elector.leading


@pytest.mark.e2e
def test_a_crashed_leader_is_replaced_once_its_lease_expires(candidates: list[Candidate]) -> None:
    first, second, _ = candidates
    first.elector.start()
    assert first.elected.wait(10)
    second.elector.start()
    time.sleep(0.5)
    assert not second.elector.leading
    # "Crash": the elector thread stops keeping the lease alive and never revokes it.
    first.elector._stop.set()
    first.elector._thread.join()
    first.elector._lease = 0
    crashed = time.monotonic()
    assert second.elected.wait(10)
    takeover = time.monotonic() - crashed
    assert takeover <= 5.0, takeover  # TTL 2 s here, plus etcd's lease expiry check
    assert current_leader(second.store) is not None


def test_the_leader_key_lives_outside_the_registry() -> None:
    assert not LEADER_KEY.startswith("/registry/")
