"""Image blob distribution: `sigma bench p2p --nodes N --size-mib S --link-mbit B [--json]`.

A flash crowd on a small simulated cluster, every machine a network namespace
(sigma.lab.netlab) behind one switch:

    h0  docker-registry (Debian's), its link shaped to B both ways
    h1  the P2P tracker (as the master hosts it), unshaped: it carries only metadata
    h2… N peers, one process each, the agent's own sigma.p2p code; every link shaped to B
        with tbf both ways (upload on the host's end of its veth, download on the switch's)

One blob of S MiB, pushed to the registry, is distributed twice in the same run:

1. direct: every node GETs the whole blob from the registry at once (no P2P);
2. p2p: the nodes fetch pieces from each other through the tracker, going to the registry
   only for pieces nobody holds (claims at the tracker keep it to about once per piece).
   With --faults, one peer serves corrupt pieces and another is SIGKILLed once it holds
   half the pieces; the others must still finish with the right digest.

Reported as ratios of completion time over the floor S/B (no node can receive S faster than
its link allows), p50 and p99 over the nodes, and source_egress_ratio: bytes the registry's
interface sent during the p2p phase (TCP/IP headers included) over S. Every node then checks
the sha256 of what it got. All processes share this machine's CPUs, so CPU use (whole
machine from /proc/stat, and per process) and the load average are reported too: on a small
machine the CPU, not the links, can be what limits the result. Needs root, iproute2 (ip, tc,
nsenter), curl and docker-registry. Everything it creates (namespaces, qdiscs, processes,
files) is removed on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from sigma.bench.p2p_stats import cpu_sample, cpu_summary, fault_counts
from sigma.bench.procs import sigterm_as_interrupt
from sigma.lab.netlab import Network, netns_available
from sigma.p2p.peer import DEFAULT_UPLOAD_SLOTS
from sigma.p2p.tracker import DEFAULT_SOURCE_CLAIMS

MIB = 1 << 20
REGISTRY, TRACKER = 0, 1  # host indexes; the peers are hosts 2..N+1
REGISTRY_PORT, TRACKER_PORT, PEER_PORT = 5000, 7000, 7001
REPO = "bench/blob"
TIMELINE_EVERY = 2.0  # seconds between the points of a phase's timeline


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench p2p", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=16, help="peers wanting the blob (default 16)")
    p.add_argument("--size-mib", type=float, default=512, help="blob size in MiB (default 512)")
    p.add_argument("--link-mbit", type=float, default=200, help="every link, each way, in Mbit/s (default 200)")
    p.add_argument("--piece-mib", type=float, default=4, help="piece size in MiB (default 4)")
    p.add_argument("--parallel", type=int, default=6, help="pieces a node fetches at once (default 6)")
    p.add_argument("--per-peer", type=int, default=2, help="of those, at most this many from one peer")
    p.add_argument("--upload-slots", type=int, default=DEFAULT_UPLOAD_SLOTS,
                   help=f"pieces a node uploads at once; more asks are told to try elsewhere "
                        f"(default {DEFAULT_UPLOAD_SLOTS}; 0: no limit)")
    p.add_argument("--registry-per-node", type=int, default=1, help="of those, at most this many from the registry")
    # The master's tracker has the same cap (see DEFAULT_SOURCE_CLAIMS for why 6).
    p.add_argument("--source-claims", type=int, default=DEFAULT_SOURCE_CLAIMS,
                   help="pieces fetched from the registry at once, over all nodes (the tracker's cap; 0: none)")
    p.add_argument("--poll", type=float, default=0.1, help="seconds between a node's tracker polls when idle")
    p.add_argument("--faults", action="store_true", help="one peer serves corrupt pieces, one is killed mid-way")
    p.add_argument("--direct", action=argparse.BooleanOptionalAction, default=True,
                   help="also time every node pulling straight from the registry (default on)")
    p.add_argument("--warm-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="before the p2p phase, every node writes out (zeros) the file it will fill, "
                        "untimed, so that the phase does not pay this VM's first touch of fresh RAM (default on)")
    p.add_argument("--workdir", help="where blobs are written (default: /dev/shm when it has room, else TMPDIR)")
    p.add_argument("--registry-bin", default=shutil.which("docker-registry") or "/usr/bin/docker-registry")
    args = p.parse_args(argv)
    if args.nodes < 2 or args.size_mib <= 0 or args.link_mbit <= 0 or args.piece_mib <= 0:
        p.error("--nodes must be at least 2; sizes and rates positive")
    if args.faults and args.nodes < 3:
        p.error("--faults needs at least 3 nodes (one corrupt, one killed, one to check)")
    return args


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    why = netns_available(("ip", "tc", "nsenter", "curl"))
    if why is None and not os.path.exists(args.registry_bin):
        why = f"{args.registry_bin} is not installed (scripts/setup.sh installs docker-registry)"
    if why is not None:
        raise SystemExit(f"sigma bench p2p: {why}")
    size = int(args.size_mib * MIB)
    workroot = args.workdir or _default_workdir(size * (args.nodes + 3))
    load_before = os.getloadavg()
    with sigterm_as_interrupt(), tempfile.TemporaryDirectory(prefix="sigma-bench-p2p-", dir=workroot) as work:
        os.chmod(work, 0o755)
        with Network(args.nodes + 2, prefix="sigma-b") as net, _Lab(net, args, size, work) as lab:
            result = lab.measure()
    result["loadavg"] = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]}
    result["cpus"] = os.cpu_count()
    result["workdir_fs"] = _fs_type(workroot)
    return result


class _Lab:
    """The registry, the tracker and the peers on their hosts, and the two timed phases."""

    def __init__(self, net: Network, args: argparse.Namespace, size: int, work: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        self.net, self.args, self.size, self.work = net, args, size, work
        self.piece_size = int(args.piece_mib * MIB)
        self.floor = size * 8 / (args.link_mbit * 1e6)
        self.registry = f"http://{net.address(REGISTRY)}:{REGISTRY_PORT}"
        self.tracker = f"http://{net.address(TRACKER)}:{TRACKER_PORT}/p2p"
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.alive: set[int] = set()
        self.inbox: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        self.progress = Progress(TextColumn("[p2p] {task.description}"), BarColumn(), DownloadColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True))
        self.digest = ""
        self.timelines: dict[str, list[list[float]]] = {}

    def __enter__(self) -> _Lab:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for i in sorted(self.alive):
            with contextlib.suppress(OSError, ValueError):
                self._send(i, "quit")
        self.progress.stop()

    def _log(self, msg: str) -> None:
        self.progress.console.print(f"[p2p] {msg}")

    # -- set-up ------------------------------------------------------------------------------
    def _setup(self) -> None:
        a = self.args
        self._log(f"{a.nodes} nodes, {a.size_mib:g} MiB, every link {a.link_mbit:g} Mbit/s: "
                  f"floor S/B = {self.floor:.1f} s")
        self.net.shape(REGISTRY, a.link_mbit)
        for i in range(a.nodes):
            self.net.shape(i + 2, a.link_mbit)
        path = os.path.join(self.work, "blob")
        self.digest = _random_file(path, self.size)
        self._start_registry()
        out = self.net.run(REGISTRY, [sys.executable, "-m", "sigma.bench.p2p_node", "push", "--registry",
                                      self.registry, "--repo", REPO, "--file", path], timeout=600)
        if out.returncode != 0 or json.loads(out.stdout.splitlines()[-1])["digest"] != self.digest:
            raise RuntimeError(f"pushing the blob failed: {out.stderr.decode()[-2000:]}")
        os.unlink(path)
        self.procs[-2] = self.net.popen(TRACKER, [sys.executable, "-m", "sigma.bench.p2p_node", "tracker", "--listen",
                                 f"{self.net.address(TRACKER)}:{TRACKER_PORT}", "--max-claims",
                                 str(a.source_claims)], log=_path(self.work, "tracker.log"))
        self._wait_http(TRACKER, f"{self.tracker}/blobs", "the tracker")
        for i in range(a.nodes):
            self._start_peer(i)
        deadline = time.monotonic() + 60
        ready = 0
        while ready < a.nodes:
            i, msg = self.inbox.get(timeout=max(0.1, deadline - time.monotonic()))
            if msg is None or "ready" not in msg:
                raise RuntimeError(f"node {i} did not start: see {self.work}/node{i}.log")
            ready += 1

    def _start_registry(self) -> None:
        config = os.path.join(self.work, "registry.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.work}/registry\n"
                    f"http:\n  addr: {self.net.address(REGISTRY)}:{REGISTRY_PORT}\n")
        self.procs[-1] = self.net.popen(REGISTRY, [self.args.registry_bin, "serve", config],
                                        log=_path(self.work, "registry.log"))
        self._wait_http(REGISTRY, f"{self.registry}/v2/", "docker-registry")

    def _wait_http(self, host: int, url: str, what: str) -> None:
        for _ in range(200):
            if self.net.run(host, ["curl", "-sf", "-m", "1", "-o", "/dev/null", url]).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{what} did not answer at {url}; logs in {self.work}")

    def _start_peer(self, i: int) -> None:
        a = self.args
        conf = {
            "index": i, "address": self.net.address(i + 2), "port": PEER_PORT, "workdir": self.work,
            "tracker": self.tracker, "blob_url": f"{self.registry}/v2/{REPO}/blobs/{self.digest}",
            "digest": self.digest, "size": self.size, "piece_size": self.piece_size,
            "parallel": a.parallel, "per_peer": a.per_peer, "registry_per_node": a.registry_per_node,
            "poll": a.poll, "upload_slots": a.upload_slots,
            # Faults: node 0 serves corrupt pieces; the last node dies once it holds half.
            "corrupt": a.faults and i == 0, "die_at": 0.5 if a.faults and i == a.nodes - 1 else None,
        }
        proc = self.net.popen(i + 2, [sys.executable, "-m", "sigma.bench.p2p_node", "peer", json.dumps(conf)],
                              log=_path(self.work, f"node{i}.log"), pipes=True)
        self.procs[i] = proc
        self.alive.add(i)
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(i, proc.stdout), daemon=True).start()

    def _read(self, i: int, out: IO[bytes]) -> None:
        for line in out:
            with contextlib.suppress(ValueError):
                self.inbox.put((i, json.loads(line)))
        self.inbox.put((i, None))  # the process is gone

    def _send(self, i: int, command: str) -> None:
        stdin = self.procs[i].stdin
        assert stdin is not None
        stdin.write(command.encode() + b"\n")
        stdin.flush()

    # -- the phases ----------------------------------------------------------------------------
    def measure(self) -> dict[str, Any]:
        self._setup()
        a = self.args
        out: dict[str, Any] = {"bench": "p2p", "nodes": a.nodes, "size_mib": a.size_mib, "link_mbit": a.link_mbit}
        cpu: dict[str, Any] = {}
        direct_times: list[float] = []
        if a.direct:
            answers, cpu["direct"], _ = self._phase("direct", "direct from the registry", 3 * a.nodes * self.floor)
            bad = [i for i, r in answers.items() if r.get("digest") != self.digest]
            if bad:
                raise RuntimeError(f"direct pulls of nodes {bad} failed: {[answers[i] for i in bad]}")
            direct_times = [r["elapsed"] for r in answers.values()]
        if a.warm_memory:
            self._prepare()
        answers, cpu["p2p"], egress = self._phase("p2p", "p2p", 60 + 20 * self.floor)
        failed = {i: r["error"] for i, r in answers.items() if "error" in r}
        if failed:
            raise RuntimeError(f"p2p downloads failed: {failed}; logs in {self.work}")
        survivors = sorted(answers)
        verified = self._verify(survivors)
        times = [answers[i]["elapsed"] for i in survivors]
        reports = [answers[i]["report"] for i in survivors]
        out.update({
            "p2p_p50_ratio": round(_quantile(times, 0.5) / self.floor, 3),
            "p2p_p99_ratio": round(_quantile(times, 0.99) / self.floor, 3),
            "direct_p99_ratio": round(_quantile(direct_times, 0.99) / self.floor, 3) if direct_times else None,
            "source_egress_ratio": round(egress / self.size, 3),
            "floor_s": round(self.floor, 2),
            "p2p_s": {"min": round(min(times), 2), "p50": round(_quantile(times, 0.5), 2), "max": round(max(times), 2)},
            "direct_s": {"p50": round(_quantile(direct_times, 0.5), 2),
                         "max": round(max(direct_times), 2)} if direct_times else None,
            "source_payload_ratio": round(sum(r["from_registry"] for r in reports) * self.piece_size / self.size, 3),
            "tracker_views": sum(r.get("tracker_views", 0) for r in reports),
            "tracker_claims": sum(r.get("tracker_claims", 0) for r in reports),
            "busy_refusals": sum(r.get("busy_refusals", 0) for r in reports),
            "nodes_completed": len(survivors),
            "digests_ok": sum(d == self.digest for d in verified.values()),
            "piece_mib": a.piece_mib, "parallel": a.parallel, "source_claims": a.source_claims,
            "upload_slots": a.upload_slots,
            "warm_memory": a.warm_memory,
            "faults": fault_counts(reports, a.faults, a.nodes - len(survivors)),
            "cpu": cpu,
            # Where the time went: every TIMELINE_EVERY s, [s, MiB held by all nodes, MiB the
            # registry sent]; all links busy would add N*B per second to the second column.
            "p2p_timeline": self.timelines.get("p2p", []),
        })
        return out

    def _phase(self, command: str, label: str, timeout: float) -> tuple[dict[int, dict[str, Any]], dict[str, Any], int]:
        """Send `command` to every live node at once; (their answers with "elapsed" added,
        CPU use, bytes the registry sent meanwhile)."""
        nodes = sorted(self.alive)
        task = self.progress.add_task(label, total=len(nodes) * self.size)
        held = dict.fromkeys(nodes, 0)
        pids = {"registry": self.procs[-1].pid, "tracker": self.procs[-2].pid,
                **{f"node{i}": self.procs[i].pid for i in nodes}}
        before, egress0 = cpu_sample(pids), self.net.counters(REGISTRY)["tx_bytes"]
        answers: dict[int, dict[str, Any]] = {}
        timeline: list[list[float]] = []  # [seconds, MiB held over all nodes, MiB the registry sent]
        go = time.time()
        for i in nodes:
            self._send(i, command)
        deadline = time.monotonic() + timeout
        while len(answers) < len(self.alive & set(nodes)):
            try:
                i, msg = self.inbox.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() > deadline:
                    missing = sorted(set(nodes) - set(answers))
                    raise RuntimeError(f"{label}: nodes {missing} not done after {timeout:.0f}s") from None
                continue
            if msg is None:
                self.alive.discard(i)  # killed (the --faults victim) or crashed
                self._log(f"node {i} died during {label}")
            elif "progress" in msg:
                held[i] = int(msg["progress"])
            else:
                msg["elapsed"] = msg["done"] - go
                answers[i], held[i] = msg, self.size
            self.progress.update(task, completed=sum(held.values()))
            if time.time() - go >= TIMELINE_EVERY * len(timeline):
                sent = self.net.counters(REGISTRY)["tx_bytes"] - egress0
                timeline.append([round(time.time() - go, 1), round(sum(held.values()) / MIB), round(sent / MIB)])
        self.timelines[command] = timeline
        egress = self.net.counters(REGISTRY)["tx_bytes"] - egress0
        cpu = cpu_summary(before, cpu_sample(pids))
        self._log(f"{label}: slowest node {max(r['elapsed'] for r in answers.values()):.1f} s, "
                  f"machine CPU busy {cpu['busy']:.0%}")
        return answers, cpu, egress

    def _prepare(self) -> None:
        """Every live node reserves its memory for the blob (p2p_node's prepare), untimed."""
        nodes = sorted(self.alive)
        for i in nodes:
            self._send(i, "prepare")
        done: set[int] = set()
        while len(done) < len(nodes):
            i, msg = self.inbox.get(timeout=300)
            if msg is None:
                raise RuntimeError(f"node {i} died while preparing: see {self.work}/node{i}.log")
            if "prepared" in msg:
                done.add(i)

    def _verify(self, nodes: list[int]) -> dict[int, str | None]:
        for i in nodes:
            self._send(i, "verify")
        got: dict[int, str | None] = {}
        while len(got) < len(nodes):
            i, msg = self.inbox.get(timeout=300)
            if msg is not None and "digest" in msg:
                got[i] = msg["digest"]
        return got


def _random_file(path: str, size: int) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 4 * MIB))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return "sha256:" + h.hexdigest()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _default_workdir(need: int) -> str | None:
    """/dev/shm when it can hold every node's copy: page-cache-backed writes, no disk writeback
    competing for the CPU the peers need; None (TMPDIR) otherwise."""
    with contextlib.suppress(OSError):
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize > need + 2 * 1024 * MIB:
            return "/dev/shm"
    return None


def _fs_type(path: str | None) -> str:
    path = os.path.realpath(path or tempfile.gettempdir())
    best, fs = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if (path == parts[1] or path.startswith(parts[1].rstrip("/") + "/")) and len(parts[1]) >= len(best):
                best, fs = parts[1], parts[2]
    return fs


def _path(work: str, name: str) -> Any:
    from pathlib import Path

    return Path(work, name)
