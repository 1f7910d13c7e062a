"""An etcd watch never hangs on a silent etcd: paused with SIGSTOP, it ends with
StoreUnavailable within its idle timeout plus the probe's; a healthy but idle stream goes on
(progress notifications, or a silent reopen) without a gap or a duplicate."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from sigma.store.contract import StoreUnavailable, Watch
from sigma.store.etcd import EtcdStore
from sigma.store.etcd_server import EtcdServer, etcd_binary
from sigma.store.etcd_watch import PROBE_TIMEOUT_S

pytestmark = [pytest.mark.skipif(etcd_binary() is None, reason="etcd is not installed"), pytest.mark.e2e]

IDLE_S = 1.5


@pytest.fixture
def watching(etcd: EtcdServer) -> Iterator[tuple[EtcdStore, Watch]]:
    """A store with a short idle timeout and a watch on /k/ that has seen its first event."""
    store = EtcdStore([etcd.endpoint], watch_idle_timeout=IDLE_S)
    try:
        watch = store.watch("/k/", store.current_revision())
        store.create("/k/a", b"1")
        assert [e.kv.key for e in watch.wait(5)] == ["/k/a"]
        yield store, watch
    finally:
        if etcd.process is not None:
            os.killpg(etcd.process.pid, signal.SIGCONT)  # closing must not wait on a stopped etcd
        store.close()


def test_a_watch_on_a_stopped_etcd_fails_within_the_idle_timeout(etcd: EtcdServer,
                                                                   watching: tuple[EtcdStore, Watch]) -> None:
    _, watch = watching
    assert etcd.process is not None
    os.killpg(etcd.process.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    with pytest.raises(StoreUnavailable, match="relist or watch again") as failure:
        while time.monotonic() - stopped < 30:
            watch.wait(1.0)
    took = time.monotonic() - stopped
    # Idle timeout, then a probe (tried on every endpoint), with slack for a busy machine.
    assert took < IDLE_S + 2 * PROBE_TIMEOUT_S + 3, f"the watch hung for {took:.1f}s"
    assert "revision" in str(failure.value)


def test_an_idle_healthy_watch_outlives_its_idle_timeout_without_gap_or_duplicate(
        watching: tuple[EtcdStore, Watch]) -> None:
    store, watch = watching
    # Several idle timeouts with nothing to say: etcd's progress notifications come
    # every 5 s, so the watch must probe, find etcd alive and reopen, unseen.
    deadline = time.monotonic() + 3 * IDLE_S
    while time.monotonic() < deadline:
        assert watch.wait(0.5) == []
    store.create("/k/b", b"2")
    store.update("/k/a", b"3")
    seen = []
    end = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < end:
        seen += [(e.kv.key, e.kv.value) for e in watch.wait(0.5)]
    assert seen == [("/k/b", b"2"), ("/k/a", b"3")]
    assert not watch.closed
