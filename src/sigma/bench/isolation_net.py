"""`sigma bench isolation --variant network --json`: does prod keep its latency while batch
pods fill the node's link, and what do the bandwidth limits of the agent's ladder give back?

Every machine and pod is a network namespace (sigma.lab.netlab), created here and removed on
the way out:

    h0  the clients' side: prod's clients and the sink batch sends to; its link is shaped to
        --link-mbit both ways with tbf (netlab `shape`): the link of known capacity
    h1  the prod pod: a small request/response service (one line in, --reply-bytes out)
    h2… the batch pods: each sends to h0 as fast as TCP lets it

Prod is reached through its Service (--prod-path service, the default): Sigma's service proxy
(sigma.agent.svcproxy, the agent's own code) programs its nftables table in h0 from a Service
with ClusterIP SERVICE_IP:80 whose EndpointSlice holds h1's address, so every request is sent
to the ClusterIP and DNATed to the pod as on a node of the cluster; --prod-path pod reaches
the pod address directly. A client on h0 sends --rate requests per second on one connection,
open-loop: a request's latency counts from when it was due, so a stall delays every request
behind it and is measured. Three runs of --seconds each:

1. alone: no batch traffic;
2. unlimited: batch pods sending, no limit: their bulk shares h0's download with prod's
   replies and fills tbf's queue;
3. limited: the same, with the ladder of the agent (sigma.colocation.netladder) run here
   every 0.5 s on the measured traffic (prod's from h1's counters) and a NodeSLO of linkMbps
   = --link-mbit, threshold --threshold: each batch pod's egress gets the tbf the agent sets
   (sigma.agent.podnet.shaping.tbf_args), here on the batch namespace's own eth0 rather than on
   a host-side ifb, which shapes the same packets.

The JSON gives the three p99s, `p99_ratio` (limited over unlimited), each run's ratio to
alone, and batch's throughput in each run (bytes h0 received, headers included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from sigma.agent.podnet.shaping import tbf_args
from sigma.agent.svcproxy.nft import Nft
from sigma.agent.svcproxy.proxy import ServiceProxy
from sigma.agent.svcproxy.rules import NodeConfig
from sigma.colocation.netladder import MBIT, BatchPod, NetInputs, NetworkSLO, batch_caps, decide_batch_limits
from sigma.lab.netlab import Network, netns_available

CLIENT, PROD = 0, 1
PROD_PORT, SINK_PORT = 9100, 9200
LADDER_INTERVAL_S = 0.5
SERVICE_IP, SERVICE_PORT, SERVICE_RANGE = "10.96.0.10", 80, "10.96.0.0/12"

SERVER = ("import socket, sys, threading\nreply = b'r' * int(sys.argv[1])\n"
          "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind(('0.0.0.0', int(sys.argv[2]))); s.listen(16)\n"
          "def serve(c):\n    f = c.makefile('rb')\n    for _ in f:\n        c.sendall(reply)\n"
          "while True:\n    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()\n")
SINK = ("import socket, sys, threading\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16)\n"
        "def drain(c):\n    while c.recv(1 << 16):\n        pass\n"
        "while True:\n    threading.Thread(target=drain, args=(s.accept()[0],), daemon=True).start()\n")
SENDER = ("import socket, sys, time\nchunk = bytes(1 << 16)\nwhile True:\n    try:\n"
          "        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
          "        while True:\n            s.sendall(chunk)\n    except OSError:\n        time.sleep(0.2)\n")
# Open-loop on one connection: latency from the due time; prints the latencies (ms) as JSON.
CLIENT_SCRIPT = ("import json, socket, sys, time\nhost, port, rate, seconds, size = sys.argv[1], int(sys.argv[2]), "
                 "float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])\n"
                 "s = socket.create_connection((host, port), timeout=10)\n"
                 "s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\nout = []\nstart = time.monotonic()\n"
                 "for i in range(int(rate * seconds)):\n    due = start + i / rate\n"
                 "    time.sleep(max(0.0, due - time.monotonic()))\n    s.sendall(b'q\\n')\n    got = 0\n"
                 "    while got < size:\n        got += len(s.recv(size - got))\n"
                 "    out.append((time.monotonic() - due) * 1000)\nprint(json.dumps(out))\n")


def _log(msg: str) -> None:
    print(f"[isolation-network] {msg}", file=sys.stderr, flush=True)


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


class Ladder:
    """The agent's network rung, run on the lab: measure prod, decide, set the batch tbfs."""

    def __init__(self, net: Network, batch_hosts: list[int], slo: NetworkSLO) -> None:
        self.net, self.batch_hosts, self.slo = net, batch_hosts, slo
        self.current: dict[int, int | None] = dict.fromkeys(batch_hosts)
        self.stop = threading.Event()
        self.lowest = {h: slo.cap_bits("egress") for h in batch_hosts}
        self.thread = threading.Thread(target=self._run, name="bench-ladder", daemon=True)

    def _run(self) -> None:
        before, t0 = self.net.counters(PROD), time.monotonic()
        while not self.stop.wait(LADDER_INTERVAL_S):
            after, t1 = self.net.counters(PROD), time.monotonic()
            prod_egress = int((after["tx_bytes"] - before["tx_bytes"]) * 8 / (t1 - t0))
            prod_ingress = int((after["rx_bytes"] - before["rx_bytes"]) * 8 / (t1 - t0))
            before, t0 = after, t1
            pods = [BatchPod(str(h), batch_caps({}, self.slo), self.current[h], None) for h in self.batch_hosts]
            decision = decide_batch_limits(NetInputs(self.slo, prod_egress, prod_ingress, 0, 0, pods))
            for key, change in decision.changes.items():
                if "egress" in change:
                    host = int(key)
                    self.set(host, change["egress"])

    def set(self, host: int, bits: int) -> None:
        subprocess.run([*self.net.enter(host), "tc", "qdisc", "replace", "dev", "eth0", "root", "handle", "1:",
                        *tbf_args(bits)], check=True, capture_output=True)
        self.current[host] = bits
        self.lowest[host] = min(self.lowest[host], bits)

    def __enter__(self) -> Ladder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for host in self.batch_hosts:
            subprocess.run([*self.net.enter(host), "tc", "qdisc", "del", "dev", "eth0", "root"], capture_output=True)
            self.current[host] = None


class ProdService:
    """The proxy's read side with one Service: ClusterIP SERVICE_IP:SERVICE_PORT -> the prod
    pod's PROD_PORT, its one endpoint ready (what the EndpointSlice controller writes)."""

    def __init__(self, pod_ip: str) -> None:
        self.synced = threading.Event()
        self.synced.set()
        port = {"name": "serve", "port": SERVICE_PORT, "targetPort": PROD_PORT, "protocol": "TCP"}
        self.service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "prod", "namespace": "default"},
                        "spec": {"clusterIP": SERVICE_IP, "clusterIPs": [SERVICE_IP], "type": "ClusterIP",
                                 "ports": [port]}}
        self.slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                      "metadata": {"name": "prod-a", "namespace": "default",
                                   "labels": {"kubernetes.io/service-name": "prod"}},
                      "ports": [{"name": "serve", "port": PROD_PORT, "protocol": "TCP"}],
                      "endpoints": [{"addresses": [pod_ip], "conditions": {"ready": True}}]}

    def subscribe(self) -> threading.Event:
        return threading.Event()

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return [self.service], [self.slice]


def program_service(net: Network) -> tuple[str, int]:
    """Sigma's proxy table in the clients' namespace, as on the node of a client pod: the
    address the client sends to."""
    subprocess.run([*net.enter(CLIENT), "ip", "route", "add", SERVICE_RANGE, "dev", "eth0"], check=True,
                   capture_output=True)  # a node routes the service range (its default route)
    proxy = ServiceProxy(ProdService(net.address(PROD)), NodeConfig(), Nft(net.enter(CLIENT)))
    proxy.sync()
    return SERVICE_IP, SERVICE_PORT


def _measure(net: Network, args: argparse.Namespace, label: str, target: tuple[str, int]) -> dict[str, Any]:
    before = net.counters(CLIENT)
    done = net.run(CLIENT, [sys.executable, "-c", CLIENT_SCRIPT, target[0], str(target[1]), str(args.rate),
                            str(args.seconds), str(args.reply_bytes)], timeout=args.seconds * 4 + 30)
    after = net.counters(CLIENT)
    if done.returncode != 0:
        raise RuntimeError(f"the client failed in the {label} run: {done.stderr.decode(errors='replace')[-500:]}")
    latencies = json.loads(done.stdout)
    received = (after["rx_bytes"] - before["rx_bytes"]) * 8 / args.seconds / MBIT
    _log(f"{label}: p99 {p99(latencies):.2f} ms over {len(latencies)} requests, h0 received {received:.1f} Mbit/s")
    return {"p99_ms": round(p99(latencies), 3), "requests": len(latencies), "received_mbit_s": round(received, 2)}


def run(argv: list[str]) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="sigma bench isolation --variant network")
    p.add_argument("--seconds", type=float, default=15.0, help="length of each measured run")
    p.add_argument("--rate", type=float, default=50.0, help="prod requests per second")
    p.add_argument("--reply-bytes", type=int, default=4000, help="size of prod's reply")
    p.add_argument("--batch-pods", type=int, default=2, help="batch pods sending bulk to the clients' side")
    p.add_argument("--link-mbit", type=float, default=100.0, help="the shaped link's capacity, each way")
    p.add_argument("--threshold", type=float, default=0.9, help="the NodeSLO's network threshold")
    p.add_argument("--settle", type=float, default=2.0, help="seconds of batch traffic before a run")
    p.add_argument("--prod-path", choices=("service", "pod"), default="service",
                   help="reach prod through its Service's ClusterIP (Sigma's nftables proxy) or at its pod address")
    args = p.parse_args(argv)
    problem = netns_available(("ip", "tc", "nsenter"))
    if problem:
        raise SystemExit(f"sigma bench isolation --variant network: {problem}")
    batch_hosts = list(range(2, 2 + args.batch_pods))
    slo = NetworkSLO(link_mbps=max(1, int(args.link_mbit)), threshold=args.threshold, batch_floor_mbps=1)
    load_before = os.getloadavg()
    with Network(hosts=2 + args.batch_pods, prefix="sigma-bn") as net:
        net.shape(CLIENT, args.link_mbit)
        net.popen(PROD, [sys.executable, "-c", SERVER, str(args.reply_bytes), str(PROD_PORT)])
        net.popen(CLIENT, [sys.executable, "-c", SINK, str(SINK_PORT)])
        target = program_service(net) if args.prod_path == "service" else (net.address(PROD), PROD_PORT)
        time.sleep(0.5)
        alone = _measure(net, args, "alone", target)
        for host in batch_hosts:
            net.popen(host, [sys.executable, "-c", SENDER, net.address(CLIENT), str(SINK_PORT)])
        time.sleep(args.settle)
        unlimited = _measure(net, args, "unlimited", target)
        with Ladder(net, batch_hosts, slo) as ladder:
            time.sleep(args.settle)
            limited = _measure(net, args, "limited", target)
            limits = {net.hosts[h]: ladder.current[h] for h in batch_hosts}
    base = alone["p99_ms"] or float("nan")
    return {
        "bench": "isolation", "variant": "network", "link_mbit": args.link_mbit, "threshold": args.threshold,
        "batch_pods": args.batch_pods, "rate": args.rate, "seconds": args.seconds, "reply_bytes": args.reply_bytes,
        "prod_path": (f"Service {SERVICE_IP}:{SERVICE_PORT} (Sigma's nftables proxy)" if args.prod_path == "service"
                      else "pod address (no Service)"),
        "alone": alone, "unlimited": unlimited, "limited": limited,
        "batch_limits_bits_at_end": list(limits.values()),
        "p99_alone_ms": alone["p99_ms"], "p99_unlimited_ms": unlimited["p99_ms"], "p99_limited_ms": limited["p99_ms"],
        "p99_ratio": round(limited["p99_ms"] / unlimited["p99_ms"], 3) if unlimited["p99_ms"] else None,
        "p99_unlimited_over_alone": round(unlimited["p99_ms"] / base, 3),
        "p99_limited_over_alone": round(limited["p99_ms"] / base, 3),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
