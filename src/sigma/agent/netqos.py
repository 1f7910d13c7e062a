"""The agent's network QoS: batch pods' bandwidth, the thin shell around the network rung of
the ladder (sigma.colocation.netladder), run every ~1 s on nodes with --pod-network.

    sandbox ADD of a batch pod ─► sandbox_config: its caps (NodeSLO spec.network, a lower
                                  bandwidth annotation wins) as the bandwidth plugin's config,
                                  so the plugin puts the tbf qdiscs on its host side
    tick ─► /proc/net/dev: each pod's host-side veth, bytes per second since the last tick
         ─► tc: each batch pod's current tbf rates (veth: ingress, ifb: egress)
         ─► netladder.decide_batch_limits (pure)
         ─► `tc qdisc change` where the decision moved a limit

Prod pods keep what their annotations ask (the plugin alone, as before). A malformed
annotation on a batch pod does not fail its sandbox: the NodeSLO's cap applies and a
Warning Event on the pod names the annotation and the value used. A qdisc found with
another burst than Sigma's (the plugin's, at ADD) counts as unknown, so the first tick
rewrites it and the limit holds from then on. The NodeSLO is re-read every
`refresh_interval`; an unreachable master keeps the last one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from sigma.agent import podspec, qosplan
from sigma.agent.podnet import conflist, shaping
from sigma.agent.podnet.network import PodNetwork, bandwidth_config
from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.colocation.netladder import (
    DIRECTIONS,
    EGRESS,
    INGRESS,
    BatchPod,
    NetDecision,
    NetInputs,
    NetworkSLO,
    PodCaps,
    batch_caps,
    decide_batch_limits,
)
from sigma.colocation.slo import CLUSTER_DEFAULT, node_slo

log = logging.getLogger("sigma.agent.netqos")
COMPONENT = "sigma-agent"


@dataclass
class NetReport:
    """What the last tick saw and did, for /metrics."""

    prod_bps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, 0))
    batch_bps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, 0))
    budget_bits: dict[str, int] = field(default_factory=dict)
    squeezed: dict[str, bool] = field(default_factory=dict)
    limits: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)  # (namespace, name) -> dir -> bits


class NetQosManager:
    def __init__(self, client: ApiClient, node_name: str, network: PodNetwork,
                 pods: Callable[[], list[dict[str, Any]]], interval: float = 1.0, refresh_interval: float = 5.0,
                 net_dev: str = "/proc/net/dev") -> None:
        self.client, self.node_name, self.network, self.pods = client, node_name, network, pods
        self.interval, self.refresh_interval, self.net_dev = interval, refresh_interval, net_dev
        self.slo = NetworkSLO()
        self.report = NetReport()
        self._refreshed_at = float("-inf")
        self._previous: tuple[float, dict[str, tuple[int, int]]] | None = None
        self._warned: dict[str, tuple[str, ...]] = {}  # pod uid -> the problems said on it
        self._last_error = ""

    # -- the sandbox's ADD ---------------------------------------------------------------
    def sandbox_config(self, pod: dict[str, Any]) -> dict[str, Any]:
        """The bandwidth plugin's runtime config for the pod's ADD (PodNetwork.shaping)."""
        if podspec.tier(pod) != podspec.BATCH:
            return bandwidth_config(pod)  # a prod pod: its annotations, refused when malformed
        if self._refreshed_at == float("-inf"):
            self.refresh()
        caps = self._caps(pod)
        return {"bandwidth": {
            "ingressRate": caps.ingress_bits, "ingressBurst": shaping.burst_bytes(caps.ingress_bits) * 8,
            "egressRate": caps.egress_bits, "egressBurst": shaping.burst_bytes(caps.egress_bits) * 8}}

    def _caps(self, pod: dict[str, Any]) -> PodCaps:
        caps = batch_caps((pod.get("metadata") or {}).get("annotations"), self.slo)
        uid = podspec.uid(pod)
        if caps.problems and self._warned.get(uid) != caps.problems:
            self._warned[uid] = caps.problems
            for problem in caps.problems:
                log.warning("pod %s: %s", uid, problem)
                record_event(self.client, {**pod, "kind": "Pod", "apiVersion": "v1"}, "Warning", "InvalidBandwidth",
                             problem, COMPONENT)
        return caps

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick(started)
                self._last_error = ""
            except Exception as err:  # one bad round must not end the shaping for good
                if repr(err) != self._last_error:
                    log.exception("network qos tick failed (retrying every %.1fs)", self.interval)
                self._last_error = repr(err)
            stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def refresh(self) -> None:
        try:
            spec: dict[str, Any] = {}
            for name in (self.node_name, CLUSTER_DEFAULT):
                try:
                    spec = self.client.get("nodeslos", name).get("spec") or {}
                    break
                except ApiError as err:
                    if err.code != 404:
                        raise
            self.slo = node_slo(spec).network
            self._refreshed_at = time.monotonic()
        except (ApiError, ConnectionError) as err:
            log.warning("network qos: could not read the NodeSLO of %s (keeping the last): %s", self.node_name, err)

    def tick(self, now: float) -> NetDecision | None:
        """One round at monotonic time `now`; None on the first (rates need two readings)."""
        if now - self._refreshed_at >= self.refresh_interval:
            self.refresh()
        counters = shaping.read_net_dev(self.net_dev)
        previous, self._previous = self._previous, (now, counters)
        pods = []
        for pod in self.pods():
            if not qosplan.active(pod):
                continue
            links = shaping.host_links(self.network.cni_result(podspec.uid(pod)), conflist.BRIDGE)
            if links is not None:
                pods.append((pod, links))
        if previous is None or now <= previous[0]:
            return None
        rates = _rates(previous[1], counters, now - previous[0])
        prod = {d: 0 for d in DIRECTIONS}
        batch = {d: 0 for d in DIRECTIONS}
        batch_pods, by_uid = [], {}
        for pod, links in pods:
            sent, received = rates.get(links.veth, (0, 0))
            side = batch if podspec.tier(pod) == podspec.BATCH else prod
            side[EGRESS] += sent
            side[INGRESS] += received
            if podspec.tier(pod) != podspec.BATCH or links.ifb is None:
                continue  # a prod pod, or a batch pod made without shaping (not ours to shape)
            uid = podspec.uid(pod)
            by_uid[uid] = (pod, links)
            batch_pods.append(BatchPod(uid, self._caps(pod), _ours(links.ifb), _ours(links.veth)))
        decision = decide_batch_limits(NetInputs(self.slo, prod[EGRESS], prod[INGRESS], batch[EGRESS],
                                                 batch[INGRESS], batch_pods))
        for uid, change in decision.changes.items():
            pod, links = by_uid[uid]
            for direction, bits in change.items():
                dev = links.ifb if direction == EGRESS else links.veth
                assert dev is not None
                try:
                    shaping.change_rate(dev, bits)
                except OSError as err:  # a pod going away meanwhile: the next round knows
                    log.warning("network qos: pod %s: %s", uid, err)
        if decision.changes:
            log.info("network qos: %s; changed %s", decision.reason,
                     {by_uid[u][0]["metadata"].get("name"): c for u, c in decision.changes.items()})
        self.report = NetReport(prod, batch, decision.budget_bits, decision.squeezed, {
            (str(by_uid[u][0]["metadata"].get("namespace", "default")), str(by_uid[u][0]["metadata"].get("name"))): v
            for u, v in decision.limits.items()})
        return decision

    def families(self) -> list[Metric]:
        return net_families(self.report)


def _ours(dev: str) -> int | None:
    """The tbf's rate, or None when it is not as Sigma set it (unknown, or the plugin's burst)."""
    tbf = shaping.read_tbf(dev)
    if tbf is None or not shaping.sigmas_burst(tbf):
        return None
    return tbf.rate_bits


def _rates(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
           seconds: float) -> dict[str, tuple[int, int]]:
    """Bits per second (received, transmitted) per interface seen both times; a counter that
    went back (an interface re-made under the same name) counts as nothing."""
    out = {}
    for name, (rx, tx) in after.items():
        if name in before:
            rx0, tx0 = before[name]
            out[name] = (max(rx - rx0, 0) * 8 * 1.0 / seconds, max(tx - tx0, 0) * 8 * 1.0 / seconds)
    return {k: (int(v[0]), int(v[1])) for k, v in out.items()}


def net_families(report: NetReport) -> list[Metric]:
    """The network rung's state: traffic per tier, batch's budget, each batch pod's limit."""
    traffic = GaugeMetricFamily("sigma_agent_network_bits_per_second", "Pod traffic over the last interval, by tier "
                                "and direction (egress: sent by the pods).", labels=("tier", "direction"))
    budget = GaugeMetricFamily("sigma_agent_batch_network_budget_bits_per_second", "What batch pods may use "
                               "together: link x threshold - prod traffic.", labels=("direction",))
    squeezed = GaugeMetricFamily("sigma_agent_batch_network_squeezed", "1 while prod's traffic holds batch pods "
                                 "below their caps.", labels=("direction",))
    limits = GaugeMetricFamily("sigma_agent_batch_network_limit_bits_per_second", "Each batch pod's current "
                               "bandwidth limit (tbf on its host-side veth and ifb).",
                               labels=("namespace", "pod", "direction"))
    for direction in DIRECTIONS:
        traffic.add_metric(("prod", direction), report.prod_bps.get(direction, 0))
        traffic.add_metric(("batch", direction), report.batch_bps.get(direction, 0))
        if direction in report.budget_bits:
            budget.add_metric((direction,), report.budget_bits[direction])
            squeezed.add_metric((direction,), 1 if report.squeezed.get(direction) else 0)
        for (namespace, name), values in sorted(report.limits.items()):
            if direction in values:
                limits.add_metric((namespace, name, direction), values[direction])
    return [traffic, budget, squeezed, limits]
