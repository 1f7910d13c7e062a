"""The master-facing agent: the imperative shell around NodeRuntime.

    register the Node ─► watch pods with spec.nodeName=NODE ─► node.sync(pods, now)
                                                                 │ statuses  → PATCH pods/NAME/status
                                                                 │ terminated → DELETE pod, grace 0
    beside it: Lease + Node heartbeats, NodeMetric reports, HTTP /logs /metrics /healthz

Every decision (start, restart, back-off, stop, what status to report) is the pod manager's;
this module only moves data between the API and the node. Sync runs on every pod change, at
the pod manager's wake-up time (back-off expiry) and every `resync_interval` regardless, so
a container that exits is noticed within that period.

Stopping the agent leaves containers running (the next agent adopts them) unless
`drain_on_exit` is set, as `sigma up` does: then every container is stopped and the
agent's cgroup tree removed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from prometheus_client import ProcessCollector

from sigma.agent import nodestatus
from sigma.agent.cgroups import CgroupTree
from sigma.agent.collector import Collector
from sigma.agent.heartbeat import Heartbeat
from sigma.agent.images import DEFAULT_ROOT, ImageStore
from sigma.agent.kernelfiles import read_stripped
from sigma.agent.netqos import NetQosManager
from sigma.agent.node import NodeRuntime
from sigma.agent.nodemetric import NodeMetricBuilder
from sigma.agent.podevents import killing_events, pulled_message, status_events
from sigma.agent.podmanager import TERMINAL, BackOff, PodError, PodManager, PodTerminated, ReportStatus
from sigma.agent.podnet.network import (
    DEFAULT_CNI_BIN_DIRS,
    DEFAULT_ETC_ROOT,
    PodNetwork,
    ensure_ip_forward,
    needs_network,
)
from sigma.agent.podnet.routes import RouteSync
from sigma.agent.podspec import grace_seconds
from sigma.agent.podwatch import PodWatcher
from sigma.agent.probe import Capabilities, probe
from sigma.agent.probes.runner import ProbeRunner, ProbeTarget, probe_targets
from sigma.agent.pulls import ImageOptions, ImagePulls, start_pulls
from sigma.agent.pullsecrets import api_secret_getter, pod_keyring
from sigma.agent.qos import QosManager, QosOptions
from sigma.agent.runtime.base import RUNNING, Runtime
from sigma.agent.runtime.handlers import handler_runtimes
from sigma.agent.runtime.hardening import NOBODY
from sigma.agent.runtime.probe_handlers import probe_handlers
from sigma.agent.runtime.process import ProcessRuntime
from sigma.agent.runtime.runc import RuncRuntime
from sigma.agent.runtime.shimmed import ShimRuntime
from sigma.agent.runtimeclasses import HandlerLookup
from sigma.agent.server import AgentServer
from sigma.agent.servicenet import ServiceNetOptions, ServiceNetwork
from sigma.agent.servingcert import ensure_serving_cert
from sigma.agent.streaming import Streams
from sigma.agent.usage_metrics import Families, PodUsage, Usage, usage_families
from sigma.agent.volumes.evict import evict_pod
from sigma.agent.volumes.manager import VolumeManager
from sigma.api.auth.identity import CLUSTER_CA_PATH, SERVING_CERT_ANNOTATION
from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.quantity import cpu_millis, memory_bytes

log = logging.getLogger("sigma.agent")

COMPONENT = "kubelet"  # the Events' source, as kubectl describe users know it
THREAD_JOIN_S = 2.0  # what a stop waits for the agent's loops, all together
DRAIN_MARGIN_S = 3.0  # past the drain's grace, for a killed container to be seen exited


@dataclass
class AgentOptions:
    cpus: str | None = None  # a CPU quantity ("4", "1500m"); default: the CPUs this process may use
    memory: str | None = None  # "8Gi"; default: MemTotal
    reserved: str = ""  # "cpu=500m,memory=512Mi": kept out of allocatable for the system
    host: str = "0.0.0.0"
    port: int = 10250  # 0 picks a free port; the Node publishes the real one
    address: str | None = None  # the InternalIP the master reaches us on; default: found out
    cgroup_root: str = "sigma"
    # The user process-runtime pods run as unless their securityContext names one (nobody);
    # None runs them as the agent's own user (root, usually): for trusted single-user setups.
    process_uid: int | None = NOBODY
    image_dir: str = DEFAULT_ROOT
    # Like kubelet's PLEG relist: how soon an exited container is noticed. A sync with nothing
    # to do only reads the shims' small state files.
    resync_interval: float = 1.0
    metrics_interval: float = 5.0
    metrics_window: float = 60.0
    lease_interval: float = 10.0
    node_status_interval: float = 10.0
    backoff: BackOff = field(default_factory=lambda: BackOff(base=10, cap=300))
    drain_on_exit: bool = False
    streaming_idle_timeout_s: float = 4 * 3600.0  # kubelet's --streaming-connection-idle-timeout
    drain_grace: float = 10.0
    qos: QosOptions = field(default_factory=QosOptions)  # idle, suppress, evict, resctrl (qos.py)
    # How long to wait for another agent holding the same state directory to exit (an
    # agent being stopped drains its pods first) before giving up.
    state_lock_wait: float = 60.0
    images: ImageOptions = field(default_factory=ImageOptions)  # registry, P2P, image GC (pulls.py)
    # A network namespace and an address per pod from the Node's podCIDR (podnet), host-gw
    # routes to the other nodes' pods. Off: pods share the host's network.
    pod_network: bool = False
    cni_bin_dirs: tuple[str, ...] = DEFAULT_CNI_BIN_DIRS
    enable_ip_forward: bool = False  # turn on IPv4 forwarding in the agent's network namespace
    services: ServiceNetOptions = field(default_factory=ServiceNetOptions)  # proxy + cluster DNS (servicenet.py)
    # Pod volumes and env references (sigma.agent.volumes); off: env values only, no volumes.
    volumes: bool = True
    volume_resync_interval: float = 10.0  # how soon a changed ConfigMap or Secret shows in running pods

    def __post_init__(self) -> None:
        if not self.streaming_idle_timeout_s > 0:  # NaN too
            raise ValueError(f"--streaming-connection-idle-timeout must be a positive number of seconds, "
                             f"not {self.streaming_idle_timeout_s}")


class NodeUnauthorized(Exception):
    """The master answers 401 to the agent: the message says how to get a credential."""


class Agent:
    def __init__(self, client: ApiClient, node_name: str, state_dir: str,
                 options: AgentOptions | None = None, caps: Capabilities | None = None) -> None:
        self.client, self.node_name, self.state_dir = client, node_name, state_dir
        self.options = opts = options or AgentOptions()
        self.caps = caps or probe()
        # Services: the nftables proxy and the cluster DNS, on one Service/EndpointSlice cache.
        self.servicenet = (ServiceNetwork(client, node_name, opts.services)
                           if opts.services.proxy or opts.services.dns else None)
        if self.servicenet is not None and self.servicenet.missing:
            self.caps = replace(self.caps, missing=(*self.caps.missing, self.servicenet.missing))
        log_capabilities(node_name, self.caps)
        os.makedirs(state_dir, exist_ok=True)
        # One agent per state directory (and so per node's containers): held until run() ends.
        self._state_lock: int | None = lock_state_dir(state_dir, opts.state_lock_wait)
        self.instance = instance_id(state_dir)
        self.cgroups = CgroupTree(root=opts.cgroup_root) if self.caps.root else None
        runtimes: dict[str, Runtime] = {
            "process": ProcessRuntime(state_dir, self.cgroups, default_uid=opts.process_uid,
                                      hidden_paths=[opts.image_dir])}  # masked in the pod sandbox
        self.pulls: ImagePulls | None = None
        self.handlers = probe_handlers(self.caps.root, bool(self.caps.runc))  # RuntimeClass handlers
        if self.caps.runc and self.caps.root:
            store, master = ImageStore(opts.image_dir), getattr(client, "base_url", "")
            self.pulls = start_pulls(store, opts.images, master, opts.host,
                                     opts.address or reachable_address(opts.host, master),
                                     on_done=lambda: self.watcher.changed.set(),  # a pull done: sync now
                                     master_http=getattr(client, "http", None))
            runtimes["runc"] = RuncRuntime(state_dir, store, self.cgroups, overlay=opts.images.overlay)
            runtimes.update(handler_runtimes(self.handlers, state_dir, store, self.cgroups, opts.images.overlay,
                                             opts.process_uid, [opts.image_dir]))  # crun, runsc, lxc
        for runtime in runtimes.values():  # a start the last agent died in (its rootfs mounted)
            if isinstance(runtime, ShimRuntime) and (unfinished := runtime.remove_unfinished()):
                log.warning("removed %d containers whose start never finished: %s", len(unfinished),
                            ", ".join(unfinished))
        self.network = PodNetwork(state_dir, opts.cni_bin_dirs, os.path.join(DEFAULT_ETC_ROOT, self.instance)) \
            if opts.pod_network else None
        self.volumes = VolumeManager(client, state_dir, self.address_hint(), lambda: (
            self.facts.cpu_millis, self.facts.memory_bytes), process_uid=opts.process_uid) if opts.volumes else None
        self.node = NodeRuntime(state_dir, runtimes, self.cgroups, PodManager(opts.backoff), pulls=self.pulls,
                                network=self.network, volumes=self.volumes)
        self.node.pull_keyring = partial(pod_keyring, api_secret_getter(client))  # imagePullSecrets
        self.node.handler_of = HandlerLookup(client).handler
        self.collector = Collector(self.node.cgroups)
        self.watcher = PodWatcher(client, node_name)
        self.node.on_actions_done = self.watcher.changed.set  # a pod's slow start ended: sync now
        self.address = opts.address or reachable_address(opts.host, getattr(client, "base_url", ""))
        self.streams = Streams(self.node, self.watcher.find,  # kubectl exec, attach, port-forward
                               lambda uid: self.network.netns_path(uid) if self.network is not None else None,
                               opts.streaming_idle_timeout_s)
        self.server = AgentServer(opts.host, opts.port, self.watcher.find, self.node.logs, self.render_metrics,
                                  ensure_serving_cert(state_dir, node_name, [self.address]), self.streams)
        self.facts = self._facts(list(runtimes))
        if self.network is not None:  # no pod takes the agent's own port as a hostPort
            self.network.reserved = replace(self.network.reserved, agent_ports=(self.server.port,))
            self.facts.conditions.append(self.network.condition())  # NetworkUnavailable, kept current
        self.heartbeat = Heartbeat(client, self.facts, opts.lease_interval, opts.node_status_interval,
                                   holder=f"{node_name}_{self.instance}")
        self.metric = NodeMetricBuilder(node_name, self.facts.cpu_millis, self.facts.memory_bytes,
                                        opts.metrics_window)
        self.qos = QosManager(client, node_name, self.node, self.watcher.pods, self.facts.cpu_millis,
                              self.facts.memory_bytes,
                              # A configured memory size makes the node a slice: only its pods count.
                              replace(opts.qos, memory_is_slice=opts.qos.memory_is_slice or bool(opts.memory)))
        # Batch pods' bandwidth (netqos.py): caps at the sandbox's ADD, lowered while prod needs the link.
        self.netqos = NetQosManager(client, node_name, self.network, self.watcher.pods) \
            if self.network is not None else None
        if self.network is not None and self.netqos is not None:
            self.network.shaping = self.netqos.sandbox_config
        self.stop_event = threading.Event()
        self._latest: tuple[Usage, list[PodUsage]] | None = None
        self._process_metrics = ProcessCollector(registry=None)  # the agent's own CPU, memory, fds
        self._unsent: dict[str, ReportStatus] = {}  # status writes that failed, retried next sync
        self._threads: list[threading.Thread] = []
        self._last_sync_error = ""
        self._last_errors: dict[str, tuple[str, str]] = {}
        self._last_status: dict[str, dict[str, Any]] = {}  # by pod uid: the status last reported
        self._killing: set[str] = set()  # pods whose deletion has been announced
        self._volumes_due = 0.0  # monotonic time of the next refresh of volumes
        self._pulls_seen: set[tuple[str, str]] = set()  # (pod uid, image) with a Pulling Event
        # Startup, liveness and readiness probes (sigma.agent.probes): a changed result syncs.
        self.probes = ProbeRunner(changed=self.watcher.changed.set, kill=self._probe_kill, event=self._probe_event)

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> None:
        """Serve until stop(); then stop the loops (and the pods, with drain_on_exit)."""
        self.server.start()
        try:
            if not self._register() or not self._trust_master():
                return
            loops: list[tuple[str, Callable[[threading.Event], None]]] = [
                ("agent-pods", self.watcher.run), ("agent-heartbeat", self.heartbeat.run),
                ("agent-metrics", self._metrics_loop), ("agent-qos", self.qos.run)]
            if self.network is not None:
                ensure_ip_forward(self.options.enable_ip_forward)
                loops.append(("agent-routes", RouteSync(self.client, self.node_name, on_own_node=self._own_node).run))
            if self.netqos is not None:
                loops.append(("agent-netqos", self.netqos.run))
            for name, target in loops:
                thread = threading.Thread(target=target, args=(self.stop_event,), name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
            if self.servicenet is not None:
                self._threads += self.servicenet.start(self.stop_event)
            self._sync_loop()
        finally:
            self.streams.stop()  # open exec sessions kill their commands
            self.server.stop()
            if self.pulls is not None:
                self.pulls.close()  # leaves the tracker, stops serving pieces
            joined_by = time.monotonic() + THREAD_JOIN_S  # one wait for them all, not one each
            for thread in self._threads:
                thread.join(timeout=max(0.0, joined_by - time.monotonic()))  # the pod watch may sit in a read
            if self.servicenet is not None:  # the table stays for a restart, goes with a drain
                self.servicenet.stop(remove_rules=self.options.drain_on_exit)
            if self.options.drain_on_exit:
                self.drain()
            self.node.close()
            self.probes.close()
            self.release()
            log.info("agent for node %s stopped", self.node_name)

    def release(self) -> None:
        """Let the next agent have the state directory."""
        lock, self._state_lock = self._state_lock, None
        if lock is not None:
            os.close(lock)

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"agent-{self.node_name}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
        self.watcher.changed.set()  # wake the sync loop

    def _own_node(self, node: dict[str, Any]) -> None:
        """The Node as the route loop read it: its podCIDR configures the pod network."""
        assert self.network is not None
        self.network.set_pod_cidr(str((node.get("spec") or {}).get("podCIDR") or ""))
        self.network.make_bridge()
        condition = self.network.condition()
        if condition not in self.facts.conditions:
            self.facts.conditions[:] = [c for c in self.facts.conditions if c.get("type") != condition["type"]]
            self.facts.conditions.append(condition)
            self.watcher.changed.set()  # pods waiting for the network may start now

    def drain(self) -> None:
        """Stop every container this agent runs and remove its cgroup tree. Each pod gets its
        own grace period (capped by drain_grace), as a deletion would give it: an agent told to
        stop takes as long as its pods need, not a fixed wait."""
        manager = self.node.manager
        manager.orphan_grace_seconds = self.options.drain_grace  # containers of pods no longer known
        leaving = [draining(pod, self.options.drain_grace) for pod in self.watcher.pods()]
        running = [c for c in self.node.observed() if c.state == RUNNING]
        log.info("draining node %s: %d pods, %d containers running (%s)", self.node_name, len(leaving),
                 len(running), ", ".join(f"{c.runtime}:{c.id}" for c in running[:5]))
        # A container past its grace is killed by its shim; the margin lets it be seen exited.
        # The whole drain must fit in the stop's deadline (sigma.agent.stopping), or the pods
        # are killed without what follows the loop (their rootfs released, their network).
        deadline = time.monotonic() + self.options.drain_grace + DRAIN_MARGIN_S
        # Until nothing runs: what exited is removed below, with a start still under way
        # (a pod worker busy with it would leave its pod's exited containers for later).
        while any(c.state == RUNNING for c in self.node.observed()) and time.monotonic() < deadline:
            try:
                self.node.sync(leaving, time.time())  # every pod is being deleted
            except Exception:  # a pod that cannot be stopped must not keep the others running
                log.exception("draining node %s", self.node_name)
                leaving = []
            time.sleep(0.1)
        log.info("draining node %s: containers stopped or past their grace; releasing the rest", self.node_name)
        self.node.close(timeout=1.0)  # no new actions; those under way may end now
        self._remove_every_container(unfinished=False)  # whatever outlived the grace, by force
        if self.cgroups is not None and self.cgroups.available:
            self.cgroups.remove_all()  # also kills a start still under way (a starved runc init)
        idle = self.node.close(timeout=10.0)  # so no pod worker makes a network after the release below
        # A start that ended after the pass above, and (once no worker can still be in one)
        # a start cut short before its shim ran; else the next agent's start removes it.
        self._remove_every_container(unfinished=idle)
        if self.network is not None:
            self.network.gc(set())  # every pod's network namespace and address, released
            log.info("draining node %s: every pod's network released", self.node_name)
        log.info("stopped every pod of node %s", self.node_name)

    def _remove_every_container(self, unfinished: bool) -> None:
        """Every container the runtimes know of; with `unfinished`, also those whose start
        never launched a shim (only once no pod worker can be starting one)."""
        for runtime in self.node.runtimes.values():
            for container in runtime.list():
                runtime.remove(container.id)
            if unfinished and isinstance(runtime, ShimRuntime):
                runtime.remove_unfinished()

    def kill_pods(self) -> None:
        """The drain's last resort, for a stop that is stuck (sigma.agent.stopping): every
        container killed at once, without grace, and the cgroup tree removed; each shim sees
        its container exit and ends. Reads files and sends signals only: no lock a stuck
        thread may hold."""
        log.warning("killing every pod of node %s", self.node_name)
        if self.cgroups is not None and self.cgroups.available:
            self.cgroups.remove_all(timeout=3.0)  # every process of every pod, whatever its runtime
        else:
            for runtime in self.node.runtimes.values():
                for container in runtime.list():
                    runtime.remove(container.id)
        for runtime in self.node.runtimes.values():
            if isinstance(runtime, ShimRuntime):
                runtime.release_rootfs_all()  # no overlay stays mounted after the agent

    # -- the sync loop -------------------------------------------------------------------
    def _sync_loop(self) -> None:
        while not self.stop_event.is_set():
            if not self.watcher.synced.wait(0.5):
                continue  # never sync before the first list: running pods would look orphaned
            self.watcher.changed.clear()
            wake_at = self.sync_once()
            timeout = self.options.resync_interval
            if wake_at is not None:
                timeout = max(0.05, min(timeout, wake_at - time.time()))
            self.watcher.changed.wait(timeout)

    def sync_once(self) -> float | None:
        try:
            pods = self.watcher.pods()
            result = self.node.sync(pods, time.time(), self.probes.health())
            self.probes.sync(probe_targets(pods, self.node.observed, self.node.runtimes, self.address))
        except Exception as err:  # one broken pod (or a cgroup hiccup) must not stop the agent
            if repr(err) != self._last_sync_error:  # the same failure every second is one log line
                log.exception("node sync failed (retrying every %.0fs)", self.options.resync_interval)
            self._last_sync_error = repr(err)
            return None
        self._last_sync_error = ""
        self._pod_events(result.statuses)
        for report in result.statuses:
            self._unsent[report.pod_uid] = report
        for report in list(self._unsent.values()):
            if self._write_status(report):
                self._unsent.pop(report.pod_uid, None)
        for gone in result.terminated:
            self._finish_deletion(gone)
        for error in result.errors:
            self._report_error(error)
        self._volume_sync()
        return result.wake_at

    def address_hint(self) -> str:
        return self.options.address or reachable_address(self.options.host, getattr(self.client, "base_url", ""))

    def _volume_sync(self) -> None:
        """Events of the volume manager, and its periodic refresh of running pods' volumes."""
        events, self.node.volume_events = self.node.volume_events, []
        for pod, reason, message in events:
            record_event(self.client, {**pod, "kind": "Pod", "apiVersion": "v1"}, "Warning", reason, message,
                         COMPONENT)
        if self.volumes is None or time.monotonic() < self._volumes_due:
            return
        self._volumes_due = time.monotonic() + self.options.volume_resync_interval
        network = self.network
        self.volumes.resync(self.watcher.pods(),
                            lambda uid: (network.pod_ips(uid) or [""])[0] if network is not None else self.address,
                            lambda pod, message: evict_pod(self.client, self.node, pod, message))

    def _pod_events(self, reports: list[ReportStatus]) -> None:
        """kubelet's Events (sigma.agent.podevents): from each status change, from deletions
        begun, from image pulls started and finished. Best effort: never fails the sync."""
        pods = {p["metadata"].get("uid"): p for p in self.watcher.pods()}
        emitted: list[tuple[dict[str, Any], tuple[str, str, str]]] = []
        for report in reports:
            pod = pods.get(report.pod_uid)
            if pod is None:
                continue
            old = self._last_status.get(report.pod_uid, pod.get("status"))
            emitted += [(pod, e) for e in status_events(pod, old, report.status)]
            self._last_status[report.pod_uid] = report.status
        for uid, pod in pods.items():
            if pod["metadata"].get("deletionTimestamp") and uid not in self._killing:
                self._killing.add(uid)
                emitted += [(pod, e) for e in killing_events(pod)]
        pulling = set(self.pulls.pulling()) if self.pulls is not None else set()
        for uid, pod in pods.items():
            for container in (pod.get("spec") or {}).get("containers") or []:
                image = container.get("image") or ""
                key = (uid, image)
                if image in pulling and key not in self._pulls_seen:
                    self._pulls_seen.add(key)
                    emitted.append((pod, ("Normal", "Pulling", f'Pulling image "{image}"')))
                elif image and image not in pulling and key in self._pulls_seen:
                    self._pulls_seen.discard(key)
                    done = self.pulls.outcome(image) if self.pulls is not None else None
                    if done is not None and done.ok:  # a failed pull says Failed (status_events)
                        emitted.append((pod, ("Normal", "Pulled", pulled_message(image, done.seconds, done.size))))
        for uid in [u for u in self._last_status if u not in pods]:
            del self._last_status[uid]
        self._killing &= set(pods)
        self._pulls_seen = {k for k in self._pulls_seen if k[0] in pods}
        for pod, (kind, reason, message) in emitted:
            record_event(self.client, {**pod, "kind": "Pod", "apiVersion": "v1"}, kind, reason, message, COMPONENT)

    def _probe_kill(self, target: ProbeTarget, grace: float | None) -> None:
        """A liveness or startup probe failed: stop the container; the pod manager restarts
        it (restartPolicy, back-off). The probe's terminationGracePeriodSeconds, else the pod's."""
        runtime = self.node.runtimes.get(target.runtime)
        if runtime is not None:
            runtime.stop(target.container_id, grace_seconds(dict(target.pod)) if grace is None else grace)

    def _probe_event(self, target: ProbeTarget, kind: str, reason: str, message: str) -> None:
        record_event(self.client, {**target.pod, "kind": "Pod", "apiVersion": "v1"}, kind, reason, message, COMPONENT)

    def _report_error(self, error: PodError) -> None:
        """A pod that failed this sync (the others were synced) says why in an Event."""
        pod = next((p for p in self.watcher.pods() if p["metadata"].get("uid") == error.pod_uid), None)
        if pod is None:
            log.warning("sync of pod %s failed: %s", error.pod_uid, error.message)
            return
        if (error.pod_uid, error.message) != self._last_errors.get(error.pod_uid):
            log.warning("pod %s/%s: %s: %s", error.namespace, error.name, error.reason, error.message)
        self._last_errors[error.pod_uid] = (error.pod_uid, error.message)
        record_event(self.client, {**pod, "kind": "Pod", "apiVersion": "v1"}, "Warning", error.reason,
                     error.message, COMPONENT)

    def _write_status(self, report: ReportStatus) -> bool:
        """True when written, or when there is nothing left to write to."""
        address = self.facts.address
        cached = next((p for p in self.watcher.pods() if p["metadata"].get("uid") == report.pod_uid), None)
        if cached is None:
            return True  # the pod is gone from the master
        status = {**report.status, "hostIP": address, "hostIPs": [{"ip": address}]}
        # A hostNetwork pod (or any, without the pod network) has the node's address; a pod
        # of its own network has its sandbox's, and none until it has a sandbox.
        pod_ips = [address] if self.network is None or not needs_network(cached) else \
            self.network.pod_ips(report.pod_uid)
        if pod_ips:
            status.update(podIP=pod_ips[0], podIPs=[{"ip": ip} for ip in pod_ips])
        current = cached.get("status") or {}
        if current.get("phase") in TERMINAL and status.get("phase") != current.get("phase"):
            return True  # finished is final: a terminal pod is never reported back to running
        if all(current.get(k) == v for k, v in status.items()):
            return True  # already there (an agent restart re-reports everything once)
        try:
            updated = self.client.patch("pods", report.name, {"status": status}, report.namespace,
                                        subresource="status")
        except ApiError as err:
            if err.code == 404:
                return True
            log.warning("could not write the status of pod %s/%s: %s", report.namespace, report.name, err)
            return False
        except ConnectionError as err:
            log.warning("could not write the status of pod %s/%s: %s", report.namespace, report.name, err)
            return False
        self.watcher.remember(updated)
        return True

    def _finish_deletion(self, gone: PodTerminated) -> None:
        try:
            self.client.delete("pods", gone.name, gone.namespace, grace_period_seconds=0,
                               preconditions_uid=gone.pod_uid)
            log.info("pod %s/%s stopped and deleted", gone.namespace, gone.name)
        except ApiError as err:
            if err.code not in (404, 409):  # gone already, or replaced by a pod of the same name
                log.warning("could not finish deleting pod %s/%s: %s", gone.namespace, gone.name, err)
        except ConnectionError as err:
            log.warning("could not finish deleting pod %s/%s: %s", gone.namespace, gone.name, err)

    # -- metrics -------------------------------------------------------------------------
    def _metrics_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.options.metrics_interval):
            self.report_metrics()

    def report_metrics(self) -> None:
        now = time.time()
        try:
            node_usage, pod_usages = self.collector.collect(self.watcher.pods(), now)
        except OSError as err:
            log.warning("could not read usage: %s", err)
            return
        self._latest = (node_usage, pod_usages)
        metric = self.metric.build(now, node_usage, pod_usages)
        try:
            try:
                self.client.patch("nodemetrics", self.node_name, {"status": metric["status"]},
                                  subresource="status")
            except ApiError as err:
                if err.code != 404:
                    raise
                self.client.create("nodemetrics", metric)
        except (ApiError, ConnectionError) as err:
            log.warning("could not report the NodeMetric of %s: %s", self.node_name, err)

    def render_metrics(self) -> str:
        node, pods = (Usage(0.0, 0), []) if self._latest is None else self._latest
        netqos = self.netqos.families() if self.netqos is not None else []
        return Families([*usage_families(node, pods), *self.qos.families(), *netqos,
                         *self._process_metrics.collect()]).render()

    # -- start-up ------------------------------------------------------------------------
    def _register(self) -> bool:
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                # The Lease first: a node another live agent serves is not touched at all.
                self.heartbeat.renew_lease()
                self.heartbeat.register()
                log.info("node %s registered (agent endpoint %s:%d)", self.node_name, self.facts.address,
                         self.facts.port)
                return True
            except (ApiError, ConnectionError) as err:
                if isinstance(err, ApiError) and err.code in (400, 403, 422):
                    raise  # the Node we send is wrong: retrying cannot help
                if isinstance(err, ApiError) and err.code == 401:
                    # No credential, or one the master no longer knows: no retry fixes that.
                    raise NodeUnauthorized(
                        f"the master refuses this agent's credential (401 Unauthorized) for node {self.node_name}: "
                        "join with a bootstrap token made on the master's machine by `sigma token create` "
                        f"(`sigma token create --node {self.node_name}` to replace the node's credential), passed "
                        "with --bootstrap-token-file FILE or SIGMA_BOOTSTRAP_TOKEN") from None
                log.warning("cannot register node %s yet: %s; retrying in %.1fs", self.node_name, err, backoff)
            self.stop_event.wait(backoff)
            backoff = min(10.0, backoff * 2)
        return False

    def _trust_master(self) -> bool:
        """Load the cluster CA (GET /sigma/v1/ca, with our credential) into the HTTP server:
        until then it answers nobody but /healthz."""
        request_json = getattr(self.client, "request_json", None)
        if request_json is None:  # an in-process client (tests): no HTTP master, no CA to load
            log.warning("the master serves no cluster CA: /logs and /metrics will answer nobody")
            return True
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                answer = request_json("GET", CLUSTER_CA_PATH)
                self.server.trust_client_ca(str(answer["caCertificate"]))
                return True
            except ApiError as err:
                if err.code == 404:  # a master without authentication (in-process tests)
                    log.warning("the master serves no cluster CA: /logs and /metrics will answer nobody")
                    return True
                log.warning("cannot read the cluster CA yet: %s; retrying in %.1fs", err, backoff)
            except (OSError, KeyError, TypeError, ValueError) as err:  # unreachable, or not a CA in PEM
                log.warning("cannot read the cluster CA yet: %s; retrying in %.1fs", err, backoff)
            self.stop_event.wait(backoff)
            backoff = min(10.0, backoff * 2)
        return False

    def _facts(self, runtimes: list[str]) -> nodestatus.NodeFacts:
        opts = self.options
        reserved_cpu, reserved_mem = nodestatus.parse_reserved(opts.reserved)
        return nodestatus.NodeFacts(
            name=self.node_name,
            address=self.address,
            port=self.server.port,
            cpu_millis=cpu_millis(opts.cpus) if opts.cpus else nodestatus.host_cpu_millis(),
            memory_bytes=memory_bytes(opts.memory) if opts.memory else nodestatus.host_memory_bytes(),
            reserved_cpu_millis=reserved_cpu,
            reserved_memory_bytes=reserved_mem,
            kernel=os.uname().release,
            os_image=nodestatus.os_image(),
            arch=nodestatus.arch(),
            runtime_version=nodestatus.runtime_version(self.caps, runtimes),
            annotations={**self.caps.annotations(), SERVING_CERT_ANNOTATION: self.server.cert_sha256,
                         **self.handlers.annotations()},
            conditions=self.caps.conditions(),
            labels=self.handlers.labels(),
        )


def draining(pod: dict[str, Any], cap: float) -> dict[str, Any]:
    """The pod as if deleted with its own grace period, at most ``cap`` seconds."""
    meta = dict(pod.get("metadata") or {})
    meta["deletionTimestamp"] = meta.get("deletionTimestamp") or "draining"
    meta["deletionGracePeriodSeconds"] = min(grace_seconds(pod), cap)
    return {**pod, "metadata": meta}


class StateDirBusy(OSError):
    """Another agent holds the state directory."""


def lock_state_dir(state_dir: str, wait_s: float) -> int:
    """An exclusive flock on STATE/agent.lock, waited for up to ``wait_s``. The descriptor is
    not inherited by the shims and containers the agent starts (they outlive it), so the lock
    ends exactly when this agent does, however it ends."""
    path = os.path.join(state_dir, "agent.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait_s
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = _lock_holder(path)
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StateDirBusy(f"another agent (pid {holder}) holds {state_dir}; two agents may not run the "
                                   "same node's state") from None
            if not waited:
                log.warning("waiting for the agent holding %s (pid %s) to exit", state_dir, holder)
                waited = True
            time.sleep(0.2)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _lock_holder(path: str) -> str:
    return read_stripped(path) or "?"


def instance_id(state_dir: str) -> str:
    """This state directory's agent identity, made once: an agent restarted on the same
    state is the same holder of its node, another state directory is another agent."""
    path = os.path.join(state_dir, "agent-id")
    try:
        with open(path) as f:
            found = f.read().strip()
        if found:
            return found
    except FileNotFoundError:
        pass
    made = uuid.uuid4().hex[:12]
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the agent's state is private
    with os.fdopen(fd, "w") as f:
        f.write(made + "\n")
    os.replace(tmp, path)
    return made


def log_capabilities(node_name: str, caps: Capabilities, emit: Callable[..., None] | None = None) -> None:
    """One line of what the node has, then one line per missing capability, in plain words."""
    emit = emit or log.warning
    log.info("node %s: root=%s, cgroup v%s (%s), cpu.idle=%s, runc=%s, psi=%s, resctrl=%s", node_name,
             caps.root, caps.cgroup_version or "-", ",".join(caps.controllers) or "none", caps.cpu_idle,
             caps.runc or "absent", caps.psi, caps.resctrl)
    for sentence in caps.missing:
        emit("missing capability: %s", sentence)


def reachable_address(host: str, master_url: str) -> str:
    """The address to publish: the listen host if it is specific, else the local address
    the kernel would use to reach the master (a UDP connect sends nothing)."""
    if host not in ("", "0.0.0.0", "::"):
        return host
    target = master_url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]") or "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET6 if ":" in target else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((target, 9))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"
