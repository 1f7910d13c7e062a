"""Whether a sandbox an earlier agent made can be used as it is, pure.

A restarted agent finds its sandboxes as records (the ADD's result among them). The CNI
specification's CHECK is how a runtime asks the plugins whether such an attachment is still
as configured (veth, addresses, routes, the address's allocation): it runs only for a
container that was ADDed and not yet DELeted, with the ADD's result as ``prevResult``, and
only with cniVersion 0.4.0 or later. A sandbox that fails it is DELeted (its netns kept, so
the pod's running containers stay in it) and ADDed again.

    plan(record, netns_exists, checked) -> Plan     what ensure does with a record
    supports_check(cni_version) -> bool
    check_list(conflist, runtime_config) -> dict    the plugins a CHECK runs
    repair_reason(error) -> str                     the why a re-ADD logs and records
"""

from __future__ import annotations

import enum
from typing import Any

CHECK_SINCE = (0, 4, 0)


class Plan(enum.Enum):
    USE = "use"  # the sandbox is known good: this agent ADDed or CHECKed it
    CHECK = "check"  # made by an earlier agent: CHECK it before trusting it
    ADD = "add"  # no finished sandbox (none, half made, or its netns is gone): ADD


def supports_check(cni_version: str) -> bool:
    """CHECK exists from spec version 0.4.0 on; an unreadable version is taken as older."""
    try:
        parts = tuple(int(p) for p in cni_version.split("."))
    except ValueError:
        return False
    return parts >= CHECK_SINCE


def plan(record: dict[str, Any] | None, netns_exists: bool, checked: bool) -> Plan:
    """``record``: the sandbox's record, if any; ``checked``: this agent ADDed or CHECKed it
    already (CHECK once per agent life, not at every container start)."""
    if record is None or record.get("result") is None or not netns_exists:
        return Plan.ADD
    if checked:
        return Plan.USE
    version = str((record.get("conflist") or {}).get("cniVersion") or "")
    return Plan.CHECK if supports_check(version) else Plan.USE  # before 0.4.0: the record is all there is


def check_list(conflist: dict[str, Any], runtime_config: dict[str, Any]) -> dict[str, Any]:
    """The list without the plugins that only act on a capability the ADD gave no value (the
    bandwidth plugin of a pod without limits): they passed the result through and have
    nothing to check, and the bandwidth plugin up to 1.9.0 crashes on such a CHECK
    (containernetworking/plugins#1221), which would fail every intact sandbox."""
    def acted(plugin: dict[str, Any]) -> bool:
        caps = [k for k, on in (plugin.get("capabilities") or {}).items() if on]
        return not caps or any(runtime_config.get(k) for k in caps)
    return {**conflist, "plugins": [p for p in conflist.get("plugins") or [] if acted(p)]}


def repair_reason(error: str) -> str:
    return f"CNI CHECK of the sandbox failed ({error}): deleted and added again"


def previous_address(record: dict[str, Any]) -> list[str]:
    """The pod's addresses before a re-ADD: asked of the IPAM again (``args.cni.ips``, which
    host-local honours) so the pod keeps the address its status and endpoints give."""
    return [str(ip) for ip in record.get("ips") or []]
