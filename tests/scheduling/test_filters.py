from __future__ import annotations

import pytest

from sigma.scheduling import (
    AntiAffinityTerm,
    Code,
    LabelSelector,
    NodeSelectorTerm,
    Operator,
    Requirement,
    SpreadConstraint,
    Taint,
    TaintEffect,
    Toleration,
    labels,
)
from tests.scheduling.builders import GIB, node, pod, scheduler

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def feasible_names(sched, p) -> list[str]:  # type: ignore[no-untyped-def]
    from sigma.scheduling import feasible_nodes

    mask = feasible_nodes(sched.snapshot, sched.profile(p))
    return [n.name for n, ok in zip(sched.snapshot.nodes, mask, strict=True) if ok]


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        pytest.param(1000, GIB, ["big", "small"], id="a small pod fits everywhere"),
        pytest.param(3000, GIB, ["big"], id="a pod needing more cpu than the small node has fits the big one"),
        pytest.param(100, 10 * GIB, ["big"], id="a pod needing more memory fits only the big node"),
        pytest.param(9000, GIB, [], id="a pod bigger than every node fits nowhere"),
    ],
)
def test_resources_fit_checks_every_requested_dimension(cpu: int, memory: int, expected: list[str]) -> None:
    sched = scheduler([node("big", cpu=8000, memory=16 * GIB), node("small", cpu=2000, memory=4 * GIB)])
    assert feasible_names(sched, pod("p", cpu=cpu, memory=memory)) == expected


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        pytest.param({"cpu": 5000}, "1 Insufficient cpu", id="cpu"),
        pytest.param({"memory": 9 * GIB}, "1 Insufficient memory", id="memory"),
        pytest.param({"sigma.io/batch-cpu": 1000}, "1 Insufficient sigma.io/batch-cpu", id="batch cpu"),
    ],
)
def test_resources_fit_names_the_short_resource(request_: dict[str, int], reason: str) -> None:
    sched = scheduler([node("n", allocatable={"sigma.io/batch-cpu": 500})])
    p = pod(
        "p",
        **{"cpu": request_.get("cpu", 100), "memory": request_.get("memory", GIB)},
        requests={k: v for k, v in request_.items() if k.startswith("sigma.io")},
    )
    result = sched.schedule(p)
    assert result.status.code is Code.UNSCHEDULABLE
    assert result.message == f"0/1 nodes are available: {reason}."


def test_a_full_node_reports_too_many_pods() -> None:
    sched = scheduler([node("n", pods=1)], [(pod("a"), "n")])
    assert sched.schedule(pod("b")).message == "0/1 nodes are available: 1 Too many pods."


def test_a_node_short_of_cpu_and_memory_counts_for_both_reasons() -> None:
    sched = scheduler([node("n", cpu=1000, memory=GIB)])
    message = sched.schedule(pod("p", cpu=2000, memory=2 * GIB)).message
    assert message == "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."


def expr(key: str, op: Operator, *values: str) -> Requirement:
    return Requirement(key, op, values)


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        pytest.param(expr("disk", Operator.IN, "ssd"), ["a"], id="In picks nodes with one of the values"),
        pytest.param(expr("disk", Operator.NOT_IN, "ssd"), ["b", "c"], id="NotIn also accepts unlabelled nodes"),
        pytest.param(expr("disk", Operator.EXISTS), ["a", "b"], id="Exists needs the key"),
        pytest.param(expr("disk", Operator.DOES_NOT_EXIST), ["c"], id="DoesNotExist needs its absence"),
        pytest.param(expr("gen", Operator.GT, "3"), ["b"], id="Gt compares integers"),
        pytest.param(expr("gen", Operator.LT, "3"), ["a"], id="Lt compares integers"),
        pytest.param(expr("gen", Operator.GT, "x"), [], id="Gt with a non-integer matches nothing"),
    ],
)
def test_required_node_affinity_operators(requirement: Requirement, expected: list[str]) -> None:
    sched = scheduler(
        [
            node("a", labels={"disk": "ssd", "gen": "2"}),
            node("b", labels={"disk": "hdd", "gen": "10"}),
            node("c", labels={"gen": "three"}),
        ]
    )
    p = pod("p", required_affinity=(NodeSelectorTerm((requirement,)),))
    assert feasible_names(sched, p) == expected


def test_node_affinity_terms_are_ored_and_expressions_anded() -> None:
    sched = scheduler([node("a", labels={"x": "1", "y": "1"}), node("b", labels={"x": "1"}), node("c")])
    both = NodeSelectorTerm((expr("x", Operator.EXISTS), expr("y", Operator.EXISTS)))
    neither = NodeSelectorTerm((expr("x", Operator.DOES_NOT_EXIST),))
    assert feasible_names(sched, pod("p", required_affinity=(both, neither))) == ["a", "c"]


def test_an_empty_affinity_term_matches_no_node() -> None:
    sched = scheduler([node("a")])
    assert feasible_names(sched, pod("p", required_affinity=(NodeSelectorTerm(),))) == []


def test_a_selector_mismatch_is_unresolvable_with_the_kubernetes_reason() -> None:
    sched = scheduler([node("a", labels={"pool": "gpu"}), node("b")])
    result = sched.schedule(pod("p", node_selector={"pool": "ssd"}))
    assert result.status.code is Code.UNRESOLVABLE
    assert result.message == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    assert result.preemption is None


DEDICATED = Taint("dedicated", "search", TaintEffect.NO_SCHEDULE)


@pytest.mark.parametrize(
    ("taint", "tolerations", "fits"),
    [
        pytest.param(DEDICATED, (), False, id="an untolerated NoSchedule taint rejects"),
        pytest.param(Taint("t", "v", TaintEffect.NO_EXECUTE), (), False, id="an untolerated NoExecute taint rejects"),
        pytest.param(Taint("t", "v", TaintEffect.PREFER_NO_SCHEDULE), (), True, id="PreferNoSchedule never rejects"),
        pytest.param(DEDICATED, (Toleration("dedicated", "Equal", "search"),), True, id="Equal with the value"),
        pytest.param(DEDICATED, (Toleration("dedicated", "Equal", "other"),), False, id="Equal with another value"),
        pytest.param(DEDICATED, (Toleration("dedicated", "Exists"),), True, id="Exists ignores the value"),
        pytest.param(DEDICATED, (Toleration(operator="Exists"),), True, id="empty key with Exists tolerates all"),
        pytest.param(
            DEDICATED,
            (Toleration("dedicated", "Exists", effect=TaintEffect.NO_EXECUTE),),
            False,
            id="a toleration for another effect does not apply",
        ),
    ],
)
def test_taints_and_tolerations(taint: Taint, tolerations: tuple[Toleration, ...], fits: bool) -> None:
    sched = scheduler([node("n", taints=(taint,))])
    assert feasible_names(sched, pod("p", tolerations=tolerations)) == (["n"] if fits else [])


def test_untolerated_taint_reason_names_the_first_taint_of_the_node() -> None:
    other = Taint("zone-maintenance", "", TaintEffect.NO_SCHEDULE)
    sched = scheduler([node("a", taints=(DEDICATED, other)), node("b", taints=(other,))])
    assert sched.schedule(pod("p")).message == (
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: search}, "
        "1 node(s) had untolerated taint {zone-maintenance: }."
    )


def test_unschedulable_nodes_are_skipped_unless_the_pod_tolerates_them() -> None:
    sched = scheduler([node("cordoned", unschedulable=True)])
    assert sched.schedule(pod("p")).message == "0/1 nodes are available: 1 node(s) were unschedulable."
    tolerant = pod("q", tolerations=(Toleration("node.kubernetes.io/unschedulable", "Exists"),))
    assert sched.schedule(tolerant).node_name == "cordoned"


def app(name: str) -> LabelSelector:
    return LabelSelector(match_labels=labels(app=name))


def test_anti_affinity_keeps_replicas_on_different_hosts() -> None:
    nodes = [node(f"n{i}", labels={HOST: f"n{i}"}) for i in range(3)]
    term = AntiAffinityTerm(app("web"), HOST)
    sched = scheduler(nodes)
    placed = [sched.schedule(pod(f"web-{i}", labels={"app": "web"}, anti_affinity=(term,))) for i in range(4)]
    assert sorted(r.node_name or "" for r in placed[:3]) == ["n0", "n1", "n2"]
    assert placed[3].message == "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
    assert placed[3].status.code is Code.UNSCHEDULABLE


def test_anti_affinity_ignores_pods_in_other_namespaces_and_nodes_without_the_key() -> None:
    term = AntiAffinityTerm(app("web"), ZONE)
    other_ns = pod("old", labels={"app": "web"}, namespace="other")
    sched = scheduler([node("a", labels={ZONE: "z1"}), node("b")], [(other_ns, "a")])
    assert feasible_names(sched, pod("p", labels={"app": "web"}, anti_affinity=(term,))) == ["a", "b"]


def spread(max_skew: int, hard: bool = True) -> SpreadConstraint:
    from sigma.scheduling import WhenUnsatisfiable

    mode = WhenUnsatisfiable.DO_NOT_SCHEDULE if hard else WhenUnsatisfiable.SCHEDULE_ANYWAY
    return SpreadConstraint(max_skew, ZONE, app("web"), mode)


def test_topology_spread_rejects_domains_that_would_exceed_max_skew() -> None:
    nodes = [node("a1", labels={ZONE: "a"}), node("a2", labels={ZONE: "a"}), node("b1", labels={ZONE: "b"})]
    web = [(pod(f"w{i}", labels={"app": "web"}), "a1") for i in range(2)]
    sched = scheduler(nodes, web)
    assert feasible_names(sched, pod("p", labels={"app": "web"}, spread=(spread(1),))) == ["b1"]
    assert feasible_names(sched, pod("q", labels={"app": "web"}, spread=(spread(3),))) == ["a1", "a2", "b1"]


def test_topology_spread_rejects_nodes_without_the_key_as_unresolvable() -> None:
    sched = scheduler([node("unlabelled")])
    result = sched.schedule(pod("p", labels={"app": "web"}, spread=(spread(1),)))
    assert result.status.code is Code.UNRESOLVABLE
    assert "missing required label" in result.message


def test_topology_spread_balances_replicas_across_zones_as_they_are_placed() -> None:
    nodes = [node(f"{z}{i}", labels={ZONE: z}) for z in "abc" for i in range(2)]
    sched = scheduler(nodes)
    zones = []
    for i in range(9):
        result = sched.schedule(pod(f"w{i}", labels={"app": "web"}, spread=(spread(1),)))
        zones.append((result.node_name or "?")[0])
    assert sorted(zones) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3


def test_schedule_anyway_spread_only_scores() -> None:
    nodes = [node("a1", labels={ZONE: "a"}), node("b1", labels={ZONE: "b"})]
    web = [(pod(f"w{i}", labels={"app": "web"}), "a1") for i in range(5)]
    sched = scheduler(nodes, web)
    p = pod("p", labels={"app": "web"}, spread=(spread(1, hard=False),))
    assert feasible_names(sched, p) == ["a1", "b1"]
    assert sched.schedule(p).node_name == "b1"


def test_an_unknown_resource_is_an_error_not_unschedulable() -> None:
    sched = scheduler([node("n")])
    result = sched.schedule(pod("p", requests={"example.com/gpu": 1}))
    assert result.status.code is Code.ERROR


def test_node_ports_keeps_two_pods_with_one_host_port_and_protocol_off_one_node() -> None:
    sched = scheduler([node("a"), node("b")])
    first = sched.schedule(pod("web-0", host_ports=(("TCP", "", 8080),)))
    second = sched.schedule(pod("web-1", host_ports=(("TCP", "", 8080),)))
    assert {first.node_name, second.node_name} == {"a", "b"}
    third = sched.schedule(pod("web-2", host_ports=(("TCP", "", 8080),)))
    assert third.status.code is Code.UNSCHEDULABLE
    assert third.message == "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    # Another protocol, another port, or two distinct addresses: no conflict.
    assert feasible_names(sched, pod("udp", host_ports=(("UDP", "", 8080),))) == ["a", "b"]
    assert feasible_names(sched, pod("other", host_ports=(("TCP", "", 8081),))) == ["a", "b"]


def test_node_ports_a_host_ip_conflicts_with_the_same_ip_and_with_every_address() -> None:
    sched = scheduler([node("a")])
    assert sched.schedule(pod("one-ip", host_ports=(("TCP", "10.0.0.1", 80),))).node_name == "a"
    assert feasible_names(sched, pod("other-ip", host_ports=(("TCP", "10.0.0.2", 80),))) == ["a"]
    assert feasible_names(sched, pod("same-ip", host_ports=(("TCP", "10.0.0.1", 80),))) == []
    assert feasible_names(sched, pod("every-ip", host_ports=(("TCP", "", 80),))) == []


def test_node_ports_frees_the_port_when_the_pod_goes() -> None:
    sched = scheduler([node("a")])
    placed = sched.schedule(pod("web-0", host_ports=(("TCP", "", 8080),)))
    assert placed.node_name == "a"
    assert feasible_names(sched, pod("web-1", host_ports=(("TCP", "", 8080),))) == []
    sched.snapshot.forget(placed.pod.uid)
    assert sched.snapshot.host_ports == {}
    assert feasible_names(sched, pod("web-1", host_ports=(("TCP", "", 8080),))) == ["a"]
