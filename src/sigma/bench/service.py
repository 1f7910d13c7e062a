"""`sigma bench service`: traffic to a Service's replicas through its ClusterIP against
traffic straight to one pod, on a real cluster of network-namespace hosts
(sigma.lab.netcluster): a master and three agents with the pod network, the nftables
service proxy and the cluster DNS.

    node-a, node-b  the --replicas replicas (sigma.bench.service_backend: each answers its pod
                    name), alternating, behind a Service "web" (port 80 -> 8080)
    node-c          the client pod; the load generator runs in its network namespace

The load: sigma.bench.service_load (sigma.bench.loadgen, open loop: a request is sent when
it is due whatever became of the earlier ones, its latency counted from that due time, so
a stall is not hidden by coordinated omission), one fresh connection per request (the proxy
picks a replica per connection). It runs from the client POD's network namespace, not from
a host's: a pod's packets are what the proxy serves (out of the pod's veth, DNAT in the
node's prerouting hook, across the nodes' routes), and the replicas are all on other nodes,
so both targets take the same path apart from the proxy itself. The process is the bench's
own Python entered into that namespace (nsenter --net), not the pod's container: it is the
network path that matters, and the pod's sandbox does not carry Sigma's packages.

--windows rounds of windows of --duration seconds, each round a window per target, so all
see the same machine noise: the ClusterIP ("vip"), one replica's pod IP ("direct"), and,
as a control, every replica's pod IP in turn ("direct-all": the same processes the vip
reaches, without the proxy). The p99s are over the pooled windows of each; p99_ratio is
vip / direct (the goal), p99_ratio_same_replicas vip / direct-all, which is what the proxy
itself costs. The spread is counted from the answers of the vip windows: the busiest
replica's requests over the quietest's.

Ready to traffic: --ready-trials times, a replica that is running but not Ready (its
readiness probe, httpGet /ready with periodSeconds 1 and failureThreshold 1, answers 503
until a flag file exists, in a 0755 directory under /var/tmp that pods can read) is made
Ready by creating its flag at a moment the bench notes, after a random pause (so the flag
falls anywhere in the probe's period), while the load runs on the ClusterIP. The replica
logs when its probe first passes (the moment the pod turns Ready: successThreshold 1) and
when the first load request lands on it. ready_to_traffic_* is probe passed -> first
request: the agent's status write, the EndpointSlice controller, the proxy's sync, and the
wait for the next request the proxy sends there (replicas / rate on average).
flag_to_traffic_* is flag -> first request: the same plus the probe's period (up to 1 s with
periodSeconds 1: the probe must run once after the flag), which is the user's setting, not
Sigma's delay. The flag is then removed, and the replica leaves the endpoints before it is
used again.

sync_5000_services_s and incremental_update_p99_ms come from `sigma bench service-sync`
(sigma.bench.service_sync), run after the cluster is gone. Needs root, iproute2, nft, curl
and the CNI plugins. The namespaces (network ones and the Kubernetes one), processes and
files it makes are removed on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from sigma.agent.podnet.network import DEFAULT_ETC_ROOT
from sigma.bench import service_sync
from sigma.bench.procs import kill_group, sigterm_as_interrupt
from sigma.lab.netcluster import NODES, A, B, C, Cluster, HostNetwork, wait_until
from sigma.lab.netlab import netns_available

console = Console(stderr=True)
SERVICE_FLAGS = ("--service-proxy", "--cluster-dns", "--cluster-cidr", "10.244.0.0/16")
BACKEND_SOURCE = Path(__file__).with_name("service_backend.py")
SLICES = "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb"
GOALS = {"p99_ratio": 1.10, "spread_max_over_min": 1.3, "ready_to_traffic_p99_s": 1.0,
         "sync_5000_services_s": 2.0, "incremental_update_p99_ms": 100.0}
FIRST_REQUEST_TIMEOUT_S = 20.0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench service", description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=8, help="replicas behind the Service (default 8)")
    p.add_argument("--rate", type=float, default=200, help="requests per second during a window (default 200)")
    p.add_argument("--duration", type=float, default=5, help="seconds per window (default 5)")
    p.add_argument("--windows", type=int, default=6,
                   help="rounds of windows, each round vip, direct, direct-all (default 6)")
    p.add_argument("--connections", type=int, default=64, help="requests in flight at most (default 64)")
    p.add_argument("--ready-trials", type=int, default=20, help="times a replica turns Ready (default 20)")
    p.add_argument("--sync-services", type=int, default=5000, help="service-sync: Services (default 5000)")
    p.add_argument("--sync-endpoints", type=int, default=10, help="service-sync: endpoints each (default 10)")
    p.add_argument("--sync-changes", type=int, default=100, help="service-sync: changes timed (default 100)")
    args = p.parse_args(argv)
    if args.replicas < 1 or args.windows < 1 or args.rate <= 0 or args.duration <= 0 or args.ready_trials < 1:
        p.error("--replicas >= 1, --windows >= 1, --ready-trials >= 1, --rate and --duration > 0")
    return args


# -- figures (pure) ------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank below), NaN without values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def spread(answers: dict[str, int], replicas: list[str]) -> float | None:
    """The busiest replica's requests over the quietest's; None when one got none."""
    counts = [answers.get(name, 0) for name in replicas]
    return max(counts) / min(counts) if counts and min(counts) > 0 else None


def window_figures(windows: list[dict[str, Any]], replicas: list[str]) -> dict[str, Any]:
    """The windows pooled by target: p50/p99, counts, errors, the ratios, the spread."""
    pooled: dict[str, list[float]] = {"vip": [], "direct": [], "direct-all": []}
    errors = {"vip": 0, "direct": 0, "direct-all": 0}
    answers: dict[str, int] = {}
    for w in windows:
        if w["label"] not in pooled:
            continue  # warm-up
        pooled[w["label"]] += w["latencies_ms"]
        errors[w["label"]] += int(w["errors"])
        if w["label"] == "vip":
            for name, count in w["answers"].items():
                answers[name] = answers.get(name, 0) + int(count)
    vip, direct = percentile(pooled["vip"], 99), percentile(pooled["direct"], 99)
    every = percentile(pooled["direct-all"], 99)
    wide = spread(answers, replicas)
    return {"p99_vip_ms": round(vip, 3), "p99_direct_ms": round(direct, 3), "p99_ratio": _ratio(vip, direct),
            "spread_max_over_min": round(wide, 3) if wide is not None else None,
            "p99_direct_all_ms": _round(every), "p99_ratio_same_replicas": _ratio(vip, every),
            "p50_vip_ms": round(percentile(pooled["vip"], 50), 3),
            "p50_direct_ms": round(percentile(pooled["direct"], 50), 3),
            "requests_vip": len(pooled["vip"]), "requests_direct": len(pooled["direct"]),
            "requests_direct_all": len(pooled["direct-all"]),
            "errors_vip": errors["vip"], "errors_direct": errors["direct"], "errors_direct_all": errors["direct-all"],
            "answers_vip": {name: answers.get(name, 0) for name in replicas},
            "answers_elsewhere": sum(c for name, c in answers.items() if name not in replicas)}


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 3)


def _ratio(a: float, b: float) -> float | None:
    return _round(a / b) if b > 0 else None


@dataclass(frozen=True)
class Trial:
    flag_at: float  # time.time() when the flag file was made
    probe_passed_at: float | None  # the replica's first 200 on /ready after it
    first_request_at: float | None  # the first load request it served after that


def marks_after(log: str, since: float) -> tuple[float | None, float | None]:
    """The replica log's first ``ready T`` and then first ``first T`` at or after ``since``."""
    ready = first = None
    for line in log.splitlines():
        word, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            t = float(value)
            if word == "ready" and ready is None and t >= since:
                ready = t
            elif word == "first" and ready is not None and first is None and t >= ready:
                first = t
    return ready, first


def ready_figures(trials: list[Trial]) -> dict[str, Any]:
    to_traffic = [t.first_request_at - t.flag_at for t in trials if t.first_request_at is not None]
    after_probe = [t.first_request_at - t.probe_passed_at for t in trials
                   if t.first_request_at is not None and t.probe_passed_at is not None]
    probe_wait = [t.probe_passed_at - t.flag_at for t in trials if t.probe_passed_at is not None]
    r = _round
    return {"ready_to_traffic_p99_s": r(percentile(after_probe, 99)),
            "ready_to_traffic_p50_s": r(percentile(after_probe, 50)),
            "ready_to_traffic_max_s": r(max(after_probe, default=math.nan)),
            "flag_to_traffic_p99_s": r(percentile(to_traffic, 99)),
            "flag_to_traffic_p50_s": r(percentile(to_traffic, 50)),
            "probe_wait_p50_s": r(percentile(probe_wait, 50)),
            "ready_trials": len(trials), "ready_trials_missed": len(trials) - len(to_traffic)}


# -- the cluster -----------------------------------------------------------------------------

def replica_pod(name: str, node: str, flag: str) -> dict[str, Any]:
    python = "python3"  # the pod's PATH: the system's (a pod does not see /root, where pyenv keeps its own)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [{
                "name": "web", "command": [python, "-u", "-c", BACKEND_SOURCE.read_text(), name, flag],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1,
                                   "failureThreshold": 1, "successThreshold": 1}}]}}


class Bench:
    def __init__(self, cluster: Cluster, args: argparse.Namespace, flags: Path) -> None:
        self.cluster, self.args, self.flags = cluster, args, flags
        self.ns = f"bench-svc-{secrets.token_hex(3)}"
        self.replicas = [f"web-{i}" for i in range(args.replicas)]
        self.late = [f"late-{i}" for i in range(min(args.ready_trials, 4))]
        self.loads: list[subprocess.Popen[bytes]] = []

    def path(self, kind: str, name: str = "") -> str:
        return f"/api/v1/namespaces/{self.ns}/{kind}" + (f"/{name}" if name else "")

    def start(self) -> dict[str, Any]:
        c = self.cluster
        c.start_master()
        for host in NODES:
            c.start_agent(host, extra=SERVICE_FLAGS)
        for host in NODES:
            wait_until(f"{NODES[host]}'s network ready", functools.partial(c.network_ready, host), 90, c.diagnose)
        c.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})
        service = c.create(self.path("services"), {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        nodes = [NODES[A], NODES[B]]
        for i, name in enumerate(self.replicas):
            c.create(self.path("pods"), replica_pod(name, nodes[i % 2], ""))
        for i, name in enumerate(self.late):
            c.create(self.path("pods"), replica_pod(name, nodes[i % 2], str(self.flags / name)))
        c.create(self.path("pods"), {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
            "spec": {"nodeName": NODES[C], "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "client", "command": ["sleep", "1000000"]}]}})
        every = [*self.replicas, *self.late, "client"]
        wait_until("every pod running", lambda: all(c.running(n, self.ns) for n in every), 180, c.diagnose, every=1)
        wait_until(f"{len(self.replicas)} ready endpoints", lambda: len(self.ready_endpoints()) == len(self.replicas),
                   90, c.diagnose, every=0.5)
        return service

    def slices(self) -> list[dict[str, Any]]:
        listed = self.cluster.api("GET", SLICES.format(ns=self.ns)) or {}
        return [e for s in listed.get("items", []) for e in s.get("endpoints") or []]

    def ready_endpoints(self) -> set[str]:
        return {(e.get("targetRef") or {}).get("name", "") for e in self.slices()
                if (e.get("conditions") or {}).get("ready")}

    def not_ready(self, name: str) -> bool:
        return name not in self.ready_endpoints()

    def load(self, windows: list[tuple[str, str | list[str], int]], seconds: float) -> subprocess.Popen[bytes]:
        """The load generator in the client pod's network namespace."""
        client = self.cluster.pod("client", self.ns)
        netns = self.cluster.netns_of(client["metadata"]["uid"])
        plan = {"windows": windows, "rate": self.args.rate, "seconds": seconds, "connections": self.args.connections}
        with open(self.cluster.tmp / "load.log", "ab") as errors:  # the child keeps its own copy
            process = subprocess.Popen(["nsenter", f"--net={netns}", "--", sys.executable, "-m",
                                        "sigma.bench.service_load", json.dumps(plan)], stdout=subprocess.PIPE,
                                       stderr=errors, stdin=subprocess.DEVNULL, start_new_session=True)
        self.loads.append(process)
        return process

    def windows(self, vip: str, direct: str, every: list[str]) -> list[dict[str, Any]]:
        plan: list[tuple[str, str | list[str], int]] = [("warm-vip", vip, 80), ("warm-direct", every, 8080)]
        for _ in range(self.args.windows):
            plan += [("vip", vip, 80), ("direct", direct, 8080), ("direct-all", every, 8080)]
        process = self.load(plan, self.args.duration)
        done: list[dict[str, Any]] = []
        assert process.stdout is not None
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{len(plan)} windows of {self.args.duration:g}s at {self.args.rate:g}/s",
                                     total=len(plan))
            for line in process.stdout:
                window = json.loads(line)
                done.append(window)
                progress.advance(task)
                if not window["label"].startswith("warm"):
                    lat = window["latencies_ms"]
                    console.print(f"  {window['label']:10} p99 {percentile(lat, 99):7.2f} ms  "
                                  f"p50 {percentile(lat, 50):6.2f} ms  {len(lat)} answered, {window['errors']} errors")
        process.wait()
        if len(done) != len(plan):
            raise RuntimeError(f"the load generator stopped after {len(done)} windows\n{self.cluster.diagnose()}")
        return done

    def ready_trials(self, vip: str) -> list[Trial]:
        trials_n = self.args.ready_trials
        process = self.load([("ready", vip, 80)], seconds=trials_n * 15 + 60)  # stopped when done
        rng = random.Random(7)
        trials: list[Trial] = []
        try:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task(f"{trials_n} replicas turning Ready", total=trials_n)
                for i in range(trials_n):
                    name = self.late[i % len(self.late)]
                    wait_until(f"{name} out of the endpoints", functools.partial(self.not_ready, name), 30,
                               self.cluster.diagnose, every=0.2)
                    time.sleep(rng.uniform(0.5, 1.5))  # anywhere in the probe's period
                    trials.append(self.trial(name))
                    progress.advance(task)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return trials

    def trial(self, name: str) -> Trial:
        flag = self.flags / name
        flag_at = time.time()
        flag.touch(mode=0o644)
        deadline = time.monotonic() + FIRST_REQUEST_TIMEOUT_S
        ready = first = None
        while time.monotonic() < deadline and first is None:
            time.sleep(0.2)
            ready, first = marks_after(self.cluster.logs(name, self.ns), flag_at)
        flag.unlink()
        if first is not None:
            console.print(f"  {name}: probe passed +{(ready or flag_at) - flag_at:.3f}s, "
                          f"first request +{first - flag_at:.3f}s")
        else:
            console.print(f"  [yellow]{name}: no request within {FIRST_REQUEST_TIMEOUT_S:g}s[/]")
        return Trial(flag_at, ready, first)

    def close(self) -> None:
        for process in self.loads:
            kill_group(process)
        with contextlib.suppress(Exception):
            self.cluster.api("DELETE", f"/api/v1/namespaces/{self.ns}")


def measure_cluster(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sigma-bench-service-"))
    flags = Path(tempfile.mkdtemp(prefix="sigma-bench-flags-", dir="/var/tmp"))
    flags.chmod(0o755)  # the pods read it (they see the host read-only, /tmp is their own)
    try:
        net = HostNetwork(3, prefix="sigma-b")
        with net:
            cluster = Cluster(net, tmp, DEFAULT_ETC_ROOT)
            bench = Bench(cluster, args, flags)
            try:
                console.print(f"master and 3 agents, {args.replicas} replicas, client on {NODES[C]}")
                service = bench.start()
                vip = service["spec"]["clusterIP"]
                every = [cluster.running(name, bench.ns)["status"]["podIP"]  # type: ignore[index]
                         for name in bench.replicas]
                console.print(f"ClusterIP {vip}, direct target {bench.replicas[0]} at {every[0]}")
                windows = bench.windows(vip, every[0], every)
                trials = bench.ready_trials(vip)
                return {**window_figures(windows, bench.replicas), **ready_figures(trials)}
            finally:
                bench.close()
                cluster.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(flags, ignore_errors=True)


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    why = netns_available(("ip", "curl", "nsenter", "nft"))
    if why is not None:
        raise SystemExit(f"sigma bench service: {why}")
    load_before = os.getloadavg()[0]
    with sigterm_as_interrupt():
        figures = measure_cluster(args)
        console.print(f"service-sync: {args.sync_services} Services of {args.sync_endpoints} endpoints")
        sync = service_sync.run(["--services", str(args.sync_services), "--endpoints", str(args.sync_endpoints),
                                 "--changes", str(args.sync_changes)])
    keys = ("p99_vip_ms", "p99_direct_ms", "p99_ratio", "spread_max_over_min", "ready_to_traffic_p99_s")
    return {"bench": "service", **{k: figures[k] for k in keys},
            "sync_5000_services_s": sync["sync_5000_services_s"],
            "incremental_update_p99_ms": sync["incremental_update_p99_ms"],
            **{k: v for k, v in figures.items() if k not in keys},
            "replicas": args.replicas, "rate": args.rate, "window_s": args.duration, "windows": args.windows,
            "client": "a pod's network namespace on a node without replicas",
            "sync_services": args.sync_services, "load_average": [round(load_before, 2),
                                                                   round(os.getloadavg()[0], 2)],
            "goals": GOALS}
