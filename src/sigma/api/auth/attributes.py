"""What a request asks to do, in the terms authorisation decides on (Kubernetes' request
attributes): a verb, a resource and subresource in an API group, a namespace and a name,
or, for everything outside /api and /apis, a path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sigma.api.resources import ResourceType, lookup

MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})
READ_ONLY = frozenset({"get", "list", "watch"})
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
CREATE_WHATEVER_METHOD = frozenset({"exec", "attach", "portforward"})


@dataclass(frozen=True)
class Attributes:
    verb: str
    path: str
    rt: ResourceType | None = None
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None
    field_selector: str = ""

    @property
    def resource(self) -> str:
        return self.rt.plural if self.rt is not None else ""

    @property
    def group(self) -> str:
        return self.rt.group if self.rt is not None else ""

    @property
    def resource_path(self) -> str:
        """``pods`` or ``pods/status``, as RBAC rules and messages name it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    @property
    def mutating(self) -> bool:
        return self.verb in MUTATING


def _verb(method: str, named: bool, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return _VERBS.get(method, method.lower())


def attributes_of(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    parts = [p for p in path.split("/") if p]
    watch = query.get("watch") in ("true", "1")
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return Attributes(_verb(method, True, False), path or "/")
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and lookup(group, version, rest[2]):
        namespace, rest = rest[1], rest[2:]
    rt = lookup(group, version, rest[0]) if rest else None
    if rt is None or len(rest) > 3:
        return Attributes(_verb(method, True, False), path)
    name = rest[1] if len(rest) > 1 else None
    if rt.plural == "namespaces" and name is not None:
        namespace = name  # a namespace object belongs to itself, as in Kubernetes
    sub = rest[2] if len(rest) > 2 else ""
    # kubectl opens exec/attach/port-forward WebSockets with a GET; Kubernetes authorises
    # them as `create` whatever the method (AuthorizePodWebsocketUpgradeCreatePermission).
    verb = "create" if sub in CREATE_WHATEVER_METHOD else _verb(method, name is not None, watch)
    return Attributes(verb, path, rt, sub, namespace, name, query.get("fieldSelector", ""))
