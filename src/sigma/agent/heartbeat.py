"""The agent's two heartbeats, as kubelet has them:

- the Lease kube-node-lease/<node> renewed every ~10 s: one tiny write that the node
  lifecycle controller watches to tell a live node from a dead one;
- the Node status (Ready with lastHeartbeatTime, capacity, conditions) re-posted less
  often, and at once when the agent starts.

Each write is best effort: a failed renewal is logged and retried at the next tick, so a
master restart costs a missed beat, never the agent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sigma.agent.nodestatus import NodeFacts, metadata_patch, new_node, rfc3339_micro, status_patch
from sigma.api.errors import ApiError
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.agent.heartbeat")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40


class Heartbeat:
    def __init__(self, client: ApiClient, facts: NodeFacts, lease_interval: float = 10.0,
                 node_status_interval: float = 10.0, clock: Callable[[], float] = time.time,
                 holder: str | None = None) -> None:
        self.client, self.facts, self.clock = client, facts, clock
        # Who holds the node: "<node>_<agent instance id>". The master refuses another
        # holder while this one's Lease is live (sigma.master.nodelease).
        self.holder = holder or facts.name
        self.lease_interval, self.node_status_interval = lease_interval, node_status_interval
        self._lease: dict[str, Any] | None = None
        self._failing = False

    # -- the Node ------------------------------------------------------------------------
    def register(self) -> dict[str, Any]:
        """Create the Node, or bring an existing one (a restart, a re-registration) up to date."""
        try:
            node = self.client.get("nodes", self.facts.name)
        except ApiError as err:
            if err.code != 404:
                raise
            try:
                return self.client.create("nodes", new_node(self.facts, self.clock()))
            except ApiError as err2:
                if err2.reason != "AlreadyExists":
                    raise
                node = self.client.get("nodes", self.facts.name)
        self.client.patch("nodes", self.facts.name, metadata_patch(self.facts), patch_type="strategic")
        return self.post_node_status(node)

    def post_node_status(self, node: dict[str, Any] | None = None) -> dict[str, Any]:
        if node is None:
            node = self.client.get("nodes", self.facts.name)
        previous = (node.get("status") or {}).get("conditions")
        return self.client.patch("nodes", self.facts.name, status_patch(self.facts, self.clock(), previous),
                                 patch_type="strategic", subresource="status")

    # -- the Lease -----------------------------------------------------------------------
    def renew_lease(self) -> None:
        """Update the Lease with the resourceVersion last read; re-read it once on a conflict.
        A conflict that remains after the re-read is raised: another live agent holds the
        node (the master says so), or the Lease keeps changing under us."""
        for attempt in range(2):
            now = rfc3339_micro(self.clock())
            if self._lease is None and self._read_or_create_lease(now):
                return
            assert self._lease is not None
            old = self._lease.get("spec", {})
            spec = {**old, "renewTime": now, "holderIdentity": self.holder, "leaseDurationSeconds": LEASE_DURATION_S}
            if old.get("holderIdentity") != self.holder:  # taking the node over: a new term
                spec["acquireTime"] = now
                spec["leaseTransitions"] = int(old.get("leaseTransitions") or 0) + (1 if old.get("holderIdentity")
                                                                                     else 0)
            try:
                self._lease = self.client.update("leases", {**self._lease, "spec": spec}, LEASE_NAMESPACE)
                return
            except ApiError as err:
                if err.code not in (404, 409) or attempt == 1:
                    raise
                self._lease = None  # someone else wrote it, or it was deleted: read again

    def _read_or_create_lease(self, now: str) -> bool:
        """Load the current Lease into self._lease; True when it had to be created (and so is fresh)."""
        try:
            self._lease = self.client.get("leases", self.facts.name, LEASE_NAMESPACE)
            return False
        except ApiError as err:
            if err.code != 404:
                raise
        self._lease = self.client.create("leases", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.facts.name, "namespace": LEASE_NAMESPACE},
            "spec": {"holderIdentity": self.holder, "leaseDurationSeconds": LEASE_DURATION_S,
                     "acquireTime": now, "renewTime": now},
        }, LEASE_NAMESPACE)
        return True

    # -- the loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        next_lease = next_status = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_lease:
                self._beat("lease", self.renew_lease)
                next_lease = now + self.lease_interval
            if now >= next_status:
                self._beat("node status", self.post_node_status)
                next_status = now + self.node_status_interval
            stop.wait(max(0.05, min(next_lease, next_status) - time.monotonic()))

    def _beat(self, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (ApiError, ConnectionError) as err:
            if not self._failing:  # one line per outage, not one per tick
                log.warning("could not renew the %s of node %s: %s", what, self.facts.name, err)
            self._failing = True
            return
        if self._failing:
            log.info("%s of node %s renewed again", what, self.facts.name)
        self._failing = False
