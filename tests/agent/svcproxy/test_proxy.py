"""The proxy's change detection (svcproxy.proxy, without nft): a sync looks only at the
objects whose identity is new or gone, and what it holds always equals a fresh look at
every object."""

from __future__ import annotations

import copy
import random
import threading
from typing import Any

from sigma.agent.svcproxy.proxy import ServiceProxy
from sigma.agent.svcproxy.rules import NodeConfig

from .objects import endpoint, endpoint_slice, service

PORT = [{"name": "http", "port": 80, "targetPort": 8080}]
SLICE_PORT = [{"name": "http", "port": 8080, "protocol": "TCP"}]


class Source:
    def __init__(self) -> None:
        self.synced = threading.Event()
        self.synced.set()
        self.services: dict[str, dict[str, Any]] = {}
        self.slices: dict[str, dict[str, Any]] = {}

    def subscribe(self) -> threading.Event:
        return threading.Event()

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return list(self.services.values()), list(self.slices.values())


class Recorder:
    def __init__(self) -> None:
        self.scripts: list[str] = []

    def apply(self, script: str) -> None:
        self.scripts.append(script)


def versioned(obj: dict[str, Any], version: int) -> dict[str, Any]:
    obj["metadata"]["resourceVersion"] = str(version)
    return obj


def test_one_changed_slice_rebuilds_only_its_service() -> None:
    source = Source()
    for i in range(50):
        source.services[f"s{i}"] = versioned(service(f"s{i}", f"10.96.0.{i + 1}", PORT), 1)
        source.slices[f"s{i}"] = versioned(endpoint_slice(f"s{i}-a", f"s{i}", SLICE_PORT,
                                                          [endpoint(f"10.244.0.{i + 1}")]), 1)
    proxy = ServiceProxy(source, NodeConfig("10.244.0.0/16"), Recorder())  # type: ignore[arg-type]
    assert proxy.sync().full
    _, fresh = proxy._current()
    assert fresh == set()
    source.slices["s7"] = versioned(endpoint_slice("s7-a", "s7", SLICE_PORT, [endpoint("10.244.1.7")]), 2)
    _, fresh = proxy._current()
    assert fresh == {("default", "s7")}


def test_what_the_proxy_holds_equals_a_fresh_look_through_random_changes() -> None:
    rng = random.Random(7)
    source = Source()
    recorder = Recorder()
    proxy = ServiceProxy(source, NodeConfig("10.244.0.0/16"), recorder)  # type: ignore[arg-type]
    version = 1
    for step in range(300):
        version += 1
        op = rng.randrange(6)
        name = f"s{rng.randrange(12)}"
        if op == 0:  # a Service comes or changes
            source.services[name] = versioned(service(name, f"10.96.0.{int(name[1:]) + 1}", PORT,
                                                      sessionAffinity=rng.choice(["None", "ClientIP"])), version)
        elif op == 1:
            source.services.pop(name, None)
        elif op == 2:  # a slice comes or changes
            eps = [endpoint(f"10.244.0.{rng.randrange(1, 30)}", ready=rng.random() < 0.8)
                   for _ in range(rng.randrange(4))]
            slice_name = f"{name}-{rng.choice('ab')}"
            source.slices[slice_name] = versioned(endpoint_slice(slice_name, name, SLICE_PORT, eps), version)
        elif op == 3:
            source.slices.pop(f"{name}-{rng.choice('ab')}", None)
        elif op == 4 and source.slices:  # a slice moves to another Service
            slice_name = rng.choice(sorted(source.slices))
            moved = copy.deepcopy(source.slices[slice_name])
            moved["metadata"]["labels"]["kubernetes.io/service-name"] = name
            source.slices[slice_name] = versioned(moved, version)
        elif op == 5 and step % 50 == 0:  # a relist: every object new, the same content
            source.services = {k: copy.deepcopy(v) for k, v in source.services.items()}
            source.slices = {k: copy.deepcopy(v) for k, v in source.slices.items()}
        proxy.sync()
        fresh = ServiceProxy(source, NodeConfig("10.244.0.0/16"), Recorder())  # type: ignore[arg-type]
        held, want = proxy.applied, fresh.ruleset()
        assert held is not None
        # The same table (a patch appends chains where a fresh merge sorts them: order aside).
        assert (held.chains, held.maps, held.sets) == (want.chains, want.maps, want.sets), f"step {step}, op {op}"


def test_objects_without_a_resource_version_changed_in_place_are_still_seen() -> None:
    source = Source()
    source.services["web"] = service("web", "10.96.0.10", PORT)
    source.slices["web-a"] = endpoint_slice("web-a", "web", SLICE_PORT, [endpoint("10.244.0.5")])
    proxy = ServiceProxy(source, NodeConfig("10.244.0.0/16"), Recorder())  # type: ignore[arg-type]
    proxy.sync()
    source.slices["web-a"]["endpoints"].append(endpoint("10.244.0.6"))  # the same dict, changed
    _, fresh = proxy._current()
    assert fresh == {("default", "web")}
