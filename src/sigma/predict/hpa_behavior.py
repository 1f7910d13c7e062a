"""The HorizontalPodAutoscaler's behavior, pure: stabilisation windows and rate policies
(Kubernetes' stabilizeRecommendationWithBehaviors and convertDesiredReplicasWithBehaviorRate),
applied by sigma.predict.hpa.decide after the metrics' proposal."""

from __future__ import annotations

import math
from dataclasses import replace

from sigma.predict.hpa_types import Condition, History, Rules, Spec


def _changed_within(events: tuple[tuple[float, int], ...], period_s: int, now: float) -> int:
    return sum(change for ts, change in events if ts > now - period_s)


def scale_up_limit(current: int, history: History, rules: Rules, now: float) -> int:
    if rules.select == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = current - _changed_within(history.scale_up_events, p.period_s, now) \
            + _changed_within(history.scale_down_events, p.period_s, now)
        proposals.append(start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100)))
    if not proposals:
        return current
    return min(proposals) if rules.select == "Min" else max(proposals)


def scale_down_limit(current: int, history: History, rules: Rules, now: float) -> int:
    if rules.select == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = current - _changed_within(history.scale_up_events, p.period_s, now) \
            + _changed_within(history.scale_down_events, p.period_s, now)
        proposals.append(start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100)))
    if not proposals:
        return current
    return max(proposals) if rules.select == "Min" else min(proposals)


def stabilize(recommended: int, current: int, history: History, spec: Spec, now: float,
              ) -> tuple[int, Condition, History]:
    """Hold the recommendation within the windows; records it in the history."""
    up_cut, down_cut = now - spec.scale_up.stabilization_s, now - spec.scale_down.stabilization_s
    up, down = recommended, recommended
    for ts, replicas in history.recommendations:
        if ts > up_cut:
            up = min(up, replicas)
        if ts > down_cut:
            down = max(down, replicas)
    result = min(max(current, up), down)
    longest = max(spec.scale_up.stabilization_s, spec.scale_down.stabilization_s)
    kept = (*(r for r in history.recommendations if r[0] > now - longest), (now, recommended))
    if result == recommended:
        cond = Condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
    elif result < recommended:
        cond = Condition("AbleToScale", "True", "ScaleUpStabilized",
                         "recent recommendations were lower than current one, applying the lowest recent "
                         "recommendation")
    else:
        cond = Condition("AbleToScale", "True", "ScaleDownStabilized",
                         "recent recommendations were higher than current one, applying the highest recent "
                         "recommendation")
    return result, cond, replace(history, recommendations=kept)


def limit_rate(desired: int, current: int, history: History, spec: Spec, now: float) -> tuple[int, str, str]:
    """Kubernetes' convertDesiredReplicasWithBehaviorRate: (replicas, reason, message)."""
    if desired > current:
        limit = max(scale_up_limit(current, history, spec.scale_up, now), current)
        if spec.max_replicas > limit:
            allowed, reason, message = limit, "ScaleUpLimit", \
                "the desired replica count is increasing faster than the maximum scale rate"
        else:
            allowed, reason, message = spec.max_replicas, "TooManyReplicas", \
                "the desired replica count is more than the maximum replica count"
        if desired > allowed:
            return allowed, reason, message
    elif desired < current:
        limit = min(scale_down_limit(current, history, spec.scale_down, now), current)
        if spec.min_replicas < limit:
            allowed, reason, message = limit, "ScaleDownLimit", \
                "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            allowed, reason, message = spec.min_replicas, "TooFewReplicas", \
                "the desired replica count is less than the minimum replica count"
        if desired < allowed:
            return allowed, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def record_scale(history: History, spec: Spec, before: int, after: int, now: float) -> History:
    """The scale event of a rescale, and only the events a policy period still counts."""
    longest = max([p.period_s for p in (*spec.scale_up.policies, *spec.scale_down.policies)], default=0)

    def recent(events: tuple[tuple[float, int], ...]) -> tuple[tuple[float, int], ...]:
        return tuple(e for e in events if e[0] > now - longest)
    up, down = recent(history.scale_up_events), recent(history.scale_down_events)
    if after > before:
        up += ((now, after - before),)
    elif after < before:
        down += ((now, before - after),)
    return replace(history, scale_up_events=up, scale_down_events=down)
