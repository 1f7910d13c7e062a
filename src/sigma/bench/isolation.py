"""`sigma bench isolation --json`: does prod keep its latency while batch fills the machine?

A real `sigma master` subprocess and a real `sigma agent` subprocess (own cgroup root, own
state directory, like `sigma up`) run a prod HTTP service (sigma.bench.latency_server, a
fixed amount of work per request) as a sigma-prod pod. A load generator in this process
drives it open-loop at a fixed rate (sigma.bench.loadgen: latency counted from when each
request was due). Three runs of `--seconds` each:

1. alone: the service and nothing else;
2. co-located, isolated: `--batch-pods` busy-loop pods with sigma-batch priority, under the
   agent's batch parent (cpu.idle=1; the NodeSLO's threshold 1.0 keeps nothing back, so
   the suppress step sets no quota), then again under the cluster default threshold (0.65:
   the suppress quota caps batch at 0.65 x capacity - prod usage), reported apart as
   `default_threshold`, and once more under the NodeSLO's cpuset suppress policy (batch
   confined to whole CPUs instead of a quota) as `default_threshold_cpuset`;
3. co-located, unisolated: the same busy loops as sigma-prod pods with the service's cpu
   request, i.e. the same class at equal weight: what a cluster without co-location
   isolation gives them.

The node's NodeSLO sets cpuThreshold 1.0 for the run: the threshold is a policy (the default
0.65 keeps a third of the node back for prod bursts, capping batch by design); the question
here is whether the mechanism holds when batch may take every cycle prod leaves.

The load generator stands for the service's clients, which in a cluster run on other
machines. Here it shares the node, so during each run this process is moved into the node's
prod tier (a cgroup of its own beside the service's, cpu and cpuacct hierarchies only):
left in the root cgroup it would compete with the node's whole pod tree at equal weight,
batch included, and its own wake-up delays would be measured as the service's latency.

Accounting (this is a 2-core machine, and the load generator is not free):
- prod CPU = the agent's prod cgroup: the service, and the load generator inside it (it
  exists only to serve prod, so it counts on prod's side);
- batch CPU = the batch parent's cpuacct; machine_cpu_util = busy / all cores, /proc/stat;
- batch_share_of_idle = batch CPU / (cores - prod CPU). Everything else on the machine (the
  master, the agent, anyone else's work) is neither, and also beats SCHED_IDLE batch, so
  on a shared machine this ratio is low for reasons outside Sigma; `batch_share_of_free` =
  batch / (batch + idle time left on the cores) says how much of what nobody else wanted
  batch took. The load averages before and after are reported for that reason.
"""

from __future__ import annotations

import argparse
import ctypes
import inspect
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.podspec import Resources
from sigma.api.errors import ApiError
from sigma.bench import latency_server
from sigma.bench.loadgen import LoadResult, run_load
from sigma.bench.masterproc import BenchMaster, free_port
from sigma.client.http import HttpClient
from sigma.podpython import workload_python
from sigma.quantity import cpu_millis

NODE = "bench-isolation"
SERVICE_CPU = "500m"
SPIN = "import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\nwhile True:\n    pass\n"


def _log(msg: str) -> None:
    print(f"[isolation] {msg}", file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (ApiError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _proc_stat() -> tuple[int, int]:
    """(busy, total) jiffies of all cores."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


LOADGEN_CGROUP = "bench-loadgen"


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup per controller ("" for the v2 unified hierarchy)."""
    out: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                out[controller] = path
    return out


@contextmanager
def in_prod_tier(cgroups: CgroupTree) -> Iterator[None]:
    """Run this process inside the node's prod tier (cpu and cpuacct), then move it back to
    where it was and remove its cgroup."""
    rel = cgroups.ensure_pod("prod", LOADGEN_CGROUP, Resources(cpu_request_millis=cpu_millis(SERVICE_CPU)))
    home = _own_cgroups()
    moved: list[tuple[str, str]] = []
    try:
        for controller in ("cpu", "cpuacct"):
            if controller in cgroups.hierarchies:
                hierarchy = cgroups.hierarchies[controller]
                original = home.get(controller, home.get("", "/"))
                with open(os.path.join(hierarchy, rel, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
                moved.append((hierarchy, original))
        yield
    finally:
        for hierarchy, original in moved:
            with open(os.path.join(hierarchy, original.lstrip("/"), "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        cgroups.remove(rel)


class Phase:
    """CPU counters around one measured run."""

    def __init__(self, cgroups: CgroupTree) -> None:
        self.cg = cgroups

    def _cpu_ns(self, tier: str) -> int:
        return int(self.cg.read("cpuacct", f"{self.cg.root}/{tier}", "cpuacct.usage") or 0)

    def __enter__(self) -> Phase:
        self.stat0, self.own0 = _proc_stat(), time.process_time()
        self.prod0, self.batch0, self.t0 = self._cpu_ns("prod"), self._cpu_ns("batch"), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self.t0
        busy, total = (b - a for a, b in zip(self.stat0, _proc_stat(), strict=True))
        cores = os.cpu_count() or 1
        self.util = busy / total if total else 0.0
        self.idle_cores = (total - busy) / total * cores if total else 0.0
        self.loadgen = (time.process_time() - self.own0) / seconds
        self.prod = (self._cpu_ns("prod") - self.prod0) / 1e9 / seconds  # the load generator included
        self.batch = (self._cpu_ns("batch") - self.batch0) / 1e9 / seconds
        self.cores = cores


class Bench:
    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        self.workdir, self.args = workdir, args
        self.cgroup_root = f"sigma-bench-{uuid.uuid4().hex[:8]}"
        self.cgroups = CgroupTree(root=self.cgroup_root)
        self.master = BenchMaster(workdir, extra_args=("--option", "level0_period_s=1"))
        self.agent: subprocess.Popen[bytes] | None = None
        self.client: HttpClient | None = None
        self.port = free_port()
        self.python, self.security = workload_python()

    def start(self) -> HttpClient:
        self.master.start()
        with open(self.workdir / "agent.log", "ab") as out:
            self.agent = subprocess.Popen(
                [sys.executable, "-m", "sigma", "agent", "--master", self.master.url, "--node-name", NODE,
                 "--state-dir", str(self.workdir / "agent"), "--listen", "127.0.0.1:0", "--address", "127.0.0.1",
                 "--cgroup-root", self.cgroup_root, "--metrics-interval", "1", "--drain-on-exit"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent)
        self.client = client = HttpClient(self.master.url, timeout=10)
        _wait("the node", lambda: client.get("nodes", NODE))
        client.create("nodeslos", {"apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": NODE},
                                   "spec": {"cpuThreshold": 1.0}})
        return client

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.agent is not None and self.agent.poll() is None:
            self.agent.terminate()  # --drain-on-exit: stops every pod, removes the cgroup tree
            try:
                self.agent.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self.master.stop()
        if self.cgroups.exists(self.cgroup_root):
            self.cgroups.remove(self.cgroup_root)

    def pod(self, name: str, command: list[str], priority_class: str, env: dict[str, str] | None = None) -> None:
        assert self.client is not None
        container: dict[str, Any] = {"name": "main", "command": command, "securityContext": self.security,
                                     "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
        if priority_class == "sigma-prod":
            container["resources"] = {"requests": {"cpu": SERVICE_CPU}}
        self.client.create("pods", {
            "metadata": {"name": name, "labels": {"sigma.io/qos": "LS" if priority_class == "sigma-prod" else "BE"}},
            "spec": {"nodeName": NODE, "priorityClassName": priority_class, "terminationGracePeriodSeconds": 2,
                     "containers": [container]}}, "default")

    def answers(self) -> bool:
        socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        return True

    def running(self, names: list[str]) -> None:
        assert self.client is not None
        client = self.client
        _wait(f"pods {names} Running", lambda: all(
            (client.get("pods", n, "default").get("status") or {}).get("phase") == "Running" for n in names))

    def delete(self, names: list[str]) -> None:
        assert self.client is not None
        client = self.client
        for name in names:
            client.delete("pods", name, "default")

        def gone() -> bool:
            left = {p["metadata"]["name"] for p in client.list("pods", "default")["items"]}
            return not left & set(names)

        _wait(f"pods {names} gone", gone)

    def measure(self, label: str) -> tuple[LoadResult, Phase]:
        time.sleep(self.args.settle)  # the suppress loop and the batch pods reach their steady state
        with in_prod_tier(self.cgroups), Phase(self.cgroups) as phase:
            result = run_load("127.0.0.1", self.port, self.args.rate, self.args.seconds)
        _log(f"{label}: p50 {result.percentile(50):.2f} ms, p99 {result.percentile(99):.2f} ms, "
             f"{len(result.latencies_ms)} ok / {result.errors} errors; cpu util {phase.util:.2f}, "
             f"prod {phase.prod:.2f} (loadgen {phase.loadgen:.2f}), batch {phase.batch:.2f} cores")
        return result, phase

    def run(self) -> dict[str, Any]:
        self.start()
        self.pod("web", [self.python, "-c", inspect.getsource(latency_server)], "sigma-prod",
                 {"PORT": str(self.port), "WORK": str(self.args.work)})
        self.running(["web"])
        _wait("the service", self.answers)
        alone, _ = self.measure("alone")
        spinners = [f"batch-{i}" for i in range(self.args.batch_pods)]
        for name in spinners:
            self.pod(name, [self.python, "-c", SPIN], "sigma-batch")
        self.running(spinners)
        isolated, phase = self.measure("co-located, isolated")
        quota = self.cgroups.batch_cpu_quota()
        # The cluster default threshold (0.65) keeps headroom back with the suppress quota.
        assert self.client is not None
        self.client.delete("nodeslos", NODE)
        suppressed, suppressed_phase = self.measure("co-located, isolated, default threshold (suppress quota)")
        suppressed_quota = self.cgroups.batch_cpu_quota()
        # The same threshold under the cpuset policy: batch confined to whole CPUs, no quota.
        self.client.create("nodeslos", {"apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": NODE},
                                        "spec": {"cpuThreshold": 0.65, "cpuSuppressPolicy": "cpuset"}})
        confined, confined_phase = self.measure("co-located, isolated, default threshold (cpuset policy)")
        confined_cpus = self.cgroups.cpus(f"{self.cgroup_root}/batch")
        self.delete(spinners)
        same_class = [f"spin-{i}" for i in range(self.args.batch_pods)]
        for name in same_class:
            self.pod(name, [self.python, "-c", SPIN], "sigma-prod")
        self.running(same_class)
        unisolated, _ = self.measure("co-located, unisolated (same class, equal weight)")
        p99_alone = alone.percentile(99)
        return {
            "bench": "isolation",
            "p99_alone_ms": round(p99_alone, 3),
            "p99_colocated_isolated_ms": round(isolated.percentile(99), 3),
            "p99_colocated_unisolated_ms": round(unisolated.percentile(99), 3),
            "p99_ratio": round(isolated.percentile(99) / p99_alone, 3),
            "p99_ratio_unisolated": round(unisolated.percentile(99) / p99_alone, 3),
            "machine_cpu_util": round(phase.util, 3),
            "batch_share_of_idle": round(phase.batch / max(phase.cores - phase.prod, 1e-9), 3),
            "batch_share_of_free": round(phase.batch / max(phase.batch + phase.idle_cores, 1e-9), 3),
            "p50_alone_ms": round(alone.percentile(50), 3),
            "p50_colocated_isolated_ms": round(isolated.percentile(50), 3),
            "prod_cores": round(phase.prod, 3), "loadgen_cores": round(phase.loadgen, 3),
            "batch_cores": round(phase.batch, 3), "batch_quota_millis_at_end": quota,
            "default_threshold": {**_variant(suppressed, suppressed_phase, p99_alone),
                                  "batch_quota_millis_at_end": suppressed_quota},
            "default_threshold_cpuset": {**_variant(confined, confined_phase, p99_alone),
                                         "batch_cpus_at_end": confined_cpus},
            "errors": alone.errors + isolated.errors + suppressed.errors + confined.errors + unisolated.errors,
            "rate": self.args.rate, "seconds": self.args.seconds, "batch_pods": self.args.batch_pods,
        }


def _variant(result: LoadResult, phase: Phase, p99_alone: float) -> dict[str, float]:
    """A co-located run under another setting, against the same alone baseline."""
    return {"p99_ms": round(result.percentile(99), 3), "p99_ratio": round(result.percentile(99) / p99_alone, 3),
            "machine_cpu_util": round(phase.util, 3), "batch_cores": round(phase.batch, 3)}


def run(argv: list[str]) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="sigma bench isolation")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each measured run")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second to the prod service")
    p.add_argument("--batch-pods", type=int, default=3, help="busy-loop pods beside the service")
    p.add_argument("--work", type=int, default=300, help="SHA-256 rounds per request")
    p.add_argument("--settle", type=float, default=3.0, help="seconds to wait before each run")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("sigma bench isolation needs root (cgroups)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sigma-bench-isolation-") as tmp:
        bench = Bench(Path(tmp), args)
        try:
            result = bench.run()
        finally:
            bench.stop()
    result["loadavg_before"] = [round(x, 2) for x in load_before]
    result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return result
