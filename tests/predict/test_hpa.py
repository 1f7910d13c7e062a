"""The HorizontalPodAutoscaler's pure decision against Kubernetes' documented behaviour:
the replica calculator (tolerance, missing and unready pods), the conditions and their
reasons, stabilisation windows and rate policies."""

from __future__ import annotations

from sigma.predict.hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Container,
    History,
    MetricTarget,
    Pod,
    Policy,
    Rules,
    Sample,
    Spec,
    decide,
    resource_replicas,
    scale_down_limit,
    scale_up_limit,
)

NOW = 10_000.0
CPU50 = MetricTarget("cpu", "Utilization", utilization=50)


def spec(*metrics: MetricTarget, low: int = 1, high: int = 10, up: Rules = DEFAULT_SCALE_UP,
         down: Rules = DEFAULT_SCALE_DOWN) -> Spec:
    return Spec(low, high, metrics or (CPU50,), up, down)


def pod(name: str, cpu: int | None = 1000, **kw: object) -> Pod:
    requests = {"cpu": cpu} if cpu is not None else {}
    defaults: dict[str, object] = {"start_time": NOW - 3600, "ready_since": NOW - 3500}
    return Pod(name, (Container("main", requests),), **{**defaults, **kw})  # type: ignore[arg-type]


def usage(**values: int) -> dict[str, Sample]:
    return {name: Sample(v, NOW - 1, 15.0) for name, v in values.items()}


def conditions(decision: object) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in decision.conditions}  # type: ignore[attr-defined]


# -- the replica calculator ----------------------------------------------------------------
def test_scale_up_is_ceil_of_ready_pods_times_usage_over_target() -> None:
    # Kubernetes' TestReplicaCalcScaleUp: 300m, 500m, 700m of 1 core each at a 30% target.
    pods = (pod("a"), pod("b"), pod("c"))
    got = resource_replicas(spec(), MetricTarget("cpu", "Utilization", 30), 3, pods,
                            usage(a=300, b=500, c=700), NOW)
    assert (got.replicas, got.status.average_utilization, got.status.average_value) == (5, 50, 500)  # type: ignore


def test_scale_down_follows_the_same_rule() -> None:
    pods = tuple(pod(n) for n in "abcde")
    got = resource_replicas(spec(), CPU50, 5, pods, usage(a=100, b=300, c=500, d=250, e=250), NOW)
    assert (got.replicas, got.status.average_utilization) == (3, 28)  # type: ignore[union-attr]


def test_within_ten_percent_of_the_target_nothing_changes() -> None:
    pods = (pod("a"), pod("b"))
    assert resource_replicas(spec(), CPU50, 2, pods, usage(a=540, b=540), NOW).replicas == 2  # 54%: ratio 1.08
    assert resource_replicas(spec(), CPU50, 2, pods, usage(a=560, b=560), NOW).replicas == 3  # 56%: ratio 1.12
    assert resource_replicas(spec(), CPU50, 2, pods, usage(a=460, b=460), NOW).replicas == 2  # 46%: ratio 0.92


def test_a_wider_tolerance_from_the_behavior_holds_more() -> None:
    loose = Rules(0, "Max", DEFAULT_SCALE_UP.policies, tolerance=0.5)
    pods = (pod("a"), pod("b"))
    assert resource_replicas(spec(up=loose), CPU50, 2, pods, usage(a=700, b=700), NOW).replicas == 2


def test_missing_pods_count_as_using_their_whole_request_on_a_scale_down() -> None:
    pods = tuple(pod(n) for n in "abcd")
    # Three pods at 10%, one without a sample: 10% alone would give ceil(0.2 * 3) = 1; with
    # the missing pod at 100% the usage is 32% -> ceil(0.64 * 4) = 3.
    assert resource_replicas(spec(), CPU50, 4, pods, usage(a=100, b=100, c=100), NOW).replicas == 3


def test_missing_pods_count_as_idle_on_a_scale_up() -> None:
    pods = tuple(pod(n) for n in "abcd")
    # 100% on three pods (ratio 2); the missing pod at 0% -> 75% -> ceil(1.5 * 4) = 6.
    assert resource_replicas(spec(), CPU50, 4, pods, usage(a=1000, b=1000, c=1000), NOW).replicas == 6


def test_a_recomputation_that_changes_direction_keeps_the_current_count() -> None:
    pods = (pod("a"), pod("b"))
    # 40% (a scale-down); the missing pod at 100% makes it 70% (a scale-up): keep 2.
    assert resource_replicas(spec(), CPU50, 2, pods, usage(a=400), NOW).replicas == 2


def test_unready_pods_count_as_idle_on_a_scale_up() -> None:
    # Kubernetes' TestReplicaCalcScaleUpUnreadyLessScale: the unready pod at 0% -> 4, not 5.
    pods = (pod("a", ready=False, start_time=NOW - 60, ready_since=NOW - 60), pod("b"), pod("c"))
    got = resource_replicas(spec(), MetricTarget("cpu", "Utilization", 30), 3, pods,
                            usage(a=300, b=500, c=700), NOW)
    assert (got.replicas, got.status.average_utilization) == (4, 60)  # type: ignore[union-attr]


def test_unready_and_pending_pods_are_left_out_of_a_scale_down() -> None:
    pods = (pod("a"), pod("b"), pod("c", phase="Pending"))
    assert resource_replicas(spec(), CPU50, 3, pods, usage(a=100, b=100), NOW).replicas == 1


def test_deleted_and_failed_pods_are_ignored() -> None:
    pods = (pod("a"), pod("b", deleted=True), pod("c", phase="Failed"))
    got = resource_replicas(spec(), CPU50, 3, pods, usage(a=1000, b=0, c=0), NOW)
    assert got.replicas == 2  # only a counts: 100% -> ceil(2 * 1)


def test_a_pod_ready_for_less_than_a_metric_window_is_unready_while_starting() -> None:
    fresh = pod("a", start_time=NOW - 60, ready_since=NOW - 5)  # sample at NOW-1 covers 15 s: not yet
    settled = pod("b", start_time=NOW - 60, ready_since=NOW - 40)
    got = resource_replicas(spec(), CPU50, 2, (fresh, settled), usage(a=5000, b=1000), NOW)
    assert got.status.average_utilization == 100  # type: ignore[union-attr]  # a left out
    assert got.replicas == 2  # a scale-up counts a as idle: 1000m of 2000m is the 50% target


def test_after_the_initialisation_period_only_never_ready_pods_are_left_out() -> None:
    was_ready = pod("a", ready=False, start_time=NOW - 3600, ready_since=NOW - 60)
    never_ready = pod("b", ready=False, start_time=NOW - 3600, ready_since=NOW - 3590)
    got = resource_replicas(spec(), CPU50, 2, (was_ready, never_ready), usage(a=1000, b=9000), NOW)
    assert got.status.average_utilization == 100  # type: ignore[union-attr]  # only a


def test_a_container_without_a_request_makes_the_metric_invalid() -> None:
    got = resource_replicas(spec(), CPU50, 1, (pod("web-1", cpu=None),), usage(**{"web-1": 100}), NOW)
    assert got.error == "failed to get cpu utilization: missing request for cpu in container main of Pod web-1"
    assert got.reason == "FailedGetResourceMetric"


def test_no_samples_and_no_pods_are_errors() -> None:
    assert "no metrics returned from resource metrics API" in resource_replicas(spec(), CPU50, 1, (pod("a"),),
                                                                                {}, NOW).error
    assert "no pods returned by selector" in resource_replicas(spec(), CPU50, 1, (), usage(a=1), NOW).error
    assert "pods might be unready" in resource_replicas(spec(), CPU50, 1, (pod("a", phase="Pending"),),
                                                        usage(a=1), NOW).error


def test_average_value_targets_compare_the_mean_usage() -> None:
    target = MetricTarget("cpu", "AverageValue", average_value=200)
    got = resource_replicas(spec(target), target, 2, (pod("a", cpu=None), pod("b", cpu=None)),
                            usage(a=300, b=500), NOW)
    assert (got.replicas, got.status.average_value) == (4, 400)  # type: ignore[union-attr]  # no request needed


# -- one sync: conditions, bounds, several metrics -----------------------------------------
def test_a_sync_that_scales_up_reports_the_metric_and_limits() -> None:
    pods = (pod("a"),)
    got = decide(spec(high=3), 1, pods, {"cpu": usage(a=4000)}, History(), NOW)  # 400%: wants 8
    assert (got.desired, got.rescale) == (3, True)
    assert got.reason == "cpu resource utilization (percentage of request) above target"
    assert conditions(got) == {"AbleToScale": ("True", "ReadyForNewScale"),
                               "ScalingActive": ("True", "ValidMetricFound"),
                               "ScalingLimited": ("True", "TooManyReplicas")}
    assert got.history.scale_up_events == ((NOW, 2),)


def test_the_scale_up_rate_is_four_pods_or_double_per_fifteen_seconds() -> None:
    got = decide(spec(high=50), 1, (pod("a"),), {"cpu": usage(a=10_000)}, History(), NOW)  # wants 20
    assert got.desired == 5 and conditions(got)["ScalingLimited"] == ("True", "ScaleUpLimit")
    # 15 s later the policies count from 5 again: max(5 + 4, 5 * 2) = 10.
    pods = tuple(pod(n) for n in "abcde")
    later = decide(spec(high=50), 5, pods, {"cpu": usage(a=10_000, b=10_000, c=10_000, d=10_000, e=10_000)},
                   got.history, NOW + 16)
    assert later.desired == 10
    # Within the period, the events already spent it: from 1, at most 5.
    again = decide(spec(high=50), 5, pods, {"cpu": usage(a=10_000, b=10_000, c=10_000, d=10_000, e=10_000)},
                   got.history, NOW + 5)
    assert again.desired == 5 and not again.rescale


def test_a_missing_request_sets_scaling_active_false_and_keeps_the_replicas() -> None:
    got = decide(spec(), 2, (pod("a", cpu=None), pod("b")), {"cpu": usage(a=100, b=100)}, History(), NOW)
    assert got.failed and not got.rescale and got.desired == 2
    assert conditions(got)["ScalingActive"] == ("False", "FailedGetResourceMetric")
    message = next(c.message for c in got.conditions if c.type == "ScalingActive")
    assert message == ("the HPA was unable to compute the replica count: failed to get cpu utilization: "
                       "missing request for cpu in container main of Pod a")
    assert [e[1] for e in got.events] == ["FailedGetResourceMetric", "FailedComputeMetricsReplicas"]


def test_a_target_at_zero_replicas_disables_scaling() -> None:
    got = decide(spec(), 0, (), {"cpu": {}}, History(), NOW)
    assert not got.rescale and conditions(got)["ScalingActive"] == ("False", "ScalingDisabled")


def test_a_target_outside_the_bounds_is_brought_inside_before_metrics() -> None:
    over = decide(spec(high=4), 9, (), {"cpu": None}, History(), NOW)
    assert (over.desired, over.reason) == (4, "Current number of replicas above Spec.MaxReplicas")
    under = decide(spec(low=2), 1, (), {"cpu": None}, History(), NOW)
    assert (under.desired, under.reason) == (2, "Current number of replicas below Spec.MinReplicas")


def test_the_largest_proposal_of_several_metrics_wins() -> None:
    memory = MetricTarget("memory", "AverageValue", average_value=100)
    pods = (pod("a"), pod("b"))
    got = decide(spec(CPU50, memory), 2, pods, {"cpu": usage(a=500, b=500), "memory": usage(a=300, b=300)},
                 History(), NOW)
    assert got.desired == 6 and got.reason == "memory resource above target"
    assert [m.resource for m in got.current_metrics] == ["cpu", "memory"]


def test_an_invalid_metric_blocks_a_scale_down_but_not_a_scale_up() -> None:
    memory = MetricTarget("memory", "AverageValue", average_value=100)
    pods = (pod("a"), pod("b"))
    up = decide(spec(CPU50, memory), 2, pods, {"cpu": usage(a=1000, b=1000), "memory": None}, History(), NOW)
    assert up.desired == 4 and not up.failed
    down = decide(spec(CPU50, memory), 2, pods, {"cpu": usage(a=10, b=10), "memory": None}, History(), NOW)
    assert down.failed and down.desired == 2
    assert "invalid metrics (1 invalid out of 2)" in down.reason


# -- behavior: stabilisation and rate policies ---------------------------------------------
def test_scale_down_waits_for_the_highest_recommendation_of_five_minutes() -> None:
    pods = tuple(pod(n) for n in "abcd")
    busy = {"cpu": usage(a=500, b=500, c=500, d=500)}
    idle = {"cpu": usage(a=10, b=10, c=10, d=10)}
    first = decide(spec(), 4, pods, busy, History(), NOW - 200)
    held = decide(spec(), 4, pods, idle, first.history, NOW)
    assert (held.desired, held.rescale) == (4, False)
    assert conditions(held)["AbleToScale"] == ("True", "ScaleDownStabilized")
    after = decide(spec(), 4, pods, idle, held.history, NOW + 101)
    assert after.desired == 1 and after.reason == "All metrics below target"


def test_a_scale_up_window_applies_the_lowest_recent_recommendation() -> None:
    slow_up = Rules(60, "Max", DEFAULT_SCALE_UP.policies)
    history = History(recommendations=((NOW - 30, 2),))
    got = decide(spec(up=slow_up), 2, (pod("a"), pod("b")), {"cpu": usage(a=2000, b=2000)}, history, NOW)
    assert not got.rescale and conditions(got)["AbleToScale"] == ("True", "ScaleUpStabilized")


def test_select_policy_min_and_disabled() -> None:
    both = (Policy("Pods", 4, 15), Policy("Percent", 100, 15))
    assert scale_up_limit(10, History(), Rules(0, "Max", both), NOW) == 20
    assert scale_up_limit(10, History(), Rules(0, "Min", both), NOW) == 14
    assert scale_up_limit(10, History(), Rules(0, "Disabled", both), NOW) == 10
    halve = (Policy("Percent", 50, 15), Policy("Pods", 1, 15))
    assert scale_down_limit(10, History(), Rules(0, "Max", halve), NOW) == 5
    assert scale_down_limit(10, History(), Rules(0, "Min", halve), NOW) == 9
    got = decide(spec(down=Rules(0, "Disabled", halve)), 4, tuple(pod(n) for n in "abcd"),
                 {"cpu": usage(a=1, b=1, c=1, d=1)}, History(), NOW)
    assert not got.rescale and conditions(got)["ScalingLimited"] == ("True", "ScaleDownLimit")
