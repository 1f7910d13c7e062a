from __future__ import annotations

from pathlib import Path

import pytest

from sigma.api.auth.attributes import Attributes
from sigma.api.auth.rbac import BUILTIN_BINDINGS, Bindings, _role_allows
from sigma.api.resources import resource

EDITOR = "bindings:\n- {role: edit, namespace: team-a, users: [alice]}\n"
VIEWER = "bindings:\n- {role: view, users: [bob]}\n"


def test_the_bindings_file_is_reread_when_it_changes_at_most_once_per_recheck(tmp_path: Path) -> None:
    path = tmp_path / "rbac.yaml"
    path.write_text(EDITOR)
    clock = [100.0]
    bindings = Bindings(path, recheck_s=1.0, clock=lambda: clock[0])
    first = bindings.current()
    assert [b.users for b in first[len(BUILTIN_BINDINGS):]] == [("alice",)]
    path.write_text(VIEWER + "# longer, so the size changes too\n")
    clock[0] += 0.5  # within the recheck interval: the file is not looked at
    assert bindings.current() == first
    clock[0] += 0.6
    assert [(b.role, b.users) for b in bindings.current()[len(BUILTIN_BINDINGS):]] == [("view", ("bob",))]
    path.unlink()
    clock[0] += 1.0
    assert bindings.current() == list(BUILTIN_BINDINGS)


def _attrs(verb: str, plural: str, namespace: str | None = "team-a", name: str | None = "x",
           subresource: str = "") -> Attributes:
    return Attributes(verb, "/", resource(plural), subresource, namespace, name)


@pytest.mark.parametrize(("role", "verb", "plural", "subresource", "allowed"), [
    ("edit", "get", "resourcequotas", "", True),
    ("edit", "list", "resourcequotas", "", True),
    ("edit", "patch", "resourcequotas", "", False),
    ("edit", "update", "resourcequotas", "", False),
    ("edit", "delete", "resourcequotas", "", False),
    ("edit", "create", "resourcequotas", "", False),
    ("edit", "deletecollection", "resourcequotas", "", False),
    ("edit", "patch", "resourcequotas", "status", False),
    ("edit", "get", "resourcequotas", "status", True),
    ("view", "get", "resourcequotas", "", True),
    ("view", "patch", "resourcequotas", "", False),
    ("edit", "create", "pods", "", True),
    ("edit", "delete", "pods", "", True),
    ("edit", "patch", "pods", "status", False),
    ("edit", "create", "pods", "binding", False),
    ("edit", "create", "pods", "eviction", True),
    ("edit", "get", "pods", "log", True),
    ("edit", "patch", "deployments", "scale", True),
    ("edit", "update", "deployments", "status", False),
    ("edit", "update", "batchjobs", "status", False),
    ("edit", "create", "events", "", True),
    ("edit", "get", "leases", "", False),
    ("edit", "update", "leases", "", False),
    ("view", "get", "namespaces", "", True),
    ("edit", "delete", "namespaces", "", False),
    ("edit", "patch", "namespaces", "", False),
])
def test_edit_and_view_match_kubernetes_on_a_namespace(role: str, verb: str, plural: str, subresource: str,
                                                       allowed: bool) -> None:
    name = "team-a" if plural == "namespaces" else "x"
    assert _role_allows(role, "team-a", _attrs(verb, plural, name=name, subresource=subresource)) is allowed


def test_listing_namespaces_needs_a_binding_without_namespace() -> None:
    listing = _attrs("list", "namespaces", namespace=None, name=None)
    assert not _role_allows("view", "team-a", listing)
    assert _role_allows("view", None, listing)
    assert not _role_allows("edit", "team-a", _attrs("get", "namespaces", namespace="team-b", name="team-b"))
