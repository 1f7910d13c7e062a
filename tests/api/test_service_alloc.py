"""The ClusterIP and NodePort allocators, through the registry over a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sigma.api import admission
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.service_alloc import IP_PREFIX, PORT_PREFIX
from sigma.store.sqlite import SqliteStore

SERVICES = resource("services")
SMALL = {"service_cidr": "10.0.0.0/28", "service_node_port_range": "30000-30009"}


def open_registry(path: Path, options: dict[str, Any] | None = None) -> tuple[Registry, SqliteStore]:
    store = SqliteStore(str(path / "state.db"))
    registry = Registry(store)
    admission.install(registry, options or SMALL)
    admission.bootstrap(registry)
    return registry, store


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg, store = open_registry(tmp_path)
    try:
        yield reg
    finally:
        store.close()


def svc(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], "selector": {"app": name}, **spec}}


def causes(err: pytest.ExceptionInfo[ApiError]) -> dict[str, str]:
    return {c.field: c.message for c in err.value.causes}


def records(registry: Registry, prefix: str) -> set[str]:
    return {kv.key[len(prefix):] for kv in registry.store.list(prefix)[0]}


def test_a_service_gets_a_free_address_in_the_range_and_node_ports(registry: Registry) -> None:
    made = registry.create(SERVICES, "default", svc("web", type="NodePort"))
    spec = made["spec"]
    assert spec["clusterIPs"] == [spec["clusterIP"]] and spec["clusterIP"].startswith("10.0.0.")
    assert 30000 <= spec["ports"][0]["nodePort"] <= 30009
    assert records(registry, IP_PREFIX) == {spec["clusterIP"]}
    assert records(registry, PORT_PREFIX) == {str(spec["ports"][0]["nodePort"])}


def test_an_address_outside_the_range_or_taken_is_refused_naming_spec_cluster_ips(registry: Registry) -> None:
    with pytest.raises(ApiError) as err:
        registry.create(SERVICES, "default", svc("a", clusterIP="10.1.0.5"))
    assert err.value.code == 422
    assert "provided IP is not in the valid range. The range of valid IPs is 10.0.0.0/28" in causes(err)[
        "spec.clusterIPs"]
    registry.create(SERVICES, "default", svc("b", clusterIP="10.0.0.5"))
    with pytest.raises(ApiError) as err:
        registry.create(SERVICES, "default", svc("c", clusterIP="10.0.0.5"))
    assert "provided IP is already allocated" in causes(err)["spec.clusterIPs"]


def test_a_taken_or_out_of_range_node_port_is_refused(registry: Registry) -> None:
    registry.create(SERVICES, "default", svc("a", type="NodePort", ports=[{"port": 80, "nodePort": 30005}]))
    with pytest.raises(ApiError) as err:
        registry.create(SERVICES, "default", svc("b", type="NodePort", ports=[{"port": 80, "nodePort": 30005}]))
    assert "provided port is already allocated" in causes(err)["spec.ports[0].nodePort"]
    with pytest.raises(ApiError) as err:
        registry.create(SERVICES, "default", svc("c", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert "The range of valid ports is 30000-30009" in causes(err)["spec.ports[0].nodePort"]
    # The refused creates claimed nothing: their addresses are free again.
    assert len(records(registry, IP_PREFIX)) == 1


def test_a_dry_run_allocates_nothing(registry: Registry) -> None:
    before = records(registry, IP_PREFIX), records(registry, PORT_PREFIX)
    answered = registry.create(SERVICES, "default", svc("dry", type="NodePort"), dry_run=True)
    assert answered["spec"]["clusterIP"] and answered["spec"]["ports"][0]["nodePort"]
    assert (records(registry, IP_PREFIX), records(registry, PORT_PREFIX)) == before
    with pytest.raises(ApiError):
        registry.get(SERVICES, "default", "dry")


def test_delete_gives_the_address_and_port_back(registry: Registry) -> None:
    made = registry.create(SERVICES, "default", svc("a", type="NodePort"))
    ip, port = made["spec"]["clusterIP"], made["spec"]["ports"][0]["nodePort"]
    registry.delete(SERVICES, "default", "a")
    again = registry.create(SERVICES, "default", svc("b", type="NodePort", clusterIP=ip,
                                                     ports=[{"port": 80, "nodePort": port}]))
    assert again["spec"]["clusterIP"] == ip


def test_an_update_keeps_the_address_and_a_type_change_gives_node_ports_back(registry: Registry) -> None:
    made = registry.create(SERVICES, "default", svc("a", type="NodePort"))
    port = made["spec"]["ports"][0]["nodePort"]
    body = {**made, "spec": {**made["spec"], "type": "ClusterIP", "clusterIP": "", "clusterIPs": [],
                             "externalTrafficPolicy": None}}
    del body["spec"]["externalTrafficPolicy"]
    updated = registry.update(SERVICES, "default", "a", body)
    assert updated["spec"]["clusterIP"] == made["spec"]["clusterIP"]
    assert "nodePort" not in updated["spec"]["ports"][0]
    other = registry.create(SERVICES, "default", svc("b", type="NodePort", ports=[{"port": 80, "nodePort": port}]))
    assert other["spec"]["ports"][0]["nodePort"] == port
    # Another address than the one it was given (picked at random: it may be 10.0.0.9).
    moved = "10.0.0.9" if updated["spec"]["clusterIP"] != "10.0.0.9" else "10.0.0.10"
    with pytest.raises(ApiError) as err:
        registry.patch(SERVICES, "default", "a", "merge", {"spec": {"clusterIP": moved, "clusterIPs": [moved]}})
    assert "may not change" in causes(err)["spec.clusterIPs[0]"]


def test_concurrent_creates_never_share_an_address(registry: Registry) -> None:
    made: list[str] = []
    failed: list[ApiError] = []

    def create(i: int) -> None:
        try:
            made.append(registry.create(SERVICES, "default", svc(f"s{i}"))["spec"]["clusterIP"])
        except ApiError as err:
            failed.append(err)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A /28 has 13 addresses to give (network, broadcast and the kubernetes one excluded).
    assert len(made) == len(set(made)) == 13
    assert len(failed) == 3 and all("range is full" in str(e) for e in failed)


def test_a_restarted_master_knows_every_allocation(tmp_path: Path) -> None:
    registry, store = open_registry(tmp_path)
    ip = registry.create(SERVICES, "default", svc("a"))["spec"]["clusterIP"]
    store.delete(IP_PREFIX + ip)  # as if the record had been lost: the start repairs it
    store.close()
    registry, store = open_registry(tmp_path)
    try:
        assert ip in records(registry, IP_PREFIX)
        with pytest.raises(ApiError) as err:
            registry.create(SERVICES, "default", svc("b", clusterIP=ip))
        assert "already allocated" in causes(err)["spec.clusterIPs"]
    finally:
        store.close()
