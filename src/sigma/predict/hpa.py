"""The HorizontalPodAutoscaler's decision, pure: Kubernetes' algorithm (autoscaling/v2,
resource metrics) from what one sync observed to the replicas it wants and the conditions it
reports. The controller (sigma.master.controllers.hpa) gathers the inputs and writes the
result; nothing here reads a clock or the API.

Per metric (the replica calculator): pods being deleted or Failed are ignored; Pending pods,
and for CPU pods not Ready (or Ready too recently for a full metric window, within the first
5 minutes), are "unready"; pods without a sample are "missing". With neither,
desired = ceil(ready pods x usage / target), unchanged within the tolerance (10%). Otherwise
the ratio is recomputed with missing pods at 100% of their request (a scale-down; at the
target if above 100%) or 0% (a scale-up), and unready pods at 0% on a scale-up; a
recomputation that changes direction or lands within tolerance keeps the current count.
Utilization = sum(usage) / sum(requests) over the pods with samples; a container without a
request for the resource makes the metric invalid ("missing request for cpu in container C
of Pod P").

Across metrics the largest proposal wins; when every metric is invalid (or some are and the
rest would scale down) nothing is scaled and ScalingActive is False with the first error.

Then the behavior (stabilisation and rate policies): the recommendation is held between
the lowest of the scale-up window and the highest of the scale-down window, and limited by
the policies (Pods or Percent per period, selectPolicy Max/Min/Disabled) counting the
scale events of each period, then by min/maxReplicas. Conditions AbleToScale and
ScalingLimited carry Kubernetes' reasons (ScaleDownStabilized, ScaleUpLimit,
TooManyReplicas, DesiredWithinRange...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from sigma.predict.hpa_behavior import limit_rate, record_scale, scale_down_limit, scale_up_limit, stabilize
from sigma.predict.hpa_types import (
    CPU,
    CPU_INITIALIZATION_PERIOD_S,
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    DEFAULT_TOLERANCE,
    INITIAL_READINESS_DELAY_S,
    Condition,
    Container,
    Decision,
    History,
    MetricStatus,
    MetricTarget,
    Pod,
    Policy,
    Proposal,
    Rules,
    Sample,
    Spec,
)

__all__ = [
    "CPU", "CPU_INITIALIZATION_PERIOD_S", "DEFAULT_SCALE_DOWN", "DEFAULT_SCALE_UP", "DEFAULT_TOLERANCE",
    "INITIAL_READINESS_DELAY_S", "Condition", "Container", "Decision", "History", "MetricStatus", "MetricTarget",
    "Pod", "Policy", "Proposal", "Rules", "Sample", "Spec", "decide", "limit_rate", "metric_name", "proportional",
    "record_scale", "resource_replicas", "scale_down_limit", "scale_up_limit", "stabilize"
]


# -- one metric ----------------------------------------------------------------------------
def _group(pods: tuple[Pod, ...], samples: Mapping[str, Sample], resource: str, now: float,
           ) -> tuple[int, set[str], set[str], set[str]]:
    """(ready count, unready, missing, ignored), as Kubernetes' groupPods."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        if pod.deleted or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        sample = samples.get(pod.name)
        if sample is None:
            missing.add(pod.name)
            continue
        if resource == CPU:
            if pod.ready is None or pod.start_time is None:
                not_ready = True
            else:
                since = pod.ready_since if pod.ready_since is not None else pod.start_time
                if pod.start_time + CPU_INITIALIZATION_PERIOD_S > now:
                    # Still starting: a sample must cover a whole window since the pod became Ready.
                    not_ready = not pod.ready or sample.timestamp < since + sample.window_s
                else:
                    # Later, only a pod that was never Ready is left out.
                    not_ready = not pod.ready and pod.start_time + INITIAL_READINESS_DELAY_S > since
            if not_ready:
                unready.add(pod.name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def _requests(pods: tuple[Pod, ...], resource: str) -> tuple[dict[str, int], str]:
    out: dict[str, int] = {}
    for pod in pods:
        total = 0
        for c in pod.containers:
            value = c.requests.get(resource)
            if value is None:
                return {}, f"missing request for {resource} in container {c.name} of Pod {pod.name}"
            total += value
        out[pod.name] = total
    return out, ""


def _within(ratio: float, rules_up: Rules, rules_down: Rules) -> bool:
    return 1.0 - rules_down.tolerance <= ratio <= 1.0 + rules_up.tolerance


def proportional(count: int, ratio: float, up_tolerance: float = DEFAULT_TOLERANCE,
                 down_tolerance: float = DEFAULT_TOLERANCE) -> int:
    """The HPA's core rule, shared with the PredictiveScaler's reactive part: ceil(count x
    usage/target), or `count` while the ratio is within the tolerances. (The epsilon keeps a
    product that is whole in exact arithmetic, 3 x 1.1/1.1, from rounding up.)"""
    if 1.0 - down_tolerance <= ratio <= 1.0 + up_tolerance:
        return count
    return math.ceil(count * ratio - 1e-9)


def _utilization(values: Mapping[str, int], requests: Mapping[str, int]) -> tuple[int, int, int] | None:
    """(utilization %, usage total, request total) over the pods that have a request."""
    used = sum(v for name, v in values.items() if name in requests)
    asked = sum(requests[name] for name in values if name in requests)
    if asked == 0:
        return None
    return used * 100 // asked, used, asked


def resource_replicas(spec: Spec, target: MetricTarget, current: int, pods: tuple[Pod, ...],
                      samples: Mapping[str, Sample] | None, now: float) -> Proposal:
    """Kubernetes' GetResourceReplicas (Utilization) or GetRawResourceReplicas (AverageValue)."""
    resource = target.resource
    failed = f"failed to get {resource} utilization" if target.type == "Utilization" else \
        f"failed to get {resource} usage"

    def error(message: str) -> Proposal:
        return Proposal(error=f"{failed}: {message}", reason="FailedGetResourceMetric")

    if not samples:
        return error(f"unable to get metrics for resource {resource}: no metrics returned from resource metrics API")
    if not pods:
        return error("no pods returned by selector while calculating replica count")
    values = {name: s.value for name, s in samples.items() if name in {p.name for p in pods}}
    ready, unready, missing, ignored = _group(pods, samples, resource, now)
    for name in ignored | unready:
        values.pop(name, None)
    if not values:
        return error("did not receive metrics for targeted pods (pods might be unready)")
    up, down = spec.scale_up, spec.scale_down
    if target.type == "Utilization":
        requests, problem = _requests(pods, resource)
        if problem:
            return error(problem)
        goal = target.utilization or 0
        measured = _utilization(values, requests)
        if measured is None or goal <= 0:
            return error("no metrics returned matched known pods")
        utilization, used, _ = measured
        ratio = utilization / goal
        status = MetricStatus(resource, used // len(values), utilization)

        def fill(pods_at: set[str], share: float) -> None:
            for name in pods_at:
                values[name] = int(requests.get(name, 0) * share)

        def recompute() -> float:
            again = _utilization(values, requests)
            return again[0] / goal if again is not None else ratio
        fallback_share = max(100, goal) / 100
    else:
        goal = target.average_value or 0
        if goal <= 0:
            return error("the target average value must be positive")
        usage = sum(values.values()) // len(values)
        ratio = usage / goal
        status = MetricStatus(resource, usage)

        def fill(pods_at: set[str], share: float) -> None:
            for name in pods_at:
                values[name] = int(goal * share)

        def recompute() -> float:
            return sum(values.values()) / len(values) / goal
        fallback_share = 1.0
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if _within(ratio, up, down):
            return Proposal(current, status)
        return Proposal(proportional(ready, ratio, 0.0, 0.0), status)
    if missing:
        if ratio < 1.0:
            fill(missing, fallback_share)  # a scale-down: missing pods at their request (or the target)
        elif ratio > 1.0:
            fill(missing, 0.0)  # a scale-up: missing pods use nothing
    if scale_up_with_unready:
        fill(unready, 0.0)
    new_ratio = recompute()
    if _within(new_ratio, up, down) or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return Proposal(current, status)
    replicas = proportional(len(values), new_ratio, 0.0, 0.0)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return Proposal(current, status)
    return Proposal(replicas, status)


def metric_name(target: MetricTarget) -> str:
    if target.type == "Utilization":
        return f"{target.resource} resource utilization (percentage of request)"
    return f"{target.resource} resource"


# -- one sync ------------------------------------------------------------------------------
def decide(spec: Spec, spec_replicas: int, pods: tuple[Pod, ...],
           samples: Mapping[str, Mapping[str, Sample] | None], history: History, now: float) -> Decision:
    """One sync of an autoscaler whose target has ``spec_replicas`` (the scale's spec).
    ``samples``: per resource, each pod's sample (None: the metrics API did not answer)."""
    if not history.recommendations:
        history = replace(history, recommendations=((now, spec_replicas),))
    able = Condition("AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's "
                     "current scale")
    if spec_replicas == 0 and spec.min_replicas != 0:
        return Decision(0, False, "", (able, Condition("ScalingActive", "False", "ScalingDisabled",
                                                       "scaling is disabled since the replica count of the target "
                                                       "is zero")), (), history)
    if spec_replicas > spec.max_replicas:
        return _bounded(spec, spec_replicas, spec.max_replicas, "Current number of replicas above Spec.MaxReplicas",
                        able, history, now)
    if spec_replicas < spec.min_replicas:
        return _bounded(spec, spec_replicas, spec.min_replicas, "Current number of replicas below Spec.MinReplicas",
                        able, history, now)
    best, best_name, statuses = 0, "", []
    invalid: list[Proposal] = []
    for target in spec.metrics:
        proposal = resource_replicas(spec, target, spec_replicas, pods, samples.get(target.resource), now)
        if proposal.error:
            invalid.append(proposal)
            continue
        if proposal.status is not None:
            statuses.append(proposal.status)
        if best == 0 or proposal.replicas > best:
            best, best_name = proposal.replicas, metric_name(target)
    if invalid and (len(invalid) >= len(spec.metrics) or best < spec_replicas):
        first = invalid[0]
        message = f"the HPA was unable to compute the replica count: {first.error}"
        error = f"invalid metrics ({len(invalid)} invalid out of {len(spec.metrics)}), first error is: {first.error}"
        return Decision(spec_replicas, False, error,
                        (able, Condition("ScalingActive", "False", first.reason, message)), tuple(statuses),
                        history, failed=True,
                        events=(("Warning", first.reason, first.error),
                                ("Warning", "FailedComputeMetricsReplicas", error)))
    active = Condition("ScalingActive", "True", "ValidMetricFound",
                       f"the HPA was able to successfully calculate a replica count from {best_name}")
    reason = ""
    if best > spec_replicas:
        reason = f"{best_name} above target"
    elif best < spec_replicas:
        reason = "All metrics below target"
    stabilized, able, history = stabilize(best, spec_replicas, history, spec, now)
    desired, why, message = limit_rate(stabilized, spec_replicas, history, spec, now)
    limited = Condition("ScalingLimited", "False" if desired == stabilized else "True", why, message)
    rescale = desired != spec_replicas
    if rescale:
        history = record_scale(history, spec, spec_replicas, desired, now)
    return Decision(desired, rescale, reason, (able, active, limited), tuple(statuses), history)


def _bounded(spec: Spec, current: int, desired: int, reason: str, able: Condition, history: History,
             now: float) -> Decision:
    """A target outside [min, max] is brought inside at once, before any metric is read."""
    return Decision(desired, True, reason, (able,), (), record_scale(history, spec, current, desired, now))
