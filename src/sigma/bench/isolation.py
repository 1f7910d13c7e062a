"""`sigma bench isolation --json`: does prod keep its latency while batch fills the machine?

A real `sigma master` subprocess and a real `sigma agent` subprocess (own cgroup root, own
state directory, like `sigma up`) run a prod HTTP service (sigma.bench.latency_server, a
fixed amount of work per request) as a sigma-prod pod. A load generator in this process
drives it open-loop at a fixed rate (sigma.bench.loadgen: latency counted from when each
request was due). The runs:

1. alone and co-located, isolated, in `--rounds` alternating windows of one continuous load
   (`--seconds` in total for each side, pooled per side, so that a drift of the machine lands
   on both): `--batch-pods` busy-loop pods with sigma-batch priority under the agent's batch
   parent (cpu.idle=1; the NodeSLO's threshold 1.0 keeps nothing back, so the suppress step
   sets no quota), frozen by the cgroup freezer in the alone windows (no CPU, no wake-ups:
   for prod, as if absent). A run before the batch pods exist (`p99_alone_without_pods_ms`)
   checks that.
2. co-located, isolated, under the cluster default threshold (0.65: the suppress quota caps
   batch at 0.65 x capacity - prod usage), reported apart as `default_threshold`, and once
   more under the NodeSLO's cpuset suppress policy (batch confined to whole CPUs instead of
   a quota) as `default_threshold_cpuset`;
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
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.podspec import Resources
from sigma.api.errors import ApiError
from sigma.bench import latency_server
from sigma.bench.loadgen import LoadResult, run_load
from sigma.bench.masterproc import BenchMaster, free_port
from sigma.client.http import HttpClient
from sigma.demo.podpython import workload_python
from sigma.quantity import cpu_millis

NODE = "bench-isolation"
SERVICE_CPU = "500m"
# After a freeze or thaw, before a window's requests count: the spinners stop or resume at
# once, and the requests queued behind them drain.
ROUND_SETTLE_S = 0.5
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
    """CPU counters over one measured run, or summed over several: each `with phase:` block
    adds its interval (the interleaved rounds of one setting pool into one Phase)."""

    def __init__(self, cgroups: CgroupTree) -> None:
        self.cg = cgroups
        self.cores = os.cpu_count() or 1
        self.seconds = 0.0
        self._busy = self._total = self._prod_ns = self._batch_ns = 0
        self._own = 0.0

    def _cpu_ns(self, tier: str) -> int:
        return int(self.cg.read("cpuacct", self.cg.tier_path(tier), "cpuacct.usage") or 0)

    def __enter__(self) -> Phase:
        self.stat0, self.own0 = _proc_stat(), time.process_time()
        self.prod0, self.batch0, self.t0 = self._cpu_ns("prod"), self._cpu_ns("batch"), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.monotonic() - self.t0
        busy, total = (b - a for a, b in zip(self.stat0, _proc_stat(), strict=True))
        self._busy, self._total = self._busy + busy, self._total + total
        self._own += time.process_time() - self.own0
        self._prod_ns += self._cpu_ns("prod") - self.prod0
        self._batch_ns += self._cpu_ns("batch") - self.batch0

    @property
    def util(self) -> float:
        return self._busy / self._total if self._total else 0.0

    @property
    def idle_cores(self) -> float:
        return (self._total - self._busy) / self._total * self.cores if self._total else 0.0

    @property
    def loadgen(self) -> float:
        return self._own / self.seconds if self.seconds else 0.0

    @property
    def prod(self) -> float:  # the load generator included
        return self._prod_ns / 1e9 / self.seconds if self.seconds else 0.0

    @property
    def batch(self) -> float:
        return self._batch_ns / 1e9 / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Interleaved:
    """The alone and co-located sides of an interleaved measurement, each pooled over its
    windows, with every window's own p99."""

    alone: LoadResult
    colocated: LoadResult
    colocated_phase: Phase
    window_p99s_alone: list[float]
    window_p99s_colocated: list[float]


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
        self.node_slo({"cpuThreshold": 1.0})
        return client

    def node_slo(self, spec: dict[str, Any]) -> None:
        assert self.client is not None
        self.client.create("nodeslos", {"apiVersion": "sigma.io/v1", "kind": "NodeSLO", "metadata": {"name": NODE},
                                        "spec": spec})

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
        self.cgroups.remove_all()

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
        phase = Phase(self.cgroups)
        with in_prod_tier(self.cgroups), phase:
            result = run_load("127.0.0.1", self.port, self.args.rate, self.args.seconds)
        self._report(label, result, phase)
        return result, phase

    def measure_interleaved(self) -> Interleaved:
        """Alone and co-located in alternating windows of one continuous load, each side's
        windows pooled: a drift of the machine over the run (a neighbour's burst, the
        master's periodic work) lands on both sides instead of on whichever ran at the time,
        and the load generator keeps its connections and its loop throughout. In the alone
        windows the batch parent is frozen (cgroup freezer: its tasks take no CPU and get no
        wake-ups), which for prod is the same as batch being absent, without restarting pods.
        Requests are counted by when they were due; ROUND_SETTLE_S after each switch is left
        out of both sides."""
        rounds = max(1, self.args.rounds)
        window = self.args.seconds / rounds
        span = ROUND_SETTLE_S + window
        phases = (Phase(self.cgroups), Phase(self.cgroups))  # (alone, co-located)
        windows: list[tuple[int, float, float]] = []
        stop = threading.Event()

        def switch(t0: float) -> None:
            # Window k: alone when k is even; it starts with the switch, and its counters
            # and its requests start ROUND_SETTLE_S later.
            for k in range(2 * rounds):
                begin = t0 + k * span
                if stop.wait(max(0.0, begin - time.perf_counter())):
                    return
                self._freeze_batch(k % 2 == 0)
                if stop.wait(max(0.0, begin + ROUND_SETTLE_S - time.perf_counter())):
                    return
                with phases[k % 2]:
                    windows.append((k % 2, begin + ROUND_SETTLE_S, begin + span))
                    if stop.wait(max(0.0, begin + span - time.perf_counter())):
                        return

        time.sleep(self.args.settle)
        with in_prod_tier(self.cgroups):
            t0 = time.perf_counter() + 0.2  # after the load generator has its connections
            switcher = threading.Thread(target=switch, args=(t0,), name="isolation-switch")
            switcher.start()
            try:
                load = run_load("127.0.0.1", self.port, self.args.rate, 2 * rounds * span + 0.2)
            finally:
                stop.set()
                switcher.join()
                self._freeze_batch(False)
        pooled = [LoadResult([], 0, 0.0), LoadResult([], 0, 0.0)]
        window_p99s: tuple[list[float], list[float]] = ([], [])
        for side, begin, end in windows:
            part = load.window(begin, end)
            pooled[side] = pooled[side].merged(part)
            window_p99s[side].append(round(part.percentile(99), 3))
        self._report(f"alone (batch frozen), {rounds} windows", pooled[0], phases[0])
        self._report(f"co-located, isolated, {rounds} windows", pooled[1], phases[1])
        return Interleaved(pooled[0], pooled[1], phases[1], *window_p99s)

    def _freeze_batch(self, frozen: bool) -> None:
        self.cgroups.set_frozen(self.cgroups.batch_root, frozen)

    @staticmethod
    def _report(label: str, result: LoadResult, phase: Phase) -> None:
        _log(f"{label}: p50 {result.percentile(50):.2f} ms, p99 {result.percentile(99):.2f} ms, "
             f"{len(result.latencies_ms)} ok / {result.errors} errors; cpu util {phase.util:.2f}, "
             f"prod {phase.prod:.2f} (loadgen {phase.loadgen:.2f}), batch {phase.batch:.2f} cores")

    def run(self) -> dict[str, Any]:
        self.start()
        self.pod("web", [self.python, "-c", inspect.getsource(latency_server)], "sigma-prod",
                 {"PORT": str(self.port), "WORK": str(self.args.work)})
        self.running(["web"])
        _wait("the service", self.answers)
        without_pods, _ = self.measure("alone, no batch pods")
        spinners = [f"batch-{i}" for i in range(self.args.batch_pods)]
        for name in spinners:
            self.pod(name, [self.python, "-c", SPIN], "sigma-batch")
        self.running(spinners)
        interleaved = self.measure_interleaved()
        alone, isolated, phase = interleaved.alone, interleaved.colocated, interleaved.colocated_phase
        quota = self.cgroups.batch_cpu_quota()
        # The cluster default threshold (0.65) keeps headroom back with the suppress quota.
        assert self.client is not None
        self.client.delete("nodeslos", NODE)
        suppressed, suppressed_phase = self.measure("co-located, isolated, default threshold (suppress quota)")
        suppressed_quota = self.cgroups.batch_cpu_quota()
        # The same threshold under the cpuset policy: batch confined to whole CPUs, no quota.
        self.node_slo({"cpuThreshold": 0.65, "cpuSuppressPolicy": "cpuset"})
        confined, confined_phase = self.measure("co-located, isolated, default threshold (cpuset policy)")
        confined_cpus = self.cgroups.cpus(self.cgroups.batch_root)
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
            "p99_alone_without_pods_ms": round(without_pods.percentile(99), 3),
            "rounds": self.args.rounds,
            # Each window's own p99, in order: how far one window's tail strays from another's.
            "p99_windows_alone_ms": interleaved.window_p99s_alone,
            "p99_windows_colocated_ms": interleaved.window_p99s_colocated,
            "requests_alone": len(alone.latencies_ms), "requests_colocated": len(isolated.latencies_ms),
            "p50_alone_ms": round(alone.percentile(50), 3),
            "p50_colocated_isolated_ms": round(isolated.percentile(50), 3),
            "prod_cores": round(phase.prod, 3), "loadgen_cores": round(phase.loadgen, 3),
            "batch_cores": round(phase.batch, 3), "batch_quota_millis_at_end": quota,
            "default_threshold": {**_variant(suppressed, suppressed_phase, p99_alone),
                                  "batch_quota_millis_at_end": suppressed_quota},
            "default_threshold_cpuset": {**_variant(confined, confined_phase, p99_alone),
                                         "batch_cpus_at_end": confined_cpus},
            "errors": sum(r.errors for r in (without_pods, alone, isolated, suppressed, confined, unisolated)),
            "rate": self.args.rate, "seconds": self.args.seconds, "batch_pods": self.args.batch_pods,
        }


def _variant(result: LoadResult, phase: Phase, p99_alone: float) -> dict[str, float]:
    """A co-located run under another setting, against the same alone baseline."""
    return {"p99_ms": round(result.percentile(99), 3), "p99_ratio": round(result.percentile(99) / p99_alone, 3),
            "machine_cpu_util": round(phase.util, 3), "batch_cores": round(phase.batch, 3)}


def run(argv: list[str]) -> dict[str, Any]:
    # --variant network: prod's latency beside batch traffic on a shaped link (isolation_net).
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--variant", choices=("cpu", "network"), default="cpu")
    variant, argv = pre.parse_known_args(argv)
    if variant.variant == "network":
        from sigma.bench import isolation_net
        return isolation_net.run(argv)
    p = argparse.ArgumentParser(prog="sigma bench isolation")
    p.add_argument("--seconds", type=float, default=30.0, help="length of each measured run (alone and "
                   "co-located: in total over their rounds)")
    p.add_argument("--rounds", type=int, default=6, help="alternating windows of alone and co-located, "
                   "each --seconds / --rounds long")
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
