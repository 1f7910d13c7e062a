"""The QoS loop's pure decisions (sigma.agent.qosplan) and the resctrl shell on a directory
laid out like /sys/fs/resctrl."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sigma.agent import qosplan
from sigma.agent.resctrl import APPLIED, UNSUPPORTED, Resctrl, parse_domains, read_info
from sigma.colocation.ladder import PodUsage, parse_cpus
from sigma.colocation.level0 import Thresholds
from sigma.colocation.slo import NodeSLO

GIB = 2**30


def inputs(**kw: Any) -> qosplan.TickInputs:
    base: dict[str, Any] = dict(cpu_capacity_millis=2000, node_cpu_millis=0, batch_cpu_millis=0,
                                prod_pods_cpu_millis=0, memory_capacity_bytes=8 * GIB, memory_used_bytes=GIB)
    return qosplan.TickInputs(**{**base, **kw})


@pytest.mark.parametrize(("kw", "prod"), [
    ({"node_cpu_millis": 1500, "batch_cpu_millis": 1000, "prod_pods_cpu_millis": 300}, 500),
    ({"node_cpu_millis": 1500, "batch_cpu_millis": 1000, "prod_pods_cpu_millis": 300, "count_system_cpu": False},
     300),
    ({"node_cpu_millis": 100, "batch_cpu_millis": 0, "prod_pods_cpu_millis": 400}, 400),
])
def test_prod_cpu_is_everything_but_batch_unless_told_to_count_prod_pods_only(kw: dict[str, Any],
                                                                             prod: int) -> None:
    assert qosplan.prod_cpu_millis(inputs(**kw)) == prod


def test_the_quota_follows_prod_up_and_down() -> None:
    slo = NodeSLO(Thresholds(cpu=0.65))
    quotas = [qosplan.decide(inputs(node_cpu_millis=prod), slo).quota.millis for prod in (100, 900, 1250, 200)]
    assert quotas == [1200, 400, 100, 1100]  # 1300 - prod, never below the 100m floor


def test_memory_pressure_evicts_batch_and_never_prod() -> None:
    pods = [PodUsage("default", "web", 9000, False, memory_bytes=6 * GIB),
            PodUsage("default", "hog", 5000, True, memory_bytes=2 * GIB)]
    decision = qosplan.decide(inputs(memory_capacity_bytes=8 * GIB, memory_used_bytes=int(7.9 * GIB), pods=pods),
                              NodeSLO())
    assert [e.name for e in decision.evictions] == ["hog"]
    assert "high watermark" in decision.evictions[0].reason


def test_batch_requests_over_the_published_allocatable_evict_lowest_priority_first() -> None:
    pods = [PodUsage("default", n, prio, True, batch_cpu_request=600) for n, prio in
            (("low", 3000), ("mid", 5000), ("high", 5500))]
    decision = qosplan.decide(inputs(batch_cpu_allocatable=900, pods=pods), NodeSLO())
    assert [e.name for e in decision.evictions] == ["low", "mid"]


def test_reading_pods_and_nodes() -> None:
    pod = {"metadata": {"name": "b", "namespace": "ns"},
           "spec": {"priority": 5000, "containers": [
               {"name": "a", "resources": {"requests": {"sigma.io/batch-cpu": "500", "sigma.io/batch-memory": "1Mi"}}},
               {"name": "b", "resources": {"limits": {"sigma.io/batch-cpu": "250"}}}]}}
    assert qosplan.batch_requests(pod) == (750, 2**20)
    usage = qosplan.ladder_pod(pod, 10, 20)
    assert (usage.batch, usage.priority, usage.batch_cpu_request) == (True, 5000, 750)
    assert qosplan.ladder_pod({"metadata": {"name": "w"}, "spec": {"priority": 9000}}, 0, 0).batch is False
    assert qosplan.published_allocatable({"status": {"allocatable": {"sigma.io/batch-cpu": "1300"}}}) == (
        1300, qosplan.UNLIMITED)
    assert not qosplan.active({"metadata": {"deletionTimestamp": "x"}})
    assert not qosplan.active({"metadata": {}, "status": {"phase": "Succeeded"}})
    assert qosplan.eviction_status("why")["reason"] == "Evicted"


def test_metrics_text() -> None:
    text = qosplan.render_qos(qosplan.QosReport(700, 600, 650, {"memory": 2}, UNSUPPORTED))
    assert "sigma_agent_batch_cpu_quota_millicores 700.0" in text
    assert 'sigma_agent_evictions_total{cause="memory"} 2.0' in text
    assert 'sigma_agent_evictions_total{cause="allocatable"} 0.0' in text
    assert "sigma_agent_resctrl_supported 0.0" in text


# -- resctrl against a fake filesystem -------------------------------------------------------
def fake_resctrl(root: Path, mba: bool = True) -> Path:
    (root / "info" / "L3").mkdir(parents=True)
    (root / "info" / "L3" / "cbm_mask").write_text("fffff\n")
    (root / "info" / "L3" / "min_cbm_bits").write_text("1\n")
    (root / "info" / "L3" / "num_closids").write_text("16\n")
    lines = "L3:0=fffff;1=fffff\n"
    if mba:
        (root / "info" / "MB").mkdir()
        (root / "info" / "MB" / "bandwidth_gran").write_text("10\n")
        (root / "info" / "MB" / "min_bandwidth").write_text("10\n")
        (root / "info" / "MB" / "num_closids").write_text("8\n")
        lines += "MB:0=100;1=100\n"
    (root / "schemata").write_text(lines)
    (root / "tasks").write_text("")
    return root


def test_resctrl_writes_both_groups_and_moves_only_new_tasks(tmp_path: Path) -> None:
    root = fake_resctrl(tmp_path / "resctrl")
    info = read_info(str(root))
    assert info is not None and info.domains == (0, 1) and info.mba and info.ways == 20
    r = Resctrl(str(root))
    assert r.apply([11, 12], [21], 0.3, 35) == APPLIED
    assert (root / "sigma-prod" / "schemata").read_text() == "L3:0=fffff;1=fffff\nMB:0=100;1=100\n"
    assert (root / "sigma-batch" / "schemata").read_text() == "L3:0=3f;1=3f\nMB:0=30;1=30\n"
    assert (root / "sigma-batch" / "tasks").read_text() == "21\n"
    r.apply([11, 12, 13], [21], 0.3, 35)
    assert (root / "sigma-prod" / "tasks").read_text().split() == ["11", "12", "13"]  # 13 only appended


def test_resctrl_without_the_filesystem_says_unsupported_once(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    r = Resctrl(str(tmp_path / "absent"))
    assert r.apply([1], [2], 0.3, 30) == UNSUPPORTED
    assert r.apply([1], [2], 0.3, 30) == UNSUPPORTED
    assert sum("unsupported" in m for m in caplog.messages) == 1
    assert not os.path.exists(tmp_path / "absent")


def test_parse_domains() -> None:
    assert parse_domains("    L3:0=7ff;1=7ff;2=7ff\nMB:0=100") == (0, 1, 2)
    assert parse_domains("") == (0,)


# -- the cpu suppress policy -----------------------------------------------------------------
def test_the_cpuset_policy_confines_batch_and_sets_no_quota() -> None:
    slo = NodeSLO(Thresholds(cpu=0.65), cpu_suppress_policy="cpuset")
    busy = inputs(cpu_capacity_millis=4000, node_cpu_millis=1200, node_cpus=(0, 1, 2, 3),
                  prod_exclusive_cpus=frozenset({3}), batch_cpus=(0, 1, 2, 3))
    decision = qosplan.decide(busy, slo)
    assert decision.policy == "cpuset" and decision.quota.millis is None
    assert decision.cpuset is not None and decision.cpuset.text == "2"  # 2600 - 1200: one CPU, not 3
    idle = qosplan.decide(inputs(cpu_capacity_millis=4000, node_cpus=(0, 1, 2, 3), batch_cpus=(2,)), slo)
    assert idle.cpuset is not None and idle.cpuset.text == "2-3"  # 2600m: 2 CPUs, keeping 2


def test_the_quota_policy_lets_batch_use_every_shared_cpu() -> None:
    decision = qosplan.decide(inputs(node_cpu_millis=500, node_cpus=(0, 1), prod_exclusive_cpus=frozenset({0}),
                                     batch_cpus=(1,)), NodeSLO(Thresholds(cpu=0.65)))
    assert decision.policy == "cfsQuota" and decision.quota.millis == 800
    assert decision.cpuset is not None and decision.cpuset.text == "1"
    restored = qosplan.decide(inputs(node_cpus=(0, 1), batch_cpus=(1,)), NodeSLO())
    assert restored.cpuset is not None and restored.cpuset.text == "0-1"


def test_without_a_cpuset_controller_the_quota_is_the_only_knob() -> None:
    decision = qosplan.decide(inputs(node_cpu_millis=500), NodeSLO(cpu_suppress_policy="cpuset"))
    assert decision.policy == "cfsQuota" and decision.cpuset is None and decision.quota.millis == 800


TREE = {"b": (0, 1, 2, 3), "b/p1": (0, 1, 2, 3), "b/p1/c": (0, 1, 2, 3), "b/p2": (1, 2)}


@pytest.mark.parametrize(("tree", "target", "writes"), [
    # shrinking: deepest first, the parent last; p2's own cpuset keeps what stays allowed
    (TREE, (3,), [("b/p1/c", "3"), ("b/p2", "3"), ("b/p1", "3"), ("b", "3")]),
    (TREE, (2, 3), [("b/p1/c", "2-3"), ("b/p2", "2"), ("b/p1", "2-3"), ("b", "2-3")]),
    # growing: the parent first; inherited children follow, p2's own cpuset stays
    ({"b": (3,), "b/p1": (3,), "b/p1/c": (3,), "b/p2": (3,)}, (0, 1, 2, 3),
     [("b", "0-3"), ("b/p1", "0-3"), ("b/p1/c", "0-3"), ("b/p2", "0-3")]),
    ({"b": (2, 3), "b/p1": (2, 3), "b/p2": (2,)}, (0, 1, 2, 3), [("b", "0-3"), ("b/p1", "0-3")]),
    # moving (neither sub- nor superset): widen to the union top-down, then narrow bottom-up
    ({"b": (2, 3), "b/p1": (2, 3)}, (0, 1),
     [("b", "0-3"), ("b/p1", "0-1"), ("b", "0-1")]),
    ({"b": (2, 3), "b/p1": (2, 3), "b/p1/c": (2, 3)}, (0, 1),
     [("b", "0-3"), ("b/p1", "0-3"), ("b/p1/c", "0-1"), ("b/p1", "0-1"), ("b", "0-1")]),
    ({"b": (1,)}, (1,), []),
    ({"b": (1,), "other": (0,)}, (0, 1), [("b", "0-1")]),
])
def test_cpuset_writes_never_leave_a_child_outside_its_parent(tree: dict[str, tuple[int, ...]],
                                                              target: tuple[int, ...],
                                                              writes: list[tuple[str, str]]) -> None:
    plan = qosplan.cpuset_writes(tree, "b", target)
    assert plan == writes
    state = {rel: set(cpus) for rel, cpus in tree.items()}
    for rel, value in plan:  # replay: every write keeps each child within its parent
        state[rel] = set(parse_cpus(value))
        for child, cpus in state.items():
            parent = child.rsplit("/", 1)[0]
            if "/" in child and parent in state:
                assert cpus <= state[parent], (rel, value, state)
    assert state["b"] == set(target)


def test_metrics_show_the_policy_and_batchs_cpus() -> None:
    text = qosplan.render_qos(qosplan.QosReport(None, 600, 650, {}, UNSUPPORTED, "cpuset", 1))
    assert 'sigma_agent_cpu_suppress_policy{policy="cpuset"} 1.0' in text
    assert 'sigma_agent_cpu_suppress_policy{policy="cfsQuota"} 0.0' in text
    assert "sigma_agent_batch_cpuset_cpus 1.0\n" in text
    assert "sigma_agent_batch_cpu_quota_millicores -1.0" in text
    quota = qosplan.render_qos(qosplan.QosReport(700, 600, 650, {}, UNSUPPORTED, "cfsQuota", 2))
    assert "sigma_agent_batch_cpuset_cpus -1.0\n" in quota
    assert 'sigma_agent_cpu_suppress_policy{policy="cfsQuota"} 1.0' in quota
