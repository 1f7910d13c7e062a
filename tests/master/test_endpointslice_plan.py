"""The EndpointSlice controller's decisions: desired endpoints and the slice diff (pure)."""

from __future__ import annotations

from typing import Any

from sigma.master.controllers.endpointslice_plan import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    UnresolvedPort,
    desired_endpoints,
    plan_slices,
    port_warnings_due,
    unresolved_target_ports,
)


def service(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"team": "a"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                                             "targetPort": 8080}], **spec}}


def pod(name: str, ip: str | None = "10.1.0.1", ready: bool = True, phase: str = "Running",
        deleting: bool = False, ports: list[dict[str, Any]] | None = None, app: str = "web") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}
    if ip:
        status["podIP"] = ip
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    return {"metadata": meta, "status": status,
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports or []}]}}


def only_group(groups: dict[Any, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    assert len(groups) == 1
    return next(iter(groups.values()))


def test_pods_with_an_ip_that_match_and_are_not_terminal_are_endpoints() -> None:
    pods = [pod("a", "10.1.0.1"), pod("b", None), pod("c", "10.1.0.3", phase="Succeeded"),
            pod("d", "10.1.0.4", app="other"), pod("e", "10.1.0.5", phase="Failed")]
    endpoints = only_group(desired_endpoints(service(), pods))
    assert [e["addresses"] for e in endpoints] == [["10.1.0.1"]]
    assert endpoints[0]["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}
    assert endpoints[0]["nodeName"] == "n1"


def test_conditions_follow_readiness_and_termination() -> None:
    pods = [pod("ready"), pod("notready", "10.1.0.2", ready=False), pod("going", "10.1.0.3", deleting=True)]
    cond = {e["targetRef"]["name"]: e["conditions"] for e in only_group(desired_endpoints(service(), pods))}
    assert cond["ready"] == {"ready": True, "serving": True, "terminating": False}
    assert cond["notready"] == {"ready": False, "serving": False, "terminating": False}
    assert cond["going"] == {"ready": False, "serving": True, "terminating": True}
    published = desired_endpoints(service(publishNotReadyAddresses=True), pods)
    assert all(e["conditions"]["ready"] for e in only_group(published))


def test_a_named_target_port_is_resolved_per_pod_and_groups_endpoints() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}])
    pods = [pod("a", "10.1.0.1", ports=[{"name": "web", "containerPort": 8080}]),
            pod("b", "10.1.0.2", ports=[{"name": "web", "containerPort": 9090}]),
            pod("c", "10.1.0.3")]  # no such port: an endpoint without it
    groups = desired_endpoints(svc, pods)
    by_port = {ports: [e["targetRef"]["name"] for e in eps] for ports, eps in groups.items()}
    assert by_port == {(("http", "TCP", 8080, ""),): ["a"], (("http", "TCP", 9090, ""),): ["b"], (): ["c"]}


def test_a_new_service_gets_slices_of_at_most_the_maximum() -> None:
    pods = [pod(f"p{i:03}", f"10.1.{i // 250}.{i % 250 + 1}") for i in range(250)]
    plan = plan_slices(service(), desired_endpoints(service(), pods), [])
    assert [len(s["endpoints"]) for s in plan.create] == [100, 100, 50]
    first = plan.create[0]
    assert first["metadata"]["generateName"] == "web-" and first["addressType"] == "IPv4"
    assert first["metadata"]["labels"] == {"team": "a", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: MANAGED_BY}
    assert first["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    assert first["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]
    assert not plan.update and not plan.delete


def applied(plan: Any, existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The slices after the plan is written (created ones named in order)."""
    by_name = {s["metadata"]["name"]: s for s in existing}
    for s in plan.update:
        by_name[s["metadata"]["name"]] = s
    for s in plan.delete:
        by_name.pop(s["metadata"]["name"])
    for i, s in enumerate(plan.create):
        by_name[f"new-{i}-{len(by_name)}"] = {**s, "metadata": {**s["metadata"], "name": f"new-{i}-{len(by_name)}"}}
    return list(by_name.values())


def test_nothing_changes_when_nothing_changed() -> None:
    pods = [pod(f"p{i}", f"10.1.0.{i + 1}") for i in range(5)]
    slices = applied(plan_slices(service(), desired_endpoints(service(), pods), []), [])
    assert plan_slices(service(), desired_endpoints(service(), pods), slices).empty()


def test_a_readiness_change_updates_the_one_slice_in_place() -> None:
    pods = [pod(f"p{i:03}", f"10.1.0.{i + 1}") for i in range(150)]
    slices = applied(plan_slices(service(), desired_endpoints(service(), pods), []), [])
    pods[120] = pod("p120", "10.1.0.121", ready=False)
    plan = plan_slices(service(), desired_endpoints(service(), pods), slices)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    changed = plan.update[0]
    assert any(e["targetRef"]["name"] == "p120" and not e["conditions"]["ready"] for e in changed["endpoints"])


def test_a_new_pod_fills_an_existing_slice_and_a_gone_pod_leaves_it() -> None:
    pods = [pod("a", "10.1.0.1")]
    slices = applied(plan_slices(service(), desired_endpoints(service(), pods), []), [])
    plan = plan_slices(service(), desired_endpoints(service(), [*pods, pod("b", "10.1.0.2")]), slices)
    assert not plan.create and [len(s["endpoints"]) for s in plan.update] == [2]
    slices = applied(plan, slices)
    plan = plan_slices(service(), desired_endpoints(service(), [pod("b", "10.1.0.2")]), slices)
    assert [[e["targetRef"]["name"] for e in s["endpoints"]] for s in plan.update] == [["b"]]


def test_no_endpoints_keeps_one_empty_placeholder_slice() -> None:
    plan = plan_slices(service(), {}, [])
    assert len(plan.create) == 1 and plan.create[0]["endpoints"] == [] and plan.create[0]["ports"] == []
    slices = applied(plan, [])
    assert plan_slices(service(), {}, slices).empty()
    # Pods come: the placeholder is reused for them (an update, not a delete and a create).
    plan = plan_slices(service(), desired_endpoints(service(), [pod("a")]), slices)
    assert not plan.create and not plan.delete and len(plan.update) == 1
    slices = applied(plan, slices)
    # They go: the slice becomes the placeholder again.
    plan = plan_slices(service(), {}, slices)
    assert len(plan.update) == 1 and plan.update[0]["endpoints"] == [] and plan.update[0]["ports"] == []
    assert not plan.create and not plan.delete


def test_a_port_change_rewrites_slices_under_their_names() -> None:
    pods = [pod("a")]
    slices = applied(plan_slices(service(), desired_endpoints(service(), pods), []), [])
    moved = service(ports=[{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9000}])
    plan = plan_slices(moved, desired_endpoints(moved, pods), slices)
    assert not plan.create and not plan.delete
    assert plan.update[0]["metadata"]["name"] == slices[0]["metadata"]["name"]
    assert plan.update[0]["ports"] == [{"name": "http", "protocol": "TCP", "port": 9000}]


def test_surplus_slices_are_deleted_when_pods_go() -> None:
    pods = [pod(f"p{i:03}", f"10.1.0.{i + 1}") for i in range(150)]
    slices = applied(plan_slices(service(), desired_endpoints(service(), pods), []), [])
    plan = plan_slices(service(), desired_endpoints(service(), pods[:50]), slices)
    assert len(plan.delete) == 1 and not plan.create and [len(s["endpoints"]) for s in plan.update] == [50]
    assert applied(plan, slices)[0]["endpoints"] == only_group(desired_endpoints(service(), pods[:50]))


# -- named target ports no pod declares --------------------------------------------------------
HTTP = [{"name": "http", "containerPort": 8080}]


def named_service() -> dict[str, Any]:
    return service(ports=[{"name": "web", "port": 80, "protocol": "TCP", "targetPort": 8080},
                          {"name": "api", "port": 81, "protocol": "TCP", "targetPort": "http"}])


def test_pods_without_a_named_target_port_are_found_with_the_field_and_the_port() -> None:
    pods = [pod("b", ports=[]), pod("a", ports=HTTP), pod("c", ports=[{"name": "http", "containerPort": 1,
                                                                        "protocol": "UDP"}]),
            pod("d", ip=None), pod("e", phase="Failed"), pod("f", app="other")]
    (found,) = unresolved_target_ports(named_service(), pods)
    # d has no IP, e is terminal, f is not selected: none of them is an endpoint.
    assert found == UnresolvedPort(1, "api", "http", "TCP", ("b", "c"))
    assert found.message() == ('spec.ports[1].targetPort: 2 selected pods declare no TCP container port named '
                               '"http" (b, c): they are endpoints without port "api"')
    # As Kubernetes does, they are still endpoints, only without that port.
    groups = desired_endpoints(named_service(), pods)
    assert {e["targetRef"]["name"] for g in groups.values() for e in g} == {"a", "b", "c"}


def test_numbers_and_declared_names_are_no_problem() -> None:
    assert unresolved_target_ports(named_service(), [pod("a", ports=HTTP)]) == []
    assert unresolved_target_ports(service(), [pod("a")]) == []


def test_a_long_list_of_pods_names_the_first_few_and_counts_the_rest() -> None:
    (found,) = unresolved_target_ports(named_service(), [pod(f"p{i}") for i in range(5)])
    assert found.message() == ('spec.ports[1].targetPort: 5 selected pods declare no TCP container port named '
                               '"http" (p0, p1, p2 and 2 more): they are endpoints without port "api"')
    (one,) = unresolved_target_ports(named_service(), [pod("solo")])
    assert "1 selected pod declares no TCP" in one.message()


def test_a_problem_is_told_once_and_again_only_when_its_pods_change() -> None:
    first = unresolved_target_ports(named_service(), [pod("a")])
    assert port_warnings_due(frozenset(), first) == first
    assert port_warnings_due(frozenset(first), first) == []  # the same problem: not told again
    more = unresolved_target_ports(named_service(), [pod("a"), pod("b")])
    assert port_warnings_due(frozenset(first), more) == more
    fixed = unresolved_target_ports(named_service(), [pod("a", ports=HTTP)])
    assert fixed == [] and port_warnings_due(frozenset(more), fixed) == []
    assert port_warnings_due(frozenset(fixed), first) == first  # back after a fix: told anew
