"""Roles and bindings as stored, indexed for authorisation.

One watch per RBAC kind keeps a copy of every Role, ClusterRole, RoleBinding and
ClusterRoleBinding; when one changes (events drained on the next request), the index is
rebuilt: bindings by subject (``User`` name, ``Group`` name; a ServiceAccount subject is
the user ``system:serviceaccount:NS:NAME``). A request then looks at the bindings of its
user and groups only, and their roles' rules: O(bindings of the user), not of the cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sigma.api.auth.identity import User
from sigma.api.auth.rbac_rules import CompiledRules, Request, Rule, compile_rules, rules_of, service_account_user
from sigma.api.errors import ApiError
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.watch import RegistryWatch

KINDS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")


@dataclass(frozen=True)
class Grant:
    """One binding of one subject: the role it refers to and where it applies."""
    binding_kind: str  # RoleBinding | ClusterRoleBinding
    binding: str  # "ns/name" or "name"
    namespace: str | None  # None: every namespace (a ClusterRoleBinding)
    role_kind: str  # Role | ClusterRole
    role: str

    def describe(self, subject: str) -> str:
        return (f'{self.binding_kind} "{self.binding.split("/")[-1]}" of {self.role_kind} "{self.role}" to '
                f"{subject}")


@dataclass
class Index:
    cluster_roles: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    roles: dict[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict)
    by_subject: dict[tuple[str, str], list[Grant]] = field(default_factory=dict)
    compiled: dict[tuple[str, str, str], CompiledRules] = field(default_factory=dict)  # (kind, ns, name)


def build_index(objects: dict[str, dict[tuple[str, str], dict[str, Any]]]) -> Index:
    index = Index()
    for (_, name), role in objects["clusterroles"].items():
        index.cluster_roles[name] = rules_of(role)
        index.compiled[("ClusterRole", "", name)] = compile_rules(index.cluster_roles[name])
    for key, role in objects["roles"].items():
        index.roles[key] = rules_of(role)
        index.compiled[("Role", *key)] = compile_rules(index.roles[key])
    for plural, binding_kind in (("clusterrolebindings", "ClusterRoleBinding"), ("rolebindings", "RoleBinding")):
        for (ns, name), b in objects[plural].items():
            ref = b.get("roleRef") or {}
            namespace = ns or None
            grant = Grant(binding_kind, f"{ns}/{name}" if ns else name, namespace, str(ref.get("kind", "")),
                          str(ref.get("name", "")))
            for s in b.get("subjects") or []:
                kind, sname = s.get("kind"), str(s.get("name", ""))
                if kind == "ServiceAccount":
                    sa_ns = s.get("namespace") or ns
                    if not sa_ns:
                        continue
                    key = ("User", service_account_user(str(sa_ns), sname))
                elif kind in ("User", "Group"):
                    key = (str(kind), sname)
                else:
                    continue
                index.by_subject.setdefault(key, []).append(grant)
    return index


class RbacCache:
    def __init__(self, registry: Registry) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {k: {} for k in KINDS}
        self._watches: dict[str, RegistryWatch] = {}
        self._registry = registry
        self.generation = 0
        self._index = Index()
        for plural in KINDS:
            self._start(plural)
        self._refresh()

    def _start(self, plural: str) -> None:
        # No resourceVersion: the watch begins with every stored object as ADDED.
        self._objects[plural] = {}
        self._watches[plural] = self._registry.watch(resource(plural), None, "")

    def _refresh(self) -> Index:
        with self._lock:
            changed = False
            for plural, watch in self._watches.items():
                try:
                    events = watch.drain()
                except ApiError:  # the watch fell behind the store's history: start over
                    watch.close()
                    self._start(plural)
                    events = self._watches[plural].drain()
                for ev in events:
                    m = ev.object.get("metadata") or {}
                    key = (str(m.get("namespace") or ""), str(m.get("name", "")))
                    if ev.type == "DELETED":
                        self._objects[plural].pop(key, None)
                    else:
                        self._objects[plural][key] = ev.object
                    changed = True
            if changed or self.generation == 0:
                self._index = build_index(self._objects)
                self.generation += 1
            return self._index

    def close(self) -> None:
        for watch in self._watches.values():
            watch.close()

    # -- questions ----------------------------------------------------------------------------
    def role_rules(self, index: Index, kind: str, name: str, namespace: str | None) -> tuple[Rule, ...]:
        """A missing role grants nothing (a binding may name a role not created yet)."""
        if kind == "ClusterRole":
            return index.cluster_roles.get(name, ())
        if kind == "Role" and namespace is not None:
            return index.roles.get((namespace, name), ())
        return ()

    def _grants(self, index: Index, user: User, namespace: str | None) -> Iterator[tuple[Grant, str]]:
        keys = [("User", user.name), *(("Group", g) for g in user.groups)]
        for key in keys:
            for grant in index.by_subject.get(key, ()):
                if grant.namespace is None or (namespace is not None and grant.namespace == namespace):
                    yield grant, f'{key[0]} "{key[1]}"'

    def allowed_by(self, user: User, req: Request, namespace: str | None) -> str | None:
        """Kubernetes' reason (``RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y"
        to User "z"``) when some binding of the user allows the request, else None."""
        index = self._refresh()
        asked = set()
        for grant, subject in self._grants(index, user, namespace):
            scope = (grant.namespace or "") if grant.role_kind == "Role" else ""  # ClusterRoles are global
            role = (grant.role_kind, scope, grant.role)
            if role in asked:
                continue  # the same role through another binding or group: already answered no
            asked.add(role)
            compiled = index.compiled.get(role)
            if compiled is not None and compiled.allows(req):
                return f"RBAC: allowed by {grant.describe(subject)}"
        return None

    def rules_for(self, user: User, namespace: str | None) -> list[Rule]:
        """Every rule the user holds in the namespace (None: at the cluster scope)."""
        index = self._refresh()
        out: list[Rule] = []
        for grant, _ in self._grants(index, user, namespace):
            out += self.role_rules(index, grant.role_kind, grant.role, grant.namespace)
        return out

    def rules_of_ref(self, kind: str, name: str, namespace: str | None) -> tuple[Rule, ...]:
        return self.role_rules(self._refresh(), kind, name, namespace)


_CACHES: dict[int, RbacCache] = {}
_CACHES_LOCK = threading.Lock()


def rbac_of(registry: Registry) -> RbacCache:
    """The cache of this registry's RBAC objects, made on first use."""
    with _CACHES_LOCK:
        cache = _CACHES.get(id(registry))
        if cache is None or cache._registry is not registry:
            cache = _CACHES[id(registry)] = RbacCache(registry)
        return cache
