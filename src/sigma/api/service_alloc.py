"""The ClusterIP and NodePort allocators: Service admission claims its addresses and ports in
the store.

Every claimed address or port is a small record in the store (``/sigma/serviceips/<ip>``,
``/sigma/nodeports/<port>``) naming the Service that holds it. The store's create is atomic,
on SQLite and on etcd alike, so two Services created at once (through one master or several)
can never hold the same address: the second create finds the key and picks again. Nothing is
kept only in memory, so a restarted master knows every allocation.

Release: the allocator follows the Services through a watch, drained before each
allocation; an address or port a Service no longer holds (deleted, or changed by an update)
is given back, after a check that the stored Service really lost it. A record a failed
create left behind (the admission claimed, the write did not happen) is reclaimed when
someone asks for that address after GRACE_S, and swept at every start, as kube-apiserver's
repair loop does.

A dry run decides exactly as a real request would and claims nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import orjson

from sigma.api import errors
from sigma.api.errors import ApiError, Cause
from sigma.api.registry import Registry
from sigma.api.registry_core import in_dry_run
from sigma.api.resources import resource
from sigma.api.service_network import ServiceNetwork, pick_ip, pick_port
from sigma.api.service_validation import carry_over, needs_cluster_ip, needs_node_ports
from sigma.store.contract import Conflict, KeyExists, KeyNotFound, KeyValue

log = logging.getLogger("sigma.services")

SERVICES = resource("services")
IP_PREFIX = "/sigma/serviceips/"
PORT_PREFIX = "/sigma/nodeports/"
# How old a record of a Service that does not hold it must be before it is reclaimed: a
# younger one may belong to a create still on its way to the store.
GRACE_S = 30.0
PICK_ATTEMPTS = 16

Owner = tuple[str, str]  # (namespace, name)
Holdings = tuple[frozenset[str], frozenset[int]]


def holdings(svc: dict[str, Any]) -> Holdings:
    """The addresses and node ports a stored Service holds."""
    spec = svc.get("spec") or {}
    ips = frozenset(ip for ip in spec.get("clusterIPs") or [] if ip and ip != "None")
    ports = frozenset(int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort"))
    return ips, ports


def _owner(svc: dict[str, Any]) -> Owner:
    m = svc.get("metadata") or {}
    return (m.get("namespace") or "", m.get("name") or "")


class Allocator:
    """Claims and gives back ClusterIPs and NodePorts in `registry`'s store."""

    def __init__(self, registry: Registry, network: ServiceNetwork, clock: Callable[[], float] | None = None) -> None:
        self.registry = registry
        self.store = registry.store
        self.network = network
        self.clock = clock or registry.clock
        self._lock = threading.Lock()
        self._held: dict[Owner, Holdings] = {}
        self._watch: Any = None
        self._open()
        self.repair()

    # -- following the Services -------------------------------------------------------------
    def _open(self) -> None:
        listed = self.registry.list(SERVICES)
        self._held = {_owner(s): holdings(s) for s in listed["items"]}
        self._watch = self.registry.watch(SERVICES, None, listed["metadata"]["resourceVersion"])

    def follow(self) -> None:
        """Give back what Services no longer hold (the watch's events so far)."""
        try:
            events = self._watch.drain()
        except Exception:  # compacted or closed: start again from a listing
            log.info("service watch ended; re-listing")
            self._watch.close()
            before = dict(self._held)
            self._open()
            for owner, (ips, ports) in before.items():
                now_ips, now_ports = self._held.get(owner, (frozenset(), frozenset()))
                self._release_lost(owner, ips - now_ips, ports - now_ports)
            return
        for event in events:
            owner = _owner(event.object)
            before_ips, before_ports = self._held.get(owner, (frozenset(), frozenset()))
            if event.type == "DELETED":
                self._held.pop(owner, None)
                now_ips, now_ports = frozenset[str](), frozenset[int]()
            else:
                now_ips, now_ports = self._held[owner] = holdings(event.object)
            self._release_lost(owner, before_ips - now_ips, before_ports - now_ports)

    def _release_lost(self, owner: Owner, ips: frozenset[str], ports: frozenset[int]) -> None:
        if not ips and not ports:
            return
        current = self._current(owner)
        held_ips, held_ports = holdings(current) if current else (frozenset(), frozenset())
        for ip in ips - held_ips:
            self._delete_record(IP_PREFIX + ip, owner)
        for port in ports - held_ports:
            self._delete_record(PORT_PREFIX + str(port), owner)

    def repair(self) -> None:
        """Make the records agree with the stored Services: every held address recorded,
        every record of a Service that does not hold it (older than GRACE_S) removed."""
        services = {_owner(s): s for s in self.registry.list(SERVICES)["items"]}
        wanted: dict[str, Owner] = {}
        for owner, svc in services.items():
            ips, ports = holdings(svc)
            wanted.update({IP_PREFIX + ip: owner for ip in ips})
            wanted.update({PORT_PREFIX + str(p): owner for p in ports})
        for prefix in (IP_PREFIX, PORT_PREFIX):
            kvs, _ = self.store.list(prefix)
            for kv in kvs:
                if kv.key not in wanted and self._stale(kv):
                    self._delete_record(kv.key, None, kv)
        for key, owner in wanted.items():
            with contextlib.suppress(KeyExists):
                self.store.create(key, self._record(owner))

    # -- admission -------------------------------------------------------------------------
    def admit(self, svc: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Fill and claim the Service's ClusterIP and NodePorts; 422 naming the field when an
        address or port cannot be had."""
        with self._lock:
            self.follow()
        spec = svc.setdefault("spec", {})
        owner = _owner(svc)
        old_spec = (old or {}).get("spec") or {}
        if old is None and self.store.get(SERVICES.key(*owner)) is not None:
            raise errors.already_exists("services", owner[1])
        carry_over(spec, old_spec)
        claimed: list[str] = []
        causes: list[Cause] = []
        try:
            if needs_cluster_ip(spec):
                causes += self._admit_cluster_ip(spec, owner, old_spec, claimed)
            elif spec.get("type") == "ExternalName":
                spec.pop("clusterIPs", None)
            if needs_node_ports(spec):
                causes += self._admit_node_ports(spec, owner, old_spec, claimed)
        except BaseException:
            self._unclaim(claimed, owner)
            raise
        if causes:
            self._unclaim(claimed, owner)
            raise errors.invalid("Service", owner[1], causes)

    def _admit_cluster_ip(self, spec: dict[str, Any], owner: Owner, old_spec: dict[str, Any],
                          claimed: list[str]) -> list[Cause]:
        wanted = spec.get("clusterIP") or ""
        if wanted and wanted in (old_spec.get("clusterIPs") or []):
            return []  # already this Service's
        if wanted:
            if not self.network.ip_in_range(wanted):
                return [Cause("spec.clusterIPs", f'Invalid value: ["{wanted}"]: failed to allocate IP {wanted}: '
                                                 f"{self.network.ip_range_error()}")]
            if not self._claim(IP_PREFIX + wanted, owner, claimed):
                return [Cause("spec.clusterIPs", f'Invalid value: ["{wanted}"]: failed to allocate IP {wanted}: '
                                                 "provided IP is already allocated")]
        else:
            wanted = self._pick(IP_PREFIX, owner, claimed, lambda used: pick_ip(self.network, used)) or ""
            if not wanted:
                return [Cause("spec.clusterIPs", "Invalid value: []: failed to allocate a service IP: range is full")]
        spec["clusterIP"], spec["clusterIPs"] = wanted, [wanted]
        return []

    def _admit_node_ports(self, spec: dict[str, Any], owner: Owner, old_spec: dict[str, Any],
                          claimed: list[str]) -> list[Cause]:
        causes: list[Cause] = []
        mine = {int(p["nodePort"]) for p in old_spec.get("ports") or [] if p.get("nodePort")}
        given: dict[int, int] = {}  # a port asked twice (TCP and UDP) is one allocation
        for i, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort")
            path = f"spec.ports[{i}].nodePort"
            if wanted:
                if wanted in mine or wanted in given:
                    continue
                if not self.network.port_in_range(wanted):
                    causes.append(Cause(path, f"Invalid value: {wanted}: {self.network.port_range_error()}"))
                elif not self._claim(PORT_PREFIX + str(wanted), owner, claimed):
                    causes.append(Cause(path, f"Invalid value: {wanted}: provided port is already allocated"))
                given[wanted] = wanted
                continue
            picked = self._pick(PORT_PREFIX, owner, claimed,
                                lambda used: pick_port(self.network, {int(u) for u in used} | mine))
            if picked is None:
                causes.append(Cause(path, "Invalid value: 0: failed to allocate a node port: range is full"))
                continue
            port["nodePort"] = int(picked)
        return causes

    # -- records ---------------------------------------------------------------------------
    def _record(self, owner: Owner) -> bytes:
        return orjson.dumps({"namespace": owner[0], "name": owner[1], "at": self.clock()})

    def _pick(self, prefix: str, owner: Owner, claimed: list[str],
              choose: Callable[[set[str]], Any]) -> str | None:
        for _ in range(PICK_ATTEMPTS):
            kvs, _ = self.store.list(prefix)
            choice = choose({kv.key[len(prefix):] for kv in kvs} | {c[len(prefix):] for c in claimed
                                                                     if c.startswith(prefix)})
            if choice is None:
                return None
            if in_dry_run():
                return str(choice)
            try:
                self.store.create(prefix + str(choice), self._record(owner))
            except KeyExists:
                continue  # taken in between (another request, another master): pick again
            claimed.append(prefix + str(choice))
            return str(choice)
        return None

    def _claim(self, key: str, owner: Owner, claimed: list[str]) -> bool:
        """Take the record `key` for `owner`; False when another Service holds it."""
        kv = self.store.get(key)
        if kv is None:
            if in_dry_run():
                return True
            try:
                self.store.create(key, self._record(owner))
            except KeyExists:
                return False
            claimed.append(key)
            return True
        record = orjson.loads(kv.value)
        if (record.get("namespace"), record.get("name")) == owner:
            return True  # already claimed for this Service (a retried write)
        if not self._stale(kv):
            return False
        if in_dry_run():
            return True
        try:
            self.store.update(key, self._record(owner), kv.mod_revision)
        except (Conflict, KeyNotFound):
            return False
        claimed.append(key)
        return True

    def _stale(self, kv: KeyValue) -> bool:
        """A record whose Service does not hold it, and old enough not to be a create in flight."""
        try:
            record = orjson.loads(kv.value)
        except orjson.JSONDecodeError:
            return True
        if self.clock() - float(record.get("at") or 0) < GRACE_S:
            return False
        owner = (str(record.get("namespace") or ""), str(record.get("name") or ""))
        current = self._current(owner)
        if current is None:
            return True
        ips, ports = holdings(current)
        held = {IP_PREFIX + ip for ip in ips} | {PORT_PREFIX + str(p) for p in ports}
        return kv.key not in held

    def _current(self, owner: Owner) -> dict[str, Any] | None:
        try:
            return self.registry.get(SERVICES, *owner)
        except ApiError:
            return None

    def _delete_record(self, key: str, owner: Owner | None, kv: KeyValue | None = None) -> None:
        kv = kv or self.store.get(key)
        if kv is None:
            return
        if owner is not None:
            record = orjson.loads(kv.value)
            if (record.get("namespace"), record.get("name")) != owner:
                return  # claimed by another Service since
        with contextlib.suppress(Conflict, KeyNotFound):
            self.store.delete(key, kv.mod_revision)

    def _unclaim(self, claimed: list[str], owner: Owner) -> None:
        for key in claimed:
            self._delete_record(key, owner)
        claimed.clear()

