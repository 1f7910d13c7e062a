"""NodeRestriction's graph rule: a node reads the Secrets and ConfigMaps its pods reference
and requests tokens bound to its pods, nothing else."""

from __future__ import annotations

from typing import Any

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.noderestriction import node_restriction
from sigma.api.resources import resource

PODS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("n1", "ns"): [{"metadata": {"name": "p", "uid": "u1"},
                    "spec": {"serviceAccountName": "robot", "volumes": [
                        {"name": "s", "secret": {"secretName": "mine"}},
                        {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]}}],
}


class Graph:
    def __call__(self, namespace: str, name: str) -> str | None:
        return None

    def pods_on(self, node: str, namespace: str) -> list[dict[str, Any]]:
        return PODS.get((node, namespace), [])


def decide(verb: str, res: str, name: str | None, node: str = "n1", sub: str = "") -> Any:
    a = Attributes(verb=verb, path="/", rt=resource(res), subresource=sub, namespace="ns", name=name)
    return node_restriction(a, node, Graph())


def test_secret_referenced_by_a_pod_of_the_node_only() -> None:
    assert decide("get", "secrets", "mine").allowed
    refused = decide("get", "secrets", "other")
    assert not refused.allowed and 'no relationship found between node "n1"' in refused.reason
    assert not decide("get", "secrets", "mine", node="n2").allowed
    assert not decide("list", "secrets", None).allowed
    assert not decide("update", "secrets", "mine").allowed


def test_without_a_graph_everything_is_refused() -> None:
    a = Attributes(verb="get", path="/", rt=resource("secrets"), namespace="ns", name="mine")
    assert not node_restriction(a, "n1", lambda ns, name: None).allowed


def test_token_only_bound_to_a_pod_of_the_node_using_the_account() -> None:
    d = decide("create", "serviceaccounts", "robot", sub="token")
    assert d.allowed and d.body_check is not None
    assert d.body_check({"spec": {"boundObjectRef": {"kind": "Pod", "name": "p", "uid": "u1"}}}) is None
    assert d.body_check({"spec": {"boundObjectRef": {"kind": "Pod", "name": "p", "uid": "other"}}})
    assert d.body_check({"spec": {"boundObjectRef": {"kind": "Secret", "name": "p"}}})
    assert d.body_check({"spec": {}})
    other = decide("create", "serviceaccounts", "default", sub="token")
    assert other.body_check is not None
    assert other.body_check({"spec": {"boundObjectRef": {"kind": "Pod", "name": "p"}}})  # p runs as robot
