"""One agent per node: the master refuses a second live agent's claim on a node's Lease.

An agent renews the Lease kube-node-lease/<node> with a holderIdentity of its own
("<node>_<instance id>", the id kept in the agent's state directory, so a restart on the same
state keeps it). While the Lease is live (renewTime + leaseDurationSeconds in the future),
a write that names another holder is refused with 409 Conflict: two agents never run the
same node's pods at once. Once the Lease has lapsed (the old agent is dead or cut off for
its whole duration), a new agent takes it over, as leader election hands over a lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sigma.api.errors import ApiError
from sigma.api.objects import parse_rfc3339

if TYPE_CHECKING:
    from sigma.api.registry_core import RegistryCore

LEASE_NAMESPACE = "kube-node-lease"


def _expires_at(spec: dict[str, Any]) -> float | None:
    renew, duration = spec.get("renewTime"), spec.get("leaseDurationSeconds")
    if not isinstance(renew, str) or not isinstance(duration, int):
        return None
    try:
        return parse_rfc3339(renew) + duration
    except ValueError:
        return None


def refuse_second_agent(clock: Callable[[], float] = time.time
                        ) -> Callable[[dict[str, Any], dict[str, Any] | None], None]:
    def admit(new: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is None or (old.get("metadata") or {}).get("namespace") != LEASE_NAMESPACE:
            return
        held_by = (old.get("spec") or {}).get("holderIdentity")
        claimed_by = (new.get("spec") or {}).get("holderIdentity")
        if not held_by or held_by == claimed_by:
            return
        expires = _expires_at(old.get("spec") or {})
        if expires is None or expires <= clock():
            return  # lapsed: the node may change hands
        node = (old.get("metadata") or {}).get("name", "")
        raise ApiError(409, "Conflict",
                       f'node "{node}" is served by another live agent ({held_by}) until its Lease lapses '
                       f"in {expires - clock():.0f}s; a second agent ({claimed_by}) may not serve it",
                       kind="leases", name=node, group="coordination.k8s.io")

    return admit


def install(registry: RegistryCore, clock: Callable[[], float] = time.time) -> None:
    registry.add_admission("Lease", refuse_second_agent(clock))
