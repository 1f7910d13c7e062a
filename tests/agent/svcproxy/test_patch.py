"""Partial syncs: a patched table is the table a full merge makes, and a patch says only
what changed."""

from __future__ import annotations

import random
from typing import Any

from sigma.agent.svcproxy.model import service_ports
from sigma.agent.svcproxy.patch import Applied, ServiceKey, patch
from sigma.agent.svcproxy.rules import MAX_SPREAD, Fragment, NodeConfig, merge, render_full, service_fragment

from .objects import endpoint, endpoint_slice, service

CFG = NodeConfig(cluster_cidr="10.244.0.0/16")
HTTP = [{"name": "http", "port": 80, "targetPort": "web"}]
SLICE_HTTP = [{"name": "http", "port": 8080, "protocol": "TCP"}]


def fragment(name: str, ip: str, endpoints: list[dict[str, Any]], **spec: Any) -> Fragment:
    svc = service(name, ip, HTTP, **spec)
    return service_fragment(service_ports(svc, [endpoint_slice(f"{name}-a", name, SLICE_HTTP, endpoints)]), CFG)


def applied_from(fragments: dict[ServiceKey, Fragment]) -> Applied:
    ordered = dict(sorted(fragments.items()))
    rs = merge(list(ordered.values()), CFG)
    return Applied.of(rs, {k: f for k, f in ordered.items() if f.service not in rs.left_out})


def test_a_patch_says_only_what_changed() -> None:
    web = fragment("web", "10.96.0.10", [endpoint("10.244.1.2"), endpoint("10.244.1.3")])
    db = fragment("db", "10.96.0.11", [endpoint("10.244.2.2")])
    applied = applied_from({("default", "web"): web, ("default", "db"): db})
    changed = fragment("web", "10.96.0.10", [endpoint("10.244.1.2"), endpoint("10.244.1.3", ready=False)])
    script = patch(applied, {("default", "web"): changed})
    assert script is not None
    # One endpoint less: the service's verdict goes to the (fixed) spread over one, its
    # second endpoint element and hairpin element go, and no rule is written.
    assert script.splitlines() == [
        "delete element ip sigma hairpin { 10.244.1.3 . 10.244.1.3 }",
        "delete element ip sigma service-ips { 10.96.0.10 . tcp . 80 }",
        "delete element ip sigma service-endpoints-tcp { 10.96.0.10 . 80 . 1 }",
        "add element ip sigma service-ips { 10.96.0.10 . tcp . 80 : goto spread-tcp-1 }"]
    assert patch(applied, {("default", "web"): changed}) == ""  # applied already holds it


def test_a_shared_endpoint_keeps_its_hairpin_element_until_its_last_service_goes() -> None:
    a = fragment("a", "10.96.0.10", [endpoint("10.244.1.2")])
    b = fragment("b", "10.96.0.11", [endpoint("10.244.1.2")])
    applied = applied_from({("default", "a"): a, ("default", "b"): b})
    first = patch(applied, {("default", "a"): None})
    assert first is not None and "hairpin" not in first and "delete element ip sigma service-ips" in first

    second = patch(applied, {("default", "b"): None})
    assert second is not None and "delete element ip sigma hairpin { 10.244.1.2 . 10.244.1.2 }" in second


def test_a_port_growing_past_the_spread_chains_gets_its_chain_before_its_verdict_goes_to_it() -> None:
    few = [endpoint(f"10.244.1.{i}") for i in range(1, MAX_SPREAD + 1)]
    applied = applied_from({("default", "a"): fragment("a", "10.96.0.10", few)})
    grown = patch(applied, {("default", "a"): fragment("a", "10.96.0.10", [*few, endpoint("10.244.2.1")])})
    assert grown is not None
    assert grown.index("add chain ip sigma svc-default/a/tcp/http") < grown.index(
        "add element ip sigma service-ips { 10.96.0.10 . tcp . 80 : goto svc-default/a/tcp/http }")
    assert "delete element ip sigma service-endpoints-tcp" in grown
    shrunk = patch(applied, {("default", "a"): fragment("a", "10.96.0.10", few)})
    assert shrunk is not None and shrunk.index("delete element ip sigma service-ips") < shrunk.index(
        "delete chain ip sigma svc-default/a/tcp/http")
    assert applied.ruleset.chains == {}


def test_a_change_that_takes_another_services_address_is_left_to_a_full_merge() -> None:
    web = fragment("web", "10.96.0.10", [endpoint("10.244.1.2")])
    db = fragment("db", "10.96.0.11", [endpoint("10.244.2.2")])
    applied = applied_from({("default", "web"): web, ("default", "db"): db})
    before = render_full(applied.ruleset)
    thief = fragment("db", "10.96.0.10", [endpoint("10.244.2.2")])
    assert patch(applied, {("default", "db"): thief}) is None
    assert render_full(applied.ruleset) == before  # untouched
    # The address given up by a Service changed in the same patch is free to take.
    moved = patch(applied, {("default", "web"): fragment("web", "10.96.0.12", [endpoint("10.244.1.2")]),
                            ("default", "db"): thief})
    assert moved is not None and "10.96.0.10 . 80 . 0 : 10.244.2.2 . 8080" in moved
    assert applied.ruleset.maps["service-endpoints-tcp"] == {"10.96.0.10 . 80 . 0": "10.244.2.2 . 8080",
                                                             "10.96.0.12 . 80 . 0": "10.244.1.2 . 8080"}
    # The same whichever of the two comes first.
    back = patch(applied, {("default", "web"): fragment("web", "10.96.0.10", [endpoint("10.244.1.2")]),
                           ("default", "db"): fragment("db", "10.96.0.11", [endpoint("10.244.2.2")])})
    assert back is not None and applied.ruleset.maps == applied_from({("default", "web"): web,
                                                                       ("default", "db"): db}).ruleset.maps
    reversed_order = patch(applied, {("default", "db"): thief,
                                     ("default", "web"): fragment("web", "10.96.0.12", [endpoint("10.244.1.2")])})
    assert reversed_order is not None
    # The old endpoint element goes before the new one comes (nft refuses a key twice).
    assert reversed_order.index("delete element ip sigma service-endpoints-tcp { 10.96.0.10 . 80 . 0") < \
        reversed_order.index("10.96.0.10 . 80 . 0 : 10.244.2.2 . 8080")
    assert applied.ruleset.maps["service-endpoints-tcp"] == {"10.96.0.10 . 80 . 0": "10.244.2.2 . 8080",
                                                             "10.96.0.12 . 80 . 0": "10.244.1.2 . 8080"}
    # Two changed Services claiming one address between them: also a full merge.
    one, two = fragment("x", "10.96.0.20", []), fragment("y", "10.96.0.20", [])
    assert patch(applied, {("default", "x"): one, ("default", "y"): two}) is None


def test_patched_tables_equal_a_fresh_merge_through_random_changes() -> None:
    rng = random.Random(7)
    pods = [f"10.244.{i // 10}.{i % 10 + 2}" for i in range(40)]  # shared between Services
    state: dict[ServiceKey, Fragment] = {}
    applied = applied_from(state)
    for step in range(300):
        changes: dict[ServiceKey, Fragment | None] = {}
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(12)
            key = ("default", f"s{i}")
            if key in state and rng.random() < 0.25:
                changes[key] = None
                continue
            # A few endpoints, or about as many as the spread chains cover: ports cross
            # between endpoints as elements and a chain of their own.
            few = rng.random() < 0.7
            eps = [endpoint(ip, ready=rng.random() < (0.8 if few else 0.97))
                   for ip in rng.sample(pods, rng.randint(0, 4) if few else MAX_SPREAD + rng.randint(-1, 2))]
            spec = {"type": "NodePort"} if rng.random() < 0.3 else {}
            ports = [{**HTTP[0], "nodePort": 30000 + i}] if spec else HTTP
            svc = service(f"s{i}", f"10.96.0.{10 + i}", ports, **spec)
            changes[key] = service_fragment(service_ports(svc, [endpoint_slice(f"s{i}-a", f"s{i}", SLICE_HTTP, eps)]),
                                            CFG)
        script = patch(applied, changes)
        assert script is not None, f"step {step}: no clash is possible here"
        for key, new in changes.items():
            if new is None:
                state.pop(key, None)
            else:
                state[key] = new
        fresh = applied_from(state).ruleset
        assert applied.ruleset.chains == fresh.chains, f"step {step}"
        assert {m: e for m, e in applied.ruleset.maps.items() if e} == {m: e for m, e in fresh.maps.items() if e}
        assert applied.ruleset.sets == fresh.sets
