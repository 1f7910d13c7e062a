from __future__ import annotations

from sigma.colocation.ladder import (
    NodeState,
    PodUsage,
    batch_parent_settings,
    choose_evictions,
    suppress_quota,
)
from sigma.colocation.resctrl import BATCH_GROUP, PROD_GROUP, RdtInfo, resctrl_plan

GIB = 2**30


def test_the_batch_parent_is_always_sched_idle_with_a_shares_fallback() -> None:
    v1, v2 = batch_parent_settings(1), batch_parent_settings(2)
    assert v1.files == v2.files == {"cpu.idle": "1"}
    assert v1.fallbacks["cpu.idle"] == {"cpu.shares": "2"}
    assert v2.fallbacks["cpu.idle"] == {"cpu.weight": "1"}


def test_suppress_gives_batch_what_prod_leaves_under_the_threshold() -> None:
    quota = suppress_quota(4000, 0.65, 1000)  # 2600 - 1000 = 1600m
    assert quota.millis == 1600
    assert quota.cgroup_v1() == {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "160000"}
    assert quota.cgroup_v2() == {"cpu.max": "160000 100000"}


def test_a_threshold_that_keeps_nothing_back_leaves_batch_without_a_quota() -> None:
    # Idle class alone gives prod every cycle; a quota would only add throttling.
    quota = suppress_quota(4000, 1.0, 1000)
    assert quota.millis is None and quota.quota_us is None and "without a quota" in quota.reason
    assert quota.cgroup_v1() == {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"}
    assert quota.cgroup_v2() == {"cpu.max": "max 100000"}
    assert suppress_quota(4000, 0.99, 1000).millis == 2960


def test_suppress_never_goes_below_the_floor() -> None:
    quota = suppress_quota(4000, 0.65, 3900, floor_millis=100)
    assert quota.millis == 100 and "floor" in quota.reason


def pods() -> list[PodUsage]:
    return [
        PodUsage("p", "web", 9000, batch=False, memory_bytes=40 * GIB),
        PodUsage("b", "small-batch", 5000, batch=True, memory_bytes=2 * GIB, batch_memory_request=2 * GIB),
        PodUsage("b", "big-batch", 5000, batch=True, memory_bytes=8 * GIB, batch_memory_request=8 * GIB),
        PodUsage("b", "free-tier", 3000, batch=True, memory_bytes=1 * GIB, batch_memory_request=GIB),
    ]


def names(evictions) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.name for e in evictions]


def test_memory_pressure_evicts_the_lowest_priority_then_the_biggest_user() -> None:
    # 92% used of 100Gi: evict down to 85% (7Gi): free-tier (1Gi) first, then big-batch (8Gi).
    node = NodeState(100 * GIB, 92 * GIB, 10_000, 100 * GIB)
    evictions = choose_evictions(node, pods())
    assert names(evictions) == ["free-tier", "big-batch"]
    assert "high watermark 90%" in evictions[0].reason


def test_memory_below_the_high_watermark_evicts_nothing() -> None:
    assert choose_evictions(NodeState(100 * GIB, 89 * GIB, 10_000, 100 * GIB), pods()) == []


def test_prod_pods_are_never_chosen_even_when_nothing_else_helps() -> None:
    only_prod = [PodUsage("p", "web", 9000, batch=False, memory_bytes=99 * GIB)]
    assert choose_evictions(NodeState(100 * GIB, 99 * GIB, 0, 0), only_prod) == []


def test_a_shrunken_batch_allocatable_evicts_until_requests_fit() -> None:
    # Requests 11Gi against 9Gi allocatable: free-tier goes first (10Gi left), then big-batch.
    node = NodeState(100 * GIB, 50 * GIB, 10_000, 9 * GIB)
    evictions = choose_evictions(node, pods())
    assert names(evictions) == ["free-tier", "big-batch"]
    assert "shrank" in evictions[1].reason


def test_resctrl_limits_batch_to_a_share_of_the_ways_and_bandwidth() -> None:
    plan = resctrl_plan(RdtInfo("fffff", (0, 1), mba=True, bandwidth_gran=10), 0.3, 35)
    assert plan.groups[PROD_GROUP] == ["L3:0=fffff;1=fffff", "MB:0=100;1=100"]
    # 20 ways x 0.3 = 6 ways -> 0x3f; 35% rounds down to the 10% granularity.
    assert plan.groups[BATCH_GROUP] == ["L3:0=3f;1=3f", "MB:0=30;1=30"]


def test_resctrl_without_mba_writes_only_cache_lines_and_respects_min_bits() -> None:
    plan = resctrl_plan(RdtInfo("7ff", (0,), min_cbm_bits=4), 0.1)
    assert plan.groups[BATCH_GROUP] == ["L3:0=f"]
    assert plan.groups[PROD_GROUP] == ["L3:0=7ff"]
