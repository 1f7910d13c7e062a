"""Pure helpers: pod readings, metrics, Prometheus text, the capability descriptions."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sigma.agent import podspec
from sigma.agent.probe import Capabilities, describe_missing
from sigma.agent.usage_metrics import PodUsage, Pressure, Sample, Usage, parse_psi, render_prometheus, usage

from .conftest import make_pod


@pytest.mark.parametrize(
    ("priority", "labels", "tier"),
    [
        (5500, {}, "batch"),
        (3000, {}, "batch"),
        (9000, {}, "prod"),
        (None, {"sigma.io/qos": "BE"}, "batch"),
        (None, {}, "prod"),
        (7000, {"sigma.io/qos": "LSR"}, "prod"),
    ],
)
def test_tier_comes_from_the_priority_band_or_the_be_label(
    priority: int | None, labels: dict[str, str], tier: str
) -> None:
    assert podspec.tier(make_pod("p", ["x"], priority=priority, labels=labels)) == tier


def test_batch_resources_and_oom_score() -> None:
    pod = make_pod(
        "b", ["x"], priority=5100, limits={"sigma.io/batch-cpu": "1500", "sigma.io/batch-memory": "1Gi"}
    )
    assert podspec.pod_resources(pod) == podspec.Resources(1500, 1500, 2**30, 2**30)
    assert podspec.oom_score_adj(pod) == 1000
    assert podspec.oom_score_adj(make_pod("p", ["x"], limits={"cpu": "1", "memory": "1Gi"})) == -997
    assert podspec.oom_score_adj(make_pod("p", ["x"])) == 0


def test_cpu_numbers_match_the_kubelet_and_runc() -> None:
    assert [podspec.cpu_shares(m) for m in (0, 1, 250, 1000)] == [2, 2, 256, 1024]
    assert podspec.shares_to_weight(1024) == 39 and podspec.shares_to_weight(2) == 1
    assert podspec.cpu_quota_us(500) == 50_000


def test_exclusive_cpus_leave_a_shared_core() -> None:
    pod = make_pod("l", ["x"], labels={"sigma.io/qos": "LSR"}, limits={"cpu": "1500m"})
    assert podspec.exclusive_cpu_count(pod) == 2
    assert podspec.pick_exclusive_cpus([0, 1, 2, 3], {0}, 2) == [1, 2]
    assert podspec.pick_exclusive_cpus([0, 1], set(), 2) == []
    assert podspec.parse_cpuset("0-2,5") == [0, 1, 2, 5]


def test_runtime_class_defaults_to_process_without_an_image() -> None:
    assert podspec.runtime_class(make_pod("p", ["x"])) == "process"
    assert podspec.runtime_class(make_pod("p", ["x"], image="busybox")) == "runc"


def test_rates_and_working_set_from_two_samples() -> None:
    a = Sample(10.0, 1_000_000_000, 500, 100)
    b = Sample(12.0, 3_000_000_000, 800, 300, {"cpu": Pressure(some_total_us=2_500_000)})
    u = usage(a, b)
    assert (u.cpu_cores, u.memory_working_set_bytes) == (1.0, 500)
    assert usage(b, a).cpu_cores == 0.0  # time going backwards or a counter reset is no usage
    assert usage(None, b).cpu_cores == 0.0


def test_psi_parsing() -> None:
    p = parse_psi(
        "some avg10=1.50 avg60=0.10 avg300=0.00 total=123\nfull avg10=0.25 avg60=0 avg300=0 total=7\n"
    )
    assert p == Pressure(1.5, 0.25, 123, 7)


def test_prometheus_text() -> None:
    node = Usage(1.25, 8 * 2**30, {"cpu": Pressure(some_total_us=1_000_000)}, cpu_seconds_total=123456.789)
    pod = PodUsage("default", 'we"b', "u1", "LS", Usage(0.5, 1024, cpu_seconds_total=2.5))
    text = render_prometheus(node, [pod])
    assert "# TYPE sigma_agent_pod_cpu_usage_seconds_total counter" in text
    assert 'sigma_agent_pod_cpu_usage_seconds_total{namespace="default",pod="we\\"b",qos="LS"} 2.5' in text
    assert 'sigma_agent_node_pressure_stalled_seconds_total{kind="some",resource="cpu"} 1.0' in text
    # Every digit kept: a counter past 1e5 s and 8 GiB of memory read back exactly.
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}
    assert values["sigma_agent_node_cpu_usage_seconds_total"] == 123456.789
    assert values["sigma_agent_node_memory_working_set_bytes"] == 8 * 2**30


def test_the_cpu_counter_is_the_samples_cumulative_usage() -> None:
    assert usage(None, Sample(10.0, 3_500_000_000, 0, 0)).cpu_seconds_total == 3.5


def test_missing_capabilities_are_described_in_plain_words() -> None:
    caps = Capabilities(
        root=False,
        cgroup_version=None,
        controllers=(),
        cpu_idle=False,
        runc=None,
        resctrl=False,
        psi=True,
        cgroup_psi=False,
        unshare=False,
    )
    missing = describe_missing(caps)
    assert any("not running as root" in m for m in missing)
    assert any("runc is not installed" in m for m in missing)
    assert len(missing) == 6
