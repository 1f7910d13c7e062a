"""What one dashboard user may see: the hub's views filtered by that user's RBAC rights.

The hub watches everything once for every browser; each browser then gets only the objects
its user could list through the API: a kind at the cluster scope (nodes) if the user may
list it there, a namespaced object if the user may list its kind in its namespace (or in
all of them). The decision is the API's own (rbac.authorize), asked once per kind and
namespace for each batch sent, so a change of the roles or bindings shows at the next batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.identity import User
from sigma.api.auth.noderestriction import Decision
from sigma.api.auth.rbac import Binding, authorize
from sigma.api.resources import resource
from sigma.ui.views import View

Sees = Callable[[str, str | None], bool]  # (kind, namespace or None) -> visible


def _no_pod_node(_namespace: str, _name: str) -> str | None:
    return None  # lists never ask which node a pod is on


def rights(user: User, bindings: list[Binding] | Callable[[User, Attributes], Decision]) -> Sees:
    """Whether `user` may list `kind` in a namespace (None: a cluster-scoped kind); memoised,
    so a snapshot of thousands of pods asks RBAC once per namespace. ``bindings``: the
    API's authoriser (AuthPolicy.authorize, RBAC from the store) or file bindings."""
    memo: dict[tuple[str, str | None], bool] = {}
    decide = bindings if callable(bindings) else lambda u, a: authorize(u, a, bindings, _no_pod_node)

    def sees(kind: str, namespace: str | None) -> bool:
        key = (kind, namespace)
        if key not in memo:
            rt = resource(kind)
            attrs = Attributes("list", f"/ui/{kind}", rt, namespace=namespace if rt.namespaced else None)
            memo[key] = decide(user, attrs).allowed
        return memo[key]

    return sees


def _namespace(key: str) -> str | None:
    ns, sep, _ = key.partition("/")
    return ns if sep else None


def visible_snapshot(snapshot: dict[str, list[View]], sees: Sees) -> dict[str, list[View]]:
    return {kind: [v for v in views if sees(kind, v.get("ns"))] for kind, views in snapshot.items()}


def visible_changes(changes: list[dict[str, Any]], sees: Sees) -> list[dict[str, Any]]:
    """Changes are {"kind", "key", "item"}; the namespace is the key's (a deletion has no item)."""
    return [c for c in changes if sees(c["kind"], _namespace(c["key"]))]
