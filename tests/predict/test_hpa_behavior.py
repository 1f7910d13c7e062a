"""The HorizontalPodAutoscaler's rate policies, pure (sigma.predict.hpa_behavior): Pods and
Percent per period, the scale events a period already spent, min and max replicas."""

from __future__ import annotations

from sigma.predict.hpa_behavior import limit_rate, scale_down_limit, scale_up_limit
from sigma.predict.hpa_types import History, MetricTarget, Policy, Rules, Spec

NOW = 10_000.0


def spec(low: int = 1, high: int = 10, down: Rules | None = None) -> Spec:
    base = Spec(low, high, (MetricTarget("cpu", "Utilization", 50),))
    return base if down is None else Spec(low, high, base.metrics, base.scale_up, down)


def test_scale_down_policies_limit_the_rate() -> None:
    one_a_minute = Rules(0, "Max", (Policy("Pods", 1, 60),))
    assert scale_down_limit(5, History(), one_a_minute, NOW) == 4
    assert limit_rate(1, 5, History(), spec(down=one_a_minute), NOW) == (
        4, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")
    spent = History(scale_down_events=((NOW - 30, 1),))
    assert scale_down_limit(4, spent, one_a_minute, NOW) == 4  # the minute's pod is gone already
    assert limit_rate(1, 5, History(), spec(low=3), NOW) == (
        3, "TooFewReplicas", "the desired replica count is less than the minimum replica count")


def test_percent_scale_up_rounds_up_so_one_replica_can_grow() -> None:
    assert scale_up_limit(1, History(), Rules(0, "Max", (Policy("Percent", 10, 15),)), NOW) == 2
