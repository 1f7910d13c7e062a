"""API benchmark: `sigma bench api [--pods 5000 --nodes 100 --procs 4 --threads 4]
[--store sqlite|etcd --masters N] [--agents] [--compare]`.

Starts real `sigma master` processes (SQLite: one master on a temporary file; etcd: a local
etcd-server and ``--masters`` masters on it, the clients spread over them), registers fake
Ready nodes (sigma.bench.fakecluster), then creates pods over HTTP from several client
processes (threads inside each, one keep-alive connection per thread, the connections spread
over the masters one by one; a process's threads drain one queue of pods, so a master that
answers faster takes more of them) while a watch on the pods records when each one is bound
by sigma-scheduler.

With ``--agents``, one lightweight agent per node (asyncio coroutines in one process,
sigma.bench.agents) watches the pods bound to its node over a real HTTP watch, reports each
one Running with a status PATCH and renews its node's Lease, as a real agent does; without
it a thread renews the Leases and nobody reports status (the master's load is then the
creates and the bindings only, comparable with earlier runs).

- create_to_bound_per_s: pods / (first create sent -> last binding seen on the watch);
- api_p50_s / api_p99_s: latency of the create calls as the clients saw them;
- with --agents: create_to_running_per_s (first create -> last Running acknowledged) and
  bound_to_running_p50_s / _p99_s (an agent saw its pod bound -> its status was written).

``--compare`` runs the same load on SQLite and then on etcd and prints both side by side:
{"bench": "api", "pods": N, "sqlite": {...}, "etcd": {...}}.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from sigma.bench.agents import agents_process
from sigma.bench.fakecluster import (
    MAX_PODS_PER_NODE,
    NAMESPACE,
    BindWatcher,
    LeaseRenewer,
    pod_object,
    pods_resource_version,
    quantile,
    setup,
)
from sigma.bench.masterproc import BenchMaster
from sigma.bench.posting import Poster
from sigma.store.etcd_server import EtcdServer


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench api", description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--procs", type=int, default=4, help="client processes")
    p.add_argument("--threads", type=int, default=4, help="client threads per process")
    p.add_argument("--store", choices=("sqlite", "etcd"), default="sqlite")
    p.add_argument("--masters", type=int, default=None,
                   help="masters sharing the store (etcd only; default 3 on etcd, 1 on SQLite)")
    p.add_argument("--agents", action="store_true", help="one asyncio agent per node reports its pods Running")
    p.add_argument("--compare", action="store_true", help="run on SQLite, then on etcd; both in one result")
    p.add_argument("--timeout", type=float, default=300.0, help="give up waiting for bindings after this")
    return p.parse_args(argv)


def client_process(urls: list[str], names: list[str], threads: int, start_at: float,
                   results: multiprocessing.Queue[tuple[float, list[float], int, dict[str, int]]]) -> None:
    """One client process: `threads` keep-alive clients, thread i talking to master
    ``urls[i % len(urls)]``, take the next of `names` to create as soon as their last create
    returned (a worker pool draining one queue, as a controller creating many pods would):
    a master that answers faster takes more of them. Reports (first send time, latencies,
    errors, creates sent to each master)."""
    latencies: list[float] = []
    first: list[float] = []
    errors = [0]
    by_master: dict[str, int] = dict.fromkeys(urls, 0)
    lock = threading.Lock()
    # Bodies encoded up front: the load generator shares the machine's cores with the
    # masters, so it must cost as little as it can (see posting.py).
    bodies = iter([orjson.dumps(pod_object(name)) for name in names])

    def work(url: str) -> None:
        mine: list[float] = []
        failed = 0
        parsed = urlsplit(url)
        conn = Poster(parsed.hostname or "127.0.0.1", parsed.port or 80, f"/api/v1/namespaces/{NAMESPACE}/pods")
        try:
            time.sleep(max(0.0, start_at - time.time()))
            first_send = time.time()
            while True:
                with lock:
                    body = next(bodies, None)
                if body is None:
                    break
                t = time.perf_counter()
                status = conn.post(conn.request(body))
                mine.append(time.perf_counter() - t)
                failed += status != 201
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)
            first.append(first_send)
            errors[0] += failed
            by_master[url] += len(mine)

    workers = [threading.Thread(target=work, args=(urls[i % len(urls)],)) for i in range(min(threads, len(names)))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put((min(first), latencies, errors[0], by_master))


def run_once(args: argparse.Namespace, store: str) -> dict[str, Any]:
    if args.pods > args.nodes * MAX_PODS_PER_NODE:  # the rest would wait unschedulable until --timeout
        raise SystemExit(f"--pods {args.pods} needs at least {-(-args.pods // MAX_PODS_PER_NODE)} nodes "
                         f"({MAX_PODS_PER_NODE} pods each)")
    masters_n = 1 if store == "sqlite" else (args.masters or 3)
    node_names = [f"bench-node-{i:04d}" for i in range(args.nodes)]
    pod_names = [f"pod-{i:06d}" for i in range(args.pods)]
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="sigma-bench-api-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        if store == "etcd":
            etcd = stack.enter_context(EtcdServer(root / "etcd"))
            masters = []
            for i in range(masters_n):
                (root / f"m{i}").mkdir()
                masters.append(stack.enter_context(BenchMaster(root / f"m{i}", store=etcd.url)))
        else:
            masters = [stack.enter_context(BenchMaster(root))]
        urls = [m.url for m in masters]
        setup(urls, node_names)
        version = pods_resource_version(urls)
        renewer: LeaseRenewer | None = None
        agent_results: multiprocessing.Queue[dict[str, Any]] = ctx.Queue()
        agents = None
        if args.agents:
            agents = ctx.Process(target=agents_process, args=(node_names, urls, version, args.pods,
                                                              args.timeout, agent_results), daemon=True)
            agents.start()
        else:
            renewer = LeaseRenewer(urls, node_names)
            renewer.start()
        watcher = BindWatcher(urls, version, args.pods)
        watcher.start()

        results: multiprocessing.Queue[tuple[float, list[float], int, dict[str, int]]] = ctx.Queue()
        start_at = time.time() + 2.0 + 0.2 * args.procs  # every process is up and connected by then
        # Connections spread over the masters one by one, as a round-robin load balancer
        # would: process i's thread t is client i * threads + t.
        procs = [ctx.Process(target=client_process,
                             args=(_rotated(urls, i * args.threads), pod_names[i::args.procs], args.threads,
                                   start_at, results), daemon=True)
                 for i in range(args.procs)]
        for p in procs:
            p.start()
        print(f"{store}: creating {args.pods} pods from {args.procs}x{args.threads} clients on {masters_n} "
              f"master(s), {args.nodes} nodes{' with agents' if args.agents else ''}", file=sys.stderr)
        reports = [results.get(timeout=args.timeout) for _ in procs]
        for p in procs:
            p.join()
        created_by = time.time()
        watcher.done.wait(args.timeout)
        watcher.stop.set()
        agent_stats: dict[str, Any] = {}
        if agents is not None:
            agent_stats = agent_results.get(timeout=args.timeout + 30)
            agents.join()
        if renewer is not None:
            renewer.stop.set()

    first_send = min(r[0] for r in reports)
    latencies = [x for r in reports for x in r[1]]
    last_bound = max(watcher.bound_at.values(), default=created_by)
    result: dict[str, Any] = {
        "bench": "api", "pods": args.pods, "store": store, "masters": masters_n,
        "create_to_bound_per_s": round(len(watcher.bound_at) / max(last_bound - first_send, 1e-9), 1),
        "api_p99_s": round(quantile(latencies, 0.99), 4), "api_p50_s": round(quantile(latencies, 0.50), 4),
        "creates_per_s": round(len(latencies) / max(created_by - first_send, 1e-9), 1),
        "bound": len(watcher.bound_at), "create_errors": sum(r[2] for r in reports),
        "double_bound": len(watcher.rebound), "nodes": args.nodes, "clients": args.procs * args.threads,
        # Creates each master answered, in the order the masters started (the first is
        # usually the leader, which also runs the schedulers).
        "creates_by_master": [sum(r[3].get(url, 0) for r in reports) for url in urls],
    }
    if agent_stats:
        running_at: dict[str, float] = agent_stats["running_at"]
        seen: dict[str, float] = agent_stats["bound_seen_at"]
        to_running = [running_at[n] - seen[n] for n in running_at if n in seen]
        last_running = max(running_at.values(), default=created_by)
        result.update({
            "running": len(running_at),
            "create_to_running_per_s": round(len(running_at) / max(last_running - first_send, 1e-9), 1),
            "bound_to_running_p50_s": round(quantile(to_running, 0.50), 4),
            "bound_to_running_p99_s": round(quantile(to_running, 0.99), 4),
            "agent_errors": agent_stats["errors"], "agent_watch_restarts": agent_stats["watch_restarts"],
        })
    if watcher.error:
        result["watch_error"] = watcher.error
    return result


def _rotated(urls: list[str], by: int) -> list[str]:
    by %= len(urls)
    return urls[by:] + urls[:by]


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    if not args.compare:
        return run_once(args, args.store)
    side = {store: run_once(args, store) for store in ("sqlite", "etcd")}
    for one in side.values():
        for key in ("bench", "pods", "store"):
            one.pop(key)
    return {"bench": "api", "pods": args.pods, **side}
