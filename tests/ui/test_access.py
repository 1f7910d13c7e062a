"""The dashboard's per-user filter: what RBAC lets a user list, and nothing else."""

from __future__ import annotations

from sigma.api.auth.identity import User
from sigma.api.auth.rbac import BUILTIN_BINDINGS, Binding
from sigma.ui.access import rights, visible_changes, visible_snapshot

BINDINGS = [*BUILTIN_BINDINGS, Binding("view", "team-a", users=("bob",)), Binding("edit", None, users=("erin",))]
ADMIN = User("alice", "", ("system:masters", "system:authenticated"))
BOB = User("bob", "", ("system:authenticated",))
ERIN = User("erin", "", ("system:authenticated",))
NOBODY = User("zed", "", ("system:authenticated",))

SNAPSHOT = {
    "nodes": [{"name": "n1"}],
    "nodemetrics": [{"name": "n1"}],
    "pods": [{"ns": "team-a", "name": "a"}, {"ns": "team-b", "name": "b"}],
    "events": [{"ns": "team-b", "name": "e"}],
}


def names(snapshot: dict[str, list[dict[str, str]]]) -> dict[str, list[str]]:
    return {kind: [v["name"] for v in views] for kind, views in snapshot.items()}


def test_an_admin_sees_everything() -> None:
    assert names(visible_snapshot(SNAPSHOT, rights(ADMIN, BINDINGS))) == names(SNAPSHOT)


def test_a_namespace_viewer_sees_its_namespace_only_and_no_nodes() -> None:
    assert names(visible_snapshot(SNAPSHOT, rights(BOB, BINDINGS))) == {
        "nodes": [], "nodemetrics": [], "pods": ["a"], "events": []}


def test_a_cluster_wide_editor_sees_every_namespace_but_not_cluster_scoped_kinds() -> None:
    assert names(visible_snapshot(SNAPSHOT, rights(ERIN, BINDINGS))) == {
        "nodes": [], "nodemetrics": [], "pods": ["a", "b"], "events": ["e"]}


def test_a_user_without_bindings_sees_nothing() -> None:
    assert all(not v for v in visible_snapshot(SNAPSHOT, rights(NOBODY, BINDINGS)).values())


def test_changes_are_filtered_by_the_namespace_of_their_key_deletions_too() -> None:
    changes = [{"kind": "pods", "key": "team-a/a", "item": None}, {"kind": "pods", "key": "team-b/b", "item": None},
               {"kind": "nodes", "key": "n1", "item": {"name": "n1"}}]
    assert visible_changes(changes, rights(BOB, BINDINGS)) == [changes[0]]
