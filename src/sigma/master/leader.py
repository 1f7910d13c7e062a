"""Leader election between masters sharing an etcd store.

Every master serves the API; exactly one, the leader, runs the controllers and schedulers.
The leader holds ``LEADER_KEY``, created in a Txn (only if absent) and attached to an etcd
lease with a short TTL that the leader keeps alive every second. When the leader dies, etcd
expires the lease within TTL and deletes the key; followers watch the key and campaign as
soon as it goes. A leader that shuts down cleanly revokes its lease: hand-over is at once.

Fencing: a term of leadership is identified by the leader key's create_revision (a new
campaign creates a new key, so a new revision). The controllers write through
``EtcdStore.fenced(LEADER_KEY, term)``: every write compares that revision in the same Txn,
so once the term is over (the lease expired while this process was paused, say) its writes
are refused by etcd itself, whatever this process still believes. The elector notices on its
next keep-alive and stops the controllers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sigma.store import etcd_pb as pb
from sigma.store.contract import Store, StoreError
from sigma.store.etcd import EtcdStore
from sigma.store.etcd_rpc import LEASE_GRANT, LEASE_KEEPALIVE, LEASE_REVOKE, RANGE, TXN

log = logging.getLogger("sigma.master.leader")

LEADER_KEY = "/sigma/leader"
LEASE_TTL_S = 3
KEEPALIVE_EVERY_S = 1.0


class Elector:
    def __init__(self, store: EtcdStore, identity: str, on_elected: Callable[[Store], None],
                 on_deposed: Callable[[], None], ttl_s: int = LEASE_TTL_S,
                 keepalive_every_s: float = KEEPALIVE_EVERY_S) -> None:
        self.store = store
        self.identity = identity
        self.on_elected = on_elected  # called with the fenced store of the new term
        self.on_deposed = on_deposed
        self.ttl_s = ttl_s
        self.keepalive_every_s = keepalive_every_s
        self.term = 0  # the leader key's create_revision while leading, else 0
        self._lease = 0
        self._last_renewed = 0.0  # monotonic time the last successful keep-alive was sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-elector", daemon=True)

    @property
    def leading(self) -> bool:
        return self.term != 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Step down (revoking the lease hands leadership over at once) and stop campaigning."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self.leading:
            self._step_down("shutting down")
        if self._lease:
            try:
                self.revoke_lease()
            except StoreError as err:
                log.info("could not revoke the leader lease (it expires in %ds): %s", self.ttl_s, err)
            self._lease = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.leading:
                    self._keep_alive()
                    self._stop.wait(self.keepalive_every_s)
                elif not self._campaign():
                    self._wait_for_vacancy()
            except StoreError as err:
                log.warning("leader election: %s", err)
                self._stop.wait(0.5)

    def revoke_lease(self) -> None:
        """Revoke the lease now: etcd deletes the leader key with it, as when it expires."""
        self.store.rpc.one(LEASE_REVOKE, pb.LeaseRevokeRequest(ID=self._lease), pb.LeaseRevokeResponse)

    # -- campaign ------------------------------------------------------------------
    def _campaign(self) -> bool:
        if self._lease == 0:
            granted = self.store.rpc.one(LEASE_GRANT, pb.LeaseGrantRequest(TTL=self.ttl_s), pb.LeaseGrantResponse)
            if granted.error:
                raise StoreError(f"etcd granted no lease: {granted.error}")
            self._lease = granted.ID
        key = LEADER_KEY.encode()
        value = json.dumps({"identity": self.identity, "pid": os.getpid()}).encode()
        txn = pb.TxnRequest()
        txn.compare.add(key=key, target=pb.CREATE, result=pb.EQUAL, create_revision=0)
        txn.success.add().request_put.MergeFrom(pb.PutRequest(key=key, value=value, lease=self._lease))
        txn.failure.add().request_range.key = key
        answer = self.store.rpc.one(TXN, txn, pb.TxnResponse)
        if not answer.succeeded:
            return False
        self.term = answer.header.revision
        self._last_renewed = time.monotonic()
        log.info("%s is the leader (term %d)", self.identity, self.term)
        self.on_elected(self.store.fenced(LEADER_KEY, self.term))
        return True

    def _wait_for_vacancy(self) -> None:
        """Until the leader key is deleted (watch), re-checking at least every second in
        case a watch event was missed; the lease we hold meanwhile is kept alive."""
        watch = self.store.watch(LEADER_KEY, self.store.current_revision())
        try:
            while not self._stop.is_set():
                if self._lease:
                    self._renew()
                if self._vacant() or any(e.type == "DELETE" for e in watch.wait(timeout=self.keepalive_every_s)):
                    return
        finally:
            watch.close()

    def _vacant(self) -> bool:
        return _leader_kv(self.store) is None

    # -- holding the lease ---------------------------------------------------------
    def _renew(self) -> bool:
        """One keep-alive; False when the lease is gone (expired or revoked)."""
        sent = time.monotonic()
        # LeaseKeepAlive is a stream; one request with our side then closed is one renewal.
        answer = self.store.rpc.one(LEASE_KEEPALIVE, pb.LeaseKeepAliveRequest(ID=self._lease),
                                    pb.LeaseKeepAliveResponse, idempotent=True)
        if answer.TTL <= 0:
            self._lease = 0
            return False
        self._last_renewed = sent
        return True

    def _keep_alive(self) -> None:
        try:
            if not self._renew():
                self._step_down("the leader lease expired")
        except StoreError as err:
            # etcd's lease outlives our last successful keep-alive by at least TTL: step down
            # before that, so two masters never both believe they lead. Fencing covers the rest.
            if time.monotonic() - self._last_renewed > self.ttl_s - self.keepalive_every_s:
                self._step_down(f"etcd unreachable ({err})")

    def _step_down(self, why: str) -> None:
        log.warning("%s stepped down as leader (term %d): %s", self.identity, self.term, why)
        self.term = 0
        self.on_deposed()


def current_leader(store: EtcdStore) -> dict[str, object] | None:
    """The leader key's value (identity, pid) and its term, or None when there is none."""
    kv = _leader_kv(store)
    if kv is None:
        return None
    leader: dict[str, object] = json.loads(kv.value)
    leader["term"] = kv.create_revision
    return leader


def _leader_kv(store: EtcdStore) -> Any:
    """The leader key as etcd has it (etcd's own revisions: the term), or None."""
    kvs = store.rpc.one(RANGE, pb.RangeRequest(key=LEADER_KEY.encode()), pb.RangeResponse, idempotent=True).kvs
    return kvs[0] if kvs else None
