"""Finished work stays finished, and one agent serves a node: the registry's side."""

from __future__ import annotations

import time

import pytest

from sigma.agent.nodestatus import rfc3339_micro
from sigma.api.errors import ApiError
from sigma.client.local import LocalClient
from sigma.master import nodelease

NS = "default"


def finished_pod(client: LocalClient, phase: str) -> None:
    client.create("pods", {"metadata": {"name": "done"}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}, NS)
    client.patch("pods", "done", {"status": {"phase": phase}}, NS, subresource="status")


@pytest.mark.parametrize("terminal", ["Succeeded", "Failed"])
def test_a_pod_never_leaves_a_terminal_phase(client: LocalClient, terminal: str) -> None:
    finished_pod(client, terminal)
    before = client.get("pods", "done", NS)
    for back_to in ("Running", "Pending", "Succeeded" if terminal == "Failed" else "Failed"):
        with pytest.raises(ApiError) as err:
            client.patch("pods", "done", {"status": {"phase": back_to}}, NS, subresource="status")
        assert err.value.code == 422
        assert [c.field for c in err.value.causes] == ["status.phase"]
    assert client.get("pods", "done", NS) == before  # nothing stored
    # Anything else about a finished pod may still be written (its conditions, its labels).
    client.patch("pods", "done", {"metadata": {"labels": {"seen": "yes"}}}, NS)


def lease(client: LocalClient, holder: str, renewed: float, duration: int = 40) -> dict[str, object]:
    return client.create("leases", {"metadata": {"name": "n1"}, "spec": {
        "holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": rfc3339_micro(renewed)}},
        "kube-node-lease")


def test_a_second_agent_is_refused_while_the_first_ones_lease_is_live(client: LocalClient) -> None:
    nodelease.install(client.registry)
    now = time.time()
    held = lease(client, "n1_first", now)
    spec = {**held["spec"], "holderIdentity": "n1_second", "renewTime": rfc3339_micro(now)}  # type: ignore[dict-item]
    with pytest.raises(ApiError) as err:
        client.update("leases", {**held, "spec": spec}, "kube-node-lease")
    assert err.value.code == 409 and "another live agent (n1_first)" in err.value.message
    # The holder itself renews as usual.
    renewed = client.update("leases", {**held, "spec": {**held["spec"], "renewTime": rfc3339_micro(now + 1)}},  # type: ignore[dict-item]
                            "kube-node-lease")
    assert renewed["spec"]["holderIdentity"] == "n1_first"


def test_a_lapsed_lease_may_change_hands(client: LocalClient) -> None:
    nodelease.install(client.registry)
    held = lease(client, "n1_first", time.time() - 60, duration=40)
    spec = {**held["spec"], "holderIdentity": "n1_second", "renewTime": rfc3339_micro(time.time())}  # type: ignore[dict-item]
    taken = client.update("leases", {**held, "spec": spec}, "kube-node-lease")
    assert taken["spec"]["holderIdentity"] == "n1_second"
