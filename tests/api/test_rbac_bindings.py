from __future__ import annotations

from pathlib import Path

from sigma.api.auth.rbac import BUILTIN_BINDINGS, Bindings

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
