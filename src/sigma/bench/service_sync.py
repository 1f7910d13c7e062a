"""`sigma bench service-sync [--services 5000] [--endpoints 10] [--changes 100]`: how long the
service proxy takes to program nftables, in a network namespace made for the run.

- sync_5000_services_s: the first sync (build every fragment, render, one `nft -f` writing
  the whole table) for --services Services of --endpoints ready endpoints each (the key keeps
  its name at any size; "services" says the size). Goal: <= 2 s.
- incremental_update_p99_ms: --changes syncs, each after one endpoint of one random Service
  flipped readiness (a partial update: a few map elements, no rule). Goal: <= 100 ms.
- full_rewrite_one_change_s: one change written as a whole table instead, for comparison
  (why the proxy does partial updates).

The proxy talks to nftables in-process through libnftables, as the agent does;
``--nft-program`` runs the ``nft`` program for each sync instead ("nft" in the line says which).
"""

from __future__ import annotations

import argparse
import random
import secrets
import subprocess
import sys
import threading
import time
from typing import Any

from sigma.agent.svcproxy.libnft import LibNft
from sigma.agent.svcproxy.nft import Nft, NftError
from sigma.agent.svcproxy.proxy import ServiceProxy
from sigma.agent.svcproxy.rules import NodeConfig, render_full


class _Objects:
    """The cache's read side over objects made here."""

    def __init__(self, services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> None:
        self.services, self.slices = services, slices
        self.synced = threading.Event()
        self.synced.set()

    def subscribe(self) -> threading.Event:
        return threading.Event()

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return self.services, self.slices


def _pod_ip(n: int) -> str:
    return f"10.{64 + n // 65024}.{(n % 65024) // 254}.{n % 254 + 1}"


def make_objects(services: int, endpoints: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    svcs, slices = [], []
    for i in range(services):
        name = f"svc-{i}"
        svcs.append({"metadata": {"name": name, "namespace": "bench", "resourceVersion": "1"},
                     "spec": {"clusterIP": f"10.{96 + i // 65024}.{(i % 65024) // 254}.{i % 254 + 1}",
                              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        slices.append({"metadata": {"name": f"{name}-a", "namespace": "bench", "resourceVersion": "1",
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                       "endpoints": [{"addresses": [_pod_ip(i * endpoints + j)], "conditions": {"ready": True}}
                                     for j in range(endpoints)]})
    return svcs, slices


def run(argv: list[str]) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="sigma bench service-sync")
    p.add_argument("--services", type=int, default=5000)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("--changes", type=int, default=100)
    p.add_argument("--nft-program", action="store_true", help="run the nft program for each sync")
    args = p.parse_args(argv)
    netns = f"sigma-bench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
    nft: Nft | LibNft | None = None
    try:
        if not args.nft_program:
            try:
                nft = LibNft(f"/var/run/netns/{netns}")
            except NftError as err:
                print(f"libnftables unusable ({err}): running the nft program", file=sys.stderr)
        if nft is None:
            nft = Nft(["nsenter", f"--net=/var/run/netns/{netns}", "--"], timeout_s=600)
        return _measure(args, nft)
    finally:
        if isinstance(nft, LibNft):
            nft.close()
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def _measure(args: argparse.Namespace, nft: Nft | LibNft) -> dict[str, Any]:
    services, slices = make_objects(args.services, args.endpoints)
    proxy = ServiceProxy(_Objects(services, slices), NodeConfig("10.64.0.0/10"), nft)
    t0 = time.perf_counter()
    first = proxy.sync()
    full_s = time.perf_counter() - t0
    print(f"full sync of {args.services} services: {full_s:.2f}s ({first.script_bytes} bytes)", file=sys.stderr)
    rng = random.Random(1)
    times = []
    for n in range(args.changes):
        i = rng.randrange(args.services)
        ep = rng.randrange(args.endpoints)
        old = slices[i]
        eps = [dict(e) for e in old["endpoints"]]
        eps[ep] = {**eps[ep], "conditions": {"ready": not eps[ep]["conditions"]["ready"]}}
        slices[i] = {**old, "metadata": {**old["metadata"], "resourceVersion": str(n + 2)}, "endpoints": eps}
        t = time.perf_counter()
        stats = proxy.sync()
        times.append(time.perf_counter() - t)
        if stats.full:
            print("a change was written as a full table", file=sys.stderr)
    times.sort()
    p99 = times[min(len(times) - 1, int(0.99 * len(times)))] if times else 0.0
    t = time.perf_counter()
    nft.apply(render_full(proxy.ruleset()))
    rewrite_s = time.perf_counter() - t
    return {"bench": "service-sync", "nft": "libnftables" if isinstance(nft, LibNft) else "program",
            "services": args.services, "endpoints_per_service": args.endpoints,
            "changes": args.changes, "sync_5000_services_s": round(full_s, 3),
            "incremental_update_p50_ms": round(1000 * times[len(times) // 2], 2) if times else 0.0,
            "incremental_update_p99_ms": round(1000 * p99, 2), "full_rewrite_one_change_s": round(rewrite_s, 3),
            "goals": {"sync_5000_services_s": 2.0, "incremental_update_p99_ms": 100.0}}
