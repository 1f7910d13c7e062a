"""Leader takeover time: kill -9 the leading master, time until another master leads.

Starts a local etcd and ``--masters`` `sigma master` processes on it, then ``--rounds``
times: find the leader (the etcd leader key), kill -9 it, poll the key every 20 ms until a
different master holds it, restart the killed master. The takeover time is bounded by the
leader lease TTL (sigma.master.leader.LEASE_TTL_S) plus etcd's lease-expiry tick (~0.5 s).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from sigma.bench.masterproc import BenchMaster
from sigma.master.leader import LEASE_TTL_S, current_leader
from sigma.store.etcd import EtcdStore
from sigma.store.etcd_server import EtcdServer

console = Console(stderr=True)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench failover", description=__doc__.split("\n")[0])
    p.add_argument("--masters", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    return p.parse_args(argv)


def _leader(store: EtcdStore, masters: list[BenchMaster], other_than: str | None, timeout: float) -> BenchMaster:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = current_leader(store)
        if found is not None and found["identity"] != other_than:
            return next(m for m in masters if m.url == found["identity"])
        time.sleep(0.02)
    raise RuntimeError(f"no new leader within {timeout}s")


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    takeovers: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sigma-bench-failover-") as tmp:
        root = Path(tmp)
        with EtcdServer(root / "etcd") as etcd:
            store = EtcdStore([etcd.endpoint])
            masters = []
            for i in range(args.masters):
                (root / f"m{i}").mkdir()
                masters.append(BenchMaster(root / f"m{i}", store=etcd.url))
            try:
                for master in masters:
                    master.start()
                for round_ in range(args.rounds):
                    leader = _leader(store, masters, None, 15)
                    assert leader.process is not None
                    leader.process.kill()  # SIGKILL: no lease revocation, the worst case
                    killed = time.monotonic()
                    leader.process.wait()
                    _leader(store, masters, leader.url, 15)
                    takeovers.append(time.monotonic() - killed)
                    console.print(f"round {round_ + 1}: takeover in {takeovers[-1]:.2f}s")
                    leader.start()
            finally:
                for master in masters:
                    master.stop()
                store.close()
    return {"bench": "failover", "masters": args.masters, "lease_ttl_s": LEASE_TTL_S,
            "takeover_s": [round(t, 3) for t in takeovers],
            "takeover_mean_s": round(statistics.mean(takeovers), 3), "takeover_max_s": round(max(takeovers), 3)}
