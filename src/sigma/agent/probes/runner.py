"""The probe runner: the I/O shell around policy.py for every running container of a node.

One scheduler thread keeps a heap of (next probe time, container, probe); due probes run on
a small thread pool (bounded: a node with many slow probes queues them, it never spawns a
thread per probe), and a probe of one container never overlaps with itself. Each result
goes through policy.observe; what changes is handed to the agent through callbacks:

- ``changed()``: a container's started/ready flag moved; the agent syncs and writes the
  pod status once (so a status write follows a change, not every probe).
- ``kill(target, grace)``: a liveness or startup probe failed: stop the container; the pod
  manager then restarts it under the restartPolicy, with its back-off.
- ``event(target, type, reason, message)``: Unhealthy (throttled per probe), Killing.

The agent calls ``sync(targets)`` after every node sync: containers that appeared start
probing, containers gone (exited, removed) stop.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sigma.agent.podnet import netns_path_of
from sigma.agent.probes import handlers, policy
from sigma.agent.runtime.base import RUNNING, ContainerStatus, Runtime

log = logging.getLogger("sigma.agent.probes")

WORKERS = 4
# Where a pod's network namespace is bound when it has one (sigma-<pod uid>): its network
# probes run inside it. A pod without one shares the host's network and is probed there.

@dataclass(frozen=True)
class ProbeTarget:
    """One running container (one attempt) to probe."""

    container_id: str
    runtime: str
    pod: Mapping[str, Any]  # the pod object (for Events, its restartPolicy and grace)
    container: Mapping[str, Any]  # the container's spec (its probes, its named ports)
    started_at: float
    network: handlers.Target
    exec_in: handlers.Exec | None = None

    @property
    def probes(self) -> dict[str, policy.Probe]:
        return policy.container_probes(self.container)


@dataclass
class _Tracked:
    target: ProbeTarget
    probes: dict[str, policy.Probe]
    state: policy.Probing
    running: set[str] = field(default_factory=set)  # probes in flight
    reported: dict[str, float] = field(default_factory=dict)  # probe kind -> last Unhealthy Event


class ProbeRunner:
    def __init__(self, changed: Callable[[], None],
                 kill: Callable[[ProbeTarget, float | None], None],
                 event: Callable[[ProbeTarget, str, str, str], None],
                 workers: int = WORKERS, clock: Callable[[], float] = time.time) -> None:
        self._changed, self._kill, self._event, self._clock = changed, kill, event, clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
        self._lock = threading.Condition()
        self._tracked: dict[str, _Tracked] = {}
        self._heap: list[tuple[float, str, str]] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="agent-probes", daemon=True)
        self._thread.start()

    # -- the agent's side ----------------------------------------------------------------
    def sync(self, targets: list[ProbeTarget]) -> None:
        """Probe exactly these containers from now on."""
        wanted = {t.container_id: t for t in targets if t.probes}
        with self._lock:
            for gone in set(self._tracked) - set(wanted):
                del self._tracked[gone]  # its heap entries are skipped when they come up
            for cid, target in wanted.items():
                if cid not in self._tracked:
                    probes = target.probes
                    state = policy.begin(probes, target.started_at)
                    self._tracked[cid] = _Tracked(target, probes, state)
                    self._schedule(cid, state)
            self._lock.notify()

    def health(self) -> dict[str, policy.Health]:
        """started/ready of every probed container, by container id."""
        with self._lock:
            return {cid: t.state.health for cid, t in self._tracked.items()}

    def close(self) -> None:
        with self._lock:
            self._stopped = True
            self._tracked.clear()
            self._lock.notify()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- scheduling ----------------------------------------------------------------------
    def _schedule(self, cid: str, state: policy.Probing) -> None:
        for kind, tally in state.tallies.items():
            heapq.heappush(self._heap, (tally.next_at, cid, kind))

    def _loop(self) -> None:
        with self._lock:
            while not self._stopped:
                now = self._clock()
                while self._heap and self._heap[0][0] <= now:
                    _, cid, kind = heapq.heappop(self._heap)
                    self._maybe_start(cid, kind, now)
                wait = self._heap[0][0] - now if self._heap else None
                self._lock.wait(timeout=None if wait is None else max(0.01, min(wait, 5.0)))

    def _maybe_start(self, cid: str, kind: str, now: float) -> None:
        tracked = self._tracked.get(cid)
        if tracked is None or kind in tracked.running or tracked.state.killed:
            return
        tally = tracked.state.tallies[kind]
        if tally.next_at > now:
            return  # a stale entry: the probe was rescheduled since
        if kind not in policy.due(tracked.state, now):
            # Gated (liveness/readiness before the startup probe succeeded, or a startup
            # probe already done): look again one period later.
            if kind != policy.STARTUP:
                heapq.heappush(self._heap, (now + tracked.probes[kind].period, cid, kind))
            return
        tracked.running.add(kind)
        self._pool.submit(self._probe, tracked.target, tracked.probes[kind])

    def _probe(self, target: ProbeTarget, probe: policy.Probe) -> None:
        try:
            result = handlers.run(probe, target.network, target.exec_in)
        except Exception as err:  # a handler bug fails this probe, never the runner
            log.exception("probe %s of %s", probe.kind, target.container_id)
            result = handlers.Result(False, f"{type(err).__name__}: {err}")
        self._record(target, probe, result)

    def _record(self, target: ProbeTarget, probe: policy.Probe, result: handlers.Result) -> None:
        now = self._clock()
        events: list[tuple[str, str, str]] = []
        restart: policy.Restart | None = None
        with self._lock:
            tracked = self._tracked.get(target.container_id)
            if tracked is None or tracked.target is not target:
                return  # the container went away meanwhile
            tracked.running.discard(probe.kind)
            before = tracked.state.health
            tracked.state, restart = policy.observe(tracked.probes, tracked.state, probe.kind, result.ok, now)
            if not result.ok and policy.should_report_failure(tracked.reported.get(probe.kind), now):
                tracked.reported[probe.kind] = now
                events.append(("Warning", "Unhealthy", policy.failure_message(probe.kind, result.message)))
            if result.warning and policy.should_report_failure(tracked.reported.get("warning"), now):
                tracked.reported["warning"] = now
                events.append(("Warning", "ProbeWarning",
                               f"{policy.TITLE[probe.kind]} probe warning: {result.warning}"[:1024]))
            changed = tracked.state.health != before
            if changed and tracked.state.health.started and not before.started:
                self._schedule(target.container_id, tracked.state)  # liveness and readiness begin
            elif not tracked.state.killed:
                heapq.heappush(self._heap, (tracked.state.tallies[probe.kind].next_at, target.container_id,
                                            probe.kind))
            self._lock.notify()
        name = str(target.container.get("name", ""))
        if restart is not None:
            policy_name = str((target.pod.get("spec") or {}).get("restartPolicy") or "Always")
            events.append(("Normal", "Killing", restart.message(name, policy_name)))
        for kind, reason, message in events:
            self._event(target, kind, reason, message)
        if restart is not None:
            self._kill(target, restart.grace)
        if changed or restart is not None:
            self._changed()


def pod_netns_path(pod_uid: str) -> str | None:
    """The pod's own network namespace, when the pod network gave it one."""
    path = netns_path_of(pod_uid) if pod_uid else ""
    return path if path and os.path.exists(path) else None


def probe_targets(pods: list[dict[str, Any]], observed: Callable[[], list[ContainerStatus]],
                  runtimes: Mapping[str, Runtime], node_address: str) -> list[ProbeTarget]:
    """The running containers of live pods that have probes. ``observed`` is only called
    when some pod has a probe: a node without probes reads no container state for them."""
    live = {str(p["metadata"].get("uid")): p for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and any(policy.container_probes(c) for c in (p.get("spec") or {}).get("containers") or [])}
    if not live:
        return []
    out = []
    for c in observed():
        pod = live.get(c.pod_uid)
        runtime = runtimes.get(c.runtime)
        if c.state != RUNNING or pod is None or runtime is None:
            continue
        spec = next((s for s in pod["spec"].get("containers") or [] if s.get("name") == c.name), None)
        if spec is None:
            continue
        netns = pod_netns_path(c.pod_uid)
        pod_ip = str((pod.get("status") or {}).get("podIP") or "")
        # kubelet probes the pod IP; inside the pod's own namespace, without one, its loopback.
        host = pod_ip or ("127.0.0.1" if netns else node_address)
        ports = {str(p["name"]): int(p["containerPort"]) for p in spec.get("ports") or []
                 if p.get("name") and isinstance(p.get("containerPort"), int)}
        out.append(ProbeTarget(c.id, c.runtime, pod, spec, c.started_at or 0.0,
                               handlers.Target(host, ports, netns), _exec_for(runtime, c.id)))
    return out


def _exec_for(runtime: Runtime, container_id: str) -> handlers.Exec:
    def run(argv: list[str], timeout: float) -> tuple[int, str]:
        return runtime.exec(container_id, argv, timeout)

    return run
