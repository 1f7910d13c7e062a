"""`sigma bench runtimes`: what each RuntimeClass handler costs, on a real master and agent.

For every handler the agent reports (Node labels ``sigma.io/runtime-handler.<h>``; the
process runtime aside, it runs no image), with a busybox image built from the host's:

- pod start latency, create -> Running through the scheduler, p50/p99 over ``--pods`` pods
  created one after the other (each deleted once Running);
- a CPU-bound loop (``--loop`` iterations of shell arithmetic: almost no system calls) and a
  system-call-heavy one (``dd bs=1`` over ``--syscalls`` bytes: two calls a byte), timed
  inside the pod by /proc/uptime, and their speed relative to runc's (runc = 1.0, lower is
  slower);
- memory per idle pod: the pod cgroup's usage with ``sleep`` running (under runsc it holds
  the Sentry and the gofer: what the sandbox costs in memory).

The open-loop HTTP p99 of the isolation bench under each handler is not measured here.
Handlers the node lacks are listed under "missing" with the agent's reason.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.images import ImageStore
from sigma.api.errors import ApiError
from sigma.bench.agentproc import AgentProcess
from sigma.bench.masterproc import MasterProcess
from sigma.client.http import HttpClient

NODE = "bench-runtimes"
IMAGE = "busybox:bench"
LABEL_PREFIX = "sigma.io/runtime-handler."
IMAGE_HANDLERS = ("runc", "crun", "runsc", "lxc")  # in the result's order; process runs no image


def _log(msg: str) -> None:
    print(f"[bench runtimes] {msg}", file=sys.stderr, flush=True)


# -- pure: the figures ------------------------------------------------------------------------
def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of a non-empty list."""
    ordered = sorted(samples)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n), at least 1
    return ordered[min(rank, len(ordered)) - 1]


def elapsed_from_uptimes(log: str) -> float:
    """The seconds between the two /proc/uptime readings a timed pod prints ("start end")."""
    start, end = (float(x) for x in log.split()[:2])
    return end - start


def relative_to(base: dict[str, Any], key: str, handlers: dict[str, dict[str, Any]]) -> None:
    """Each handler's speed on ``key`` (seconds) relative to ``base``'s: base / own."""
    reference = base.get(key)
    for figures in handlers.values():
        own = figures.get(key)
        if reference and own:
            figures[f"{key.removesuffix('_s')}_speed_vs_runc"] = round(reference / own, 3)


# -- the image --------------------------------------------------------------------------------
def busybox_layout(path: str, busybox: str) -> None:
    """An OCI image layout of the host's static busybox, tagged IMAGE."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        data = Path(busybox).read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for tool in ("sh", "sleep", "cat", "dd", "true"):
            link = tarfile.TarInfo(f"bin/{tool}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(blob: bytes, media: str) -> dict[str, Any]:
        digest = hashlib.sha256(blob).hexdigest()
        Path(blobs, digest).write_bytes(blob)
        return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(blob)}

    layer = put(buf.getvalue(), "application/vnd.oci.image.layer.v1.tar")
    config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode(),
                 "application/vnd.oci.image.config.v1+json")
    manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": config, "layers": [layer]}).encode(),
                   "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": IMAGE}
    Path(path, "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    Path(path, "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))


# -- the measurements -------------------------------------------------------------------------
class Runs:
    def __init__(self, client: HttpClient, cgroups: CgroupTree) -> None:
        self.client, self.cgroups = client, cgroups

    def create(self, handler: str, script: str, restart: str = "Never") -> str:
        name = f"{handler}-{uuid.uuid4().hex[:8]}"
        self.client.create("pods", {
            "metadata": {"name": name},
            "spec": {"runtimeClassName": handler, "restartPolicy": restart, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", script]}]}}, "default")
        return name

    def wait_phase(self, name: str, phases: tuple[str, ...], timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self.client.get("pods", name, "default")
            if (pod.get("status") or {}).get("phase") in phases:
                return pod
            time.sleep(0.01)
        raise TimeoutError(f"pod {name} did not reach {phases} in {timeout}s")

    def delete(self, name: str) -> None:
        with contextlib.suppress(ApiError):  # already gone
            self.client.delete("pods", name, "default", grace_period_seconds=0)

    def start_latency(self, handler: str) -> float:
        t0 = time.monotonic()
        name = self.create(handler, "sleep 3600", restart="Always")
        self.wait_phase(name, ("Running",))
        elapsed = time.monotonic() - t0
        self.delete(name)
        return elapsed

    def timed(self, handler: str, work: str) -> float:
        name = self.create(handler, f"read a x < /proc/uptime; {work}; read b y < /proc/uptime; echo $a $b")
        pod = self.wait_phase(name, ("Succeeded", "Failed"), timeout=600)
        log = self.client.logs(name, "default")
        self.delete(name)
        if pod["status"]["phase"] != "Succeeded":
            raise RuntimeError(f"the timed pod {name} failed: {log[-300:]}")
        return elapsed_from_uptimes(log)

    def idle_memory(self, handler: str, settle: float) -> int | None:
        name = self.create(handler, "sleep 3600", restart="Always")
        pod = self.wait_phase(name, ("Running",))
        time.sleep(settle)
        rel = self.cgroups.pod_path("prod", pod["metadata"]["uid"])
        raw = self.cgroups.read("memory", rel, "memory.usage_in_bytes") or \
            self.cgroups.read("memory", rel, "memory.current")
        self.delete(name)
        return int(raw) if raw else None


def measure(runs: Runs, handler: str, args: argparse.Namespace) -> dict[str, Any]:
    _log(f"{handler}: {args.pods} starts")
    latencies = [runs.start_latency(handler) for _ in range(args.pods)]
    _log(f"{handler}: CPU loop of {args.loop}, dd of {args.syscalls} bytes")
    cpu = statistics.median(runs.timed(handler, f"i=0; while [ $i -lt {args.loop} ]; do i=$((i+1)); done")
                            for _ in range(args.repeat))
    sys_s = statistics.median(runs.timed(handler, f"dd if=/dev/zero of=/dev/null bs=1 count={args.syscalls} "
                                                  "2>/dev/null") for _ in range(args.repeat))
    memory = runs.idle_memory(handler, args.settle)
    return {"start_p50_ms": round(1000 * percentile(latencies, 50), 1),
            "start_p99_ms": round(1000 * percentile(latencies, 99), 1),
            "starts": len(latencies),
            "cpu_loop_s": round(cpu, 3), "syscall_loop_s": round(sys_s, 3),
            "idle_pod_memory_mib": round(memory / 2**20, 1) if memory is not None else None}


def run(argv: list[str]) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="sigma bench runtimes")
    p.add_argument("--pods", type=int, default=50, help="pods started one after the other, per handler")
    p.add_argument("--loop", type=int, default=200_000, help="iterations of the CPU-bound shell loop")
    p.add_argument("--syscalls", type=int, default=20_000, help="bytes dd copies one at a time (2 calls each; "
                   "under runsc with ptrace, about 0.4 ms a call)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each loop (the median is reported)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds an idle pod runs before its memory is read")
    args = p.parse_args(argv)
    busybox = shutil.which("busybox")
    if os.geteuid() != 0 or busybox is None:
        raise SystemExit("sigma bench runtimes needs root (runtimes, cgroups) and busybox (apt busybox-static)")
    with tempfile.TemporaryDirectory(prefix="sigma-bench-runtimes-") as tmp:
        work = Path(tmp)
        busybox_layout(str(work / "layout"), busybox)
        ImageStore(str(work / "images")).import_path(str(work / "layout"))  # the agent's --image-dir
        with MasterProcess(work) as master, AgentProcess(work, master.url, NODE, cpus="2", memory="4Gi") as agent, \
                HttpClient(master.url, timeout=30) as client:
            node = _wait_node(client)
            labels = node["metadata"].get("labels") or {}
            available = [h for h in IMAGE_HANDLERS if labels.get(f"{LABEL_PREFIX}{h}") == "true"]
            missing = (node["metadata"].get("annotations") or {}).get("sigma.io/runtime-handlers-missing", "")
            runs = Runs(client, CgroupTree(root=agent.cgroup_root))
            figures = {h: measure(runs, h, args) for h in available}
    if "runc" in figures:
        base = dict(figures["runc"])
        relative_to(base, "cpu_loop_s", figures)
        relative_to(base, "syscall_loop_s", figures)
    return {"bench": "runtimes", **figures, "missing": missing, "pods": args.pods, "loop": args.loop,
            "syscalls": args.syscalls, "http_p99": "not measured (see sigma bench isolation)"}


def _wait_node(client: HttpClient, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            node = client.get("nodes", NODE)
            if (node["metadata"].get("labels") or {}).get(f"{LABEL_PREFIX}process"):
                return node
        except ApiError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the agent's node did not register")
