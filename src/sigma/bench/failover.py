"""Failover under load: kill -9 the leading master, time until the next successful bind.

`sigma bench failover [--masters 3 --rounds 3 --rate 20 --nodes 20]` starts a local etcd and
``--masters`` `sigma master` processes on it, fake Ready nodes with renewed Leases
(sigma.bench.fakecluster), and a steady pod-create load (``--rate`` pods/s) spread over all
masters' URLs. Each pod has a fixed name; a create that fails on the connection (its master
died) or with a 5xx is retried on another master under the same name, so a retry of a write
that did go through gets 409 AlreadyExists instead of creating the pod twice. Only a 201 is
an acknowledgement; the uid it returned is kept.

Each round: find the leader (the etcd leader key), kill -9 its process group, watch for the
new leader's term, and time from the kill to the first binding the pod watch shows at a
resourceVersion above that term (a bind made by the new leader; the watch itself resumes on
another master when its own dies). The killed master is restarted before the next round.

At the end every pod is listed:
- acknowledged_lost: acknowledged creates that are not there (or not with the uid acknowledged);
- duplicates: names listed twice, plus acknowledged pods replaced by another object of the
  same name (a different uid): the same logical pod created twice;
- double_bound: pods the watch saw bound to two different nodes.
Goal: failover_s (the worst round) <= 5, acknowledged_lost = 0, duplicates = 0.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from sigma.bench.fakecluster import (
    NAMESPACE,
    BindWatcher,
    LeaseRenewer,
    pod_object,
    pods_resource_version,
    setup,
)
from sigma.bench.masterproc import BenchMaster
from sigma.master.leader import LEASE_TTL_S, current_leader
from sigma.store.etcd import EtcdStore
from sigma.store.etcd_rpc import rev_out
from sigma.store.etcd_server import EtcdServer

console = Console(stderr=True)
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench failover", description=__doc__.split("\n")[0])
    p.add_argument("--masters", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=float, default=20.0, help="pod creates per second, over all masters")
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--writers", type=int, default=4, help="client threads sharing the rate")
    p.add_argument("--settle", type=float, default=3.0, help="seconds of steady load before each kill")
    p.add_argument("--timeout", type=float, default=60.0, help="give up on a round (or the final binds) after this")
    return p.parse_args(argv)


class CreateLoad:
    """``writers`` threads creating pods with fixed names at ``rate`` pods/s in total, each
    over all masters in turn, retrying a failed create on the next master."""

    def __init__(self, urls: list[str], rate: float, writers: int) -> None:
        self.urls, self.rate, self.writers = urls, rate, writers
        self.acked: dict[str, str] = {}  # name -> uid of the 201
        self.retried_existing: list[str] = []  # 409 on a retry of an unacknowledged create
        self.gave_up: list[str] = []
        self.transport_errors = 0
        self.server_errors = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._write, args=(i,), name=f"creates-{i}", daemon=True)
                         for i in range(writers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _write(self, index: int) -> None:
        period = self.writers / self.rate
        turn = index
        next_at = time.monotonic()
        with httpx.Client(timeout=10) as http:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                next_at += period
                turn = self._create(http, f"fo-{index}-{n:06d}", turn)
                time.sleep(max(0.0, next_at - time.monotonic()))

    def _create(self, http: httpx.Client, name: str, turn: int) -> int:
        """One logical create, retried on the next master until it is answered; returns the
        master to use next."""
        body = pod_object(name)
        deadline = time.monotonic() + 60
        retry = False
        while time.monotonic() < deadline and not self.stop.is_set():
            url = self.urls[turn % len(self.urls)]
            try:
                r = http.post(url + PODS, json=body)
            except httpx.TransportError:
                with self._lock:
                    self.transport_errors += 1
                retry, turn = True, turn + 1
                time.sleep(0.05)
                continue
            if r.status_code == 201:
                with self._lock:
                    self.acked[name] = r.json()["metadata"]["uid"]
                return turn + 1
            if r.status_code == 409 and retry:
                # The attempt that broke went through after all: it exists, but was never
                # acknowledged to us, so it does not count as acknowledged.
                with self._lock:
                    self.retried_existing.append(name)
                return turn + 1
            with self._lock:
                self.server_errors += 1
            retry, turn = True, turn + 1
            time.sleep(0.05)
        if not self.stop.is_set():  # (stopping mid-retry abandons the create: not a failure)
            with self._lock:
                self.gave_up.append(name)
        return turn


def _leader(store: EtcdStore, masters: list[BenchMaster], other_than: str | None,
            timeout: float) -> tuple[BenchMaster, int]:
    """The leading master and its term (the leader key's etcd create_revision)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = current_leader(store)
        except Exception:  # etcd busy: ask again
            found = None
        if found is not None and found["identity"] != other_than:
            term = found["term"]
            assert isinstance(term, int)
            return next(m for m in masters if m.url == found["identity"]), term
        time.sleep(0.02)
    raise RuntimeError(f"no new leader within {timeout}s")


def _kill9(master: BenchMaster) -> None:
    assert master.process is not None
    os.killpg(master.process.pid, signal.SIGKILL)  # no lease revocation: the worst case
    master.process.wait()


def _list_pods(urls: list[str]) -> list[dict[str, Any]]:
    for url in urls:
        try:
            r = httpx.get(url + PODS, timeout=60)
            if r.status_code == 200:
                items: list[dict[str, Any]] = r.json()["items"]
                return items
        except httpx.TransportError:
            continue
    raise RuntimeError("no master could list the pods")


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    rounds: list[float] = []
    takeovers: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sigma-bench-failover-") as tmp:
        root = Path(tmp)
        with EtcdServer(root / "etcd") as etcd:
            store = EtcdStore([etcd.endpoint])
            masters = []
            for i in range(args.masters):
                (root / f"m{i}").mkdir()
                masters.append(BenchMaster(root / f"m{i}", store=etcd.url))
            urls = [m.url for m in masters]
            renewer: LeaseRenewer | None = None
            watcher: BindWatcher | None = None
            load: CreateLoad | None = None
            try:
                for master in masters:
                    master.start()
                nodes = [f"fo-node-{i:03d}" for i in range(args.nodes)]
                setup(urls, nodes)
                renewer = LeaseRenewer(urls, nodes)
                renewer.start()
                watcher = BindWatcher(urls, pods_resource_version(urls), expected=10**9)
                watcher.start()
                load = CreateLoad(urls, args.rate, args.writers)
                load.start()
                console.print(f"{args.masters} masters on etcd, {args.nodes} nodes, {args.rate:g} creates/s")
                for round_ in range(args.rounds):
                    time.sleep(args.settle)
                    leader, term = _leader(store, masters, None, args.timeout)
                    _kill9(leader)
                    killed = time.time()
                    _, new_term = _leader(store, masters, leader.url, args.timeout)
                    takeovers.append(time.time() - killed)
                    # The new leader's writes have revisions above its leader key's.
                    deadline = time.monotonic() + args.timeout
                    while (seen := watcher.first_bind_after(rev_out(new_term))) is None:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"round {round_ + 1}: no bind by the new leader in {args.timeout}s")
                        time.sleep(0.02)
                    rounds.append(max(0.0, seen - killed))
                    console.print(f"round {round_ + 1}: killed {leader.url} (term {term}); new leader in "
                                  f"{takeovers[-1]:.2f}s, first bind after {rounds[-1]:.2f}s")
                    leader.start()
                load.finish()
                console.print(f"{len(load.acked)} creates acknowledged; waiting for their binds")
                deadline = time.monotonic() + args.timeout
                while set(load.acked) - set(watcher.bound_at) and time.monotonic() < deadline:
                    time.sleep(0.2)
                pods = _list_pods(urls)
            finally:
                if load is not None:
                    load.stop.set()
                if watcher is not None:
                    watcher.stop.set()
                if renewer is not None:
                    renewer.stop.set()
                for master in masters:
                    master.stop()
                store.close()

    assert load is not None and watcher is not None
    names = Counter(p["metadata"]["name"] for p in pods)
    uid_of = {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}
    lost = [n for n in load.acked if n not in uid_of]
    replaced = [n for n, uid in load.acked.items() if n in uid_of and uid_of[n] != uid]
    bound = {p["metadata"]["name"] for p in pods if p["spec"].get("nodeName")}
    unbound = [n for n in load.acked if n not in bound]
    return {"bench": "failover", "masters": args.masters,
            "failover_s": round(max(rounds), 3),
            "acknowledged_lost": len(lost),
            "duplicates": sum(c - 1 for c in names.values()) + len(replaced),
            "double_bound": len(watcher.rebound),
            "failover_rounds_s": [round(t, 3) for t in rounds],
            "failover_mean_s": round(statistics.mean(rounds), 3),
            "leader_takeover_s": [round(t, 3) for t in takeovers],
            "lease_ttl_s": LEASE_TTL_S,
            "acknowledged": len(load.acked), "retried_existing": len(load.retried_existing),
            "gave_up": len(load.gave_up), "unbound": len(unbound),
            "create_transport_errors": load.transport_errors, "create_server_errors": load.server_errors,
            "watch_reconnects": watcher.reconnects}
