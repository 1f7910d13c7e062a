"""The HorizontalPodAutoscaler controller (autoscaling/v2, resource metrics).

Every `period_s` (Kubernetes' --horizontal-pod-autoscaler-sync-period, 15 s) it looks at
each autoscaler, on the periodic path the PredictiveScaler controller uses:

1. the target's scale (a Deployment or ReplicaSet: spec.replicas, status.replicas, selector)
   and its pods;
2. the pods' usage from the agents' NodeMetric reports, through the functions that serve
   metrics.k8s.io (sigma.api.resource_metrics): what `kubectl top pods` shows is what the
   autoscaler sees;
3. the decision, pure (sigma.predict.hpa.decide), with the recommendations and scale events
   this controller remembers per autoscaler (as kube-controller-manager does, in memory);
4. the target's replicas written as the scale subresource writes them (spec.replicas), the
   SuccessfulRescale / FailedGetResourceMetric... Events, and the status (currentReplicas,
   desiredReplicas, currentMetrics, conditions, lastScaleTime).

One autoscaler that fails (a missing target, an unreadable spec) gets its condition and
Event and the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.objects import clone, is_pod_ready, now_rfc3339, parse_rfc3339, set_condition
from sigma.api.resource_metrics import container_usages, memory_quantity, pod_samples, sample_of
from sigma.api.selectors import selector_to_string
from sigma.client.base import ApiClient
from sigma.client.events import record_event
from sigma.master.controllers.periodic import run_periodic
from sigma.predict import hpa
from sigma.quantity import QuantityError, cpu_millis, memory_bytes, parse_quantity

log = logging.getLogger("sigma.hpa")

COMPONENT = "horizontal-pod-autoscaler"
PERIOD_S = 15.0
TARGET_RESOURCES = {"Deployment": "deployments", "ReplicaSet": "replicasets"}


# -- pure: API objects into the decision's inputs and back -----------------------------------
def _units(resource: str, value: Any) -> int:
    return cpu_millis(value) if resource == "cpu" else memory_bytes(value)


def _tolerance(rules: dict[str, Any]) -> float:
    value = rules.get("tolerance")
    try:
        return float(parse_quantity(value)) if value is not None else hpa.DEFAULT_TOLERANCE
    except (QuantityError, TypeError):
        return hpa.DEFAULT_TOLERANCE


def _rules(rules: Any, defaults: hpa.Rules) -> hpa.Rules:
    if not isinstance(rules, dict):
        return defaults
    window = rules.get("stabilizationWindowSeconds")
    policies = tuple(hpa.Policy(str(p.get("type")), int(p.get("value") or 0), int(p.get("periodSeconds") or 0))
                     for p in rules.get("policies") or [] if isinstance(p, dict))
    return hpa.Rules(defaults.stabilization_s if window is None else int(window),
                     str(rules.get("selectPolicy") or "Max"), policies or defaults.policies, _tolerance(rules))


def spec_of(obj: dict[str, Any]) -> hpa.Spec:
    """The decision's view of an autoscaler's (defaulted, validated) spec."""
    spec = obj.get("spec") or {}
    targets = []
    for metric in spec.get("metrics") or []:
        source = (metric or {}).get("resource") or {}
        target = source.get("target") or {}
        name = str(source.get("name") or "cpu")
        average = target.get("averageValue")
        targets.append(hpa.MetricTarget(name, str(target.get("type") or "Utilization"),
                                        target.get("averageUtilization"),
                                        _units(name, average) if average is not None else None))
    behavior = spec.get("behavior") or {}
    return hpa.Spec(int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1), tuple(targets),
                    _rules(behavior.get("scaleUp"), hpa.DEFAULT_SCALE_UP),
                    _rules(behavior.get("scaleDown"), hpa.DEFAULT_SCALE_DOWN))


def _time(value: Any) -> float | None:
    try:
        return parse_rfc3339(value) if isinstance(value, str) else None
    except ValueError:
        return None


def pod_of(pod: dict[str, Any]) -> hpa.Pod:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    containers = []
    for c in spec.get("containers") or []:
        requests = ((c.get("resources") or {}).get("requests") or {}) if isinstance(c, dict) else {}
        units = {}
        for resource in ("cpu", "memory"):
            if requests.get(resource) is not None:
                with contextlib.suppress(QuantityError):  # the API refuses bad quantities: never seen here
                    units[resource] = _units(resource, requests[resource])
        containers.append(hpa.Container(str(c.get("name") or ""), units))
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return hpa.Pod(pod["metadata"]["name"], tuple(containers), str(status.get("phase") or "Pending"),
                   bool(pod["metadata"].get("deletionTimestamp")),
                   None if ready is None else is_pod_ready(pod), _time((ready or {}).get("lastTransitionTime")),
                   _time(status.get("startTime")))


def samples_of(pods: list[dict[str, Any]], reports: list[dict[str, Any]], now: float,
               ) -> dict[str, dict[str, hpa.Sample]]:
    """Per resource, each pod's usage as metrics.k8s.io serves it (the sum of its containers)."""
    out: dict[str, dict[str, hpa.Sample]] = {"cpu": {}, "memory": {}}
    every = pod_samples(reports, now)
    for pod in pods:
        sample = sample_of(pod, every)
        containers = container_usages(pod, sample) if sample is not None else None
        if sample is None or containers is None:
            continue
        stamp = _time(sample.timestamp) or now
        name = pod["metadata"]["name"]
        out["cpu"][name] = hpa.Sample(sum(c.cpu_millis for c in containers), stamp, sample.window_s)
        out["memory"][name] = hpa.Sample(sum(c.memory_bytes for c in containers), stamp, sample.window_s)
    return out


def _quantity(resource: str, value: int) -> str:
    return (f"{value}m" if value else "0") if resource == "cpu" else memory_quantity(value)


def metric_statuses(spec: hpa.Spec, found: tuple[hpa.MetricStatus, ...]) -> list[dict[str, Any]]:
    """status.currentMetrics in the order of spec.metrics (an unreadable one is empty, as
    Kubernetes leaves it)."""
    by_resource = {m.resource: m for m in found}
    out: list[dict[str, Any]] = []
    for target in spec.metrics:
        m = by_resource.get(target.resource)
        if m is None:
            out.append({"type": ""})
            continue
        current: dict[str, Any] = {"averageValue": _quantity(m.resource, m.average_value)}
        if m.average_utilization is not None:
            current["averageUtilization"] = m.average_utilization
        out.append({"type": "Resource", "resource": {"name": m.resource, "current": current}})
    return out


def new_status(old: dict[str, Any], obj: dict[str, Any], scale_status_replicas: int, decision: hpa.Decision,
               spec: hpa.Spec, now: float, rescaled: bool) -> dict[str, Any]:
    status: dict[str, Any] = clone(old)
    status["observedGeneration"] = obj["metadata"].get("generation", 1)
    status["currentReplicas"] = scale_status_replicas
    if not decision.failed:
        status["desiredReplicas"] = decision.desired
    status["currentMetrics"] = metric_statuses(spec, decision.current_metrics)
    if rescaled:
        status["lastScaleTime"] = now_rfc3339(now)
    for cond in decision.conditions:
        set_condition(status, {"type": cond.type, "status": cond.status, "lastTransitionTime": now_rfc3339(now),
                               "reason": cond.reason, "message": cond.message})
    return status


# -- the loop ------------------------------------------------------------------------------
class HpaController:
    name = "hpa"

    def __init__(self, client: ApiClient, period_s: float = PERIOD_S, clock: Callable[[], float] = time.time) -> None:
        self.client, self.period_s, self.clock = client, period_s, clock
        self._history: dict[str, hpa.History] = {}  # by autoscaler uid

    def run(self, stop: threading.Event) -> None:
        run_periodic(stop, self.sync_all, self.period_s, "horizontal pod autoscaling", log)

    def sync_all(self) -> None:
        autoscalers = self.client.list("horizontalpodautoscalers")["items"]
        if not autoscalers:
            self._history.clear()
            return
        reports = self.client.list("nodemetrics")["items"]
        for obj in autoscalers:
            try:
                self.sync(obj, reports)
            except ApiError as err:  # this one autoscaler; the others go on
                log.warning("autoscaler %s/%s: %s", obj["metadata"].get("namespace"), obj["metadata"]["name"], err)
            except Exception:
                log.exception("autoscaler %s/%s failed", obj["metadata"].get("namespace"), obj["metadata"]["name"])
        alive = {o["metadata"].get("uid") for o in autoscalers}
        for uid in list(self._history):
            if uid not in alive:
                del self._history[uid]

    def sync(self, obj: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        now = self.clock()
        meta, spec_obj = obj["metadata"], obj.get("spec") or {}
        namespace, uid = meta.get("namespace"), str(meta.get("uid"))
        ref = spec_obj.get("scaleTargetRef") or {}
        old_status = obj.get("status") or {}
        try:
            target = self.client.get(TARGET_RESOURCES.get(str(ref.get("kind")), "deployments"),
                                     str(ref.get("name")), namespace)
        except ApiError as err:
            if err.code != 404:
                raise
            message = f"the HPA controller was unable to get the target's current scale: {err.message}"
            record_event(self.client, obj, "Warning", "FailedGetScale", err.message, COMPONENT, now)
            status = clone(old_status)
            set_condition(status, {"type": "AbleToScale", "status": "False", "lastTransitionTime": now_rfc3339(now),
                                   "reason": "FailedGetScale", "message": message})
            self._write_status(obj, old_status, status)
            return
        spec = spec_of(obj)
        replicas = int((target.get("spec") or {}).get("replicas") or 0)
        status_replicas = int((target.get("status") or {}).get("replicas") or 0)
        selector = selector_to_string((target.get("spec") or {}).get("selector") or {})
        pods = self.client.list("pods", namespace, label_selector=selector)["items"] if selector else []
        samples = samples_of(pods, reports, now)
        decision = hpa.decide(spec, replicas, tuple(pod_of(p) for p in pods),
                              {t.resource: samples.get(t.resource) for t in spec.metrics},
                              self._history.get(uid, hpa.History()), now)
        self._history[uid] = decision.history
        for kind, reason, message in decision.events:
            record_event(self.client, obj, kind, reason, message, COMPONENT, now)
        status = new_status(old_status, obj, status_replicas, decision, spec, now, False)
        if decision.rescale and not decision.failed:
            try:
                self.client.patch(TARGET_RESOURCES[str(ref.get("kind"))], str(ref.get("name")),
                                  {"spec": {"replicas": decision.desired}}, namespace)
            except ApiError as err:
                record_event(self.client, obj, "Warning", "FailedRescale",
                             f"New size: {decision.desired}; reason: {decision.reason}; error: {err.message}",
                             COMPONENT, now)
                set_condition(status, {"type": "AbleToScale", "status": "False",
                                       "lastTransitionTime": now_rfc3339(now), "reason": "FailedUpdateScale",
                                       "message": f"the HPA controller was unable to update the target scale: "
                                                  f"{err.message}"})
            else:
                record_event(self.client, obj, "Normal", "SuccessfulRescale",
                             f"New size: {decision.desired}; reason: {decision.reason}", COMPONENT, now)
                status = new_status(old_status, obj, status_replicas, decision, spec, now, True)
                set_condition(status, {"type": "AbleToScale", "status": "True", "lastTransitionTime": now_rfc3339(now),
                                       "reason": "SucceededRescale",
                                       "message": f"the HPA controller was able to update the target scale to "
                                                  f"{decision.desired}"})
        self._write_status(obj, old_status, status)

    def _write_status(self, obj: dict[str, Any], old: dict[str, Any], status: dict[str, Any]) -> None:
        if status == old:
            return
        meta = obj["metadata"]
        self.client.patch("horizontalpodautoscalers", meta["name"],
                          {"status": status, "metadata": {"resourceVersion": meta.get("resourceVersion")}},
                          meta.get("namespace"), subresource="status")
