"""Each agent its own cgroup subtree: two agents on one machine (two `sigma up`) never share
one, whatever their node names, and a restart finds the subtree its pods are in."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigma.agent.cgroups import CGROUP_ROOT_FILE, LEGACY_ROOT, CgroupTree, agent_cgroup_root, default_cgroup_root


def test_two_state_directories_of_one_node_get_two_roots(tmp_path: Path) -> None:
    a = agent_cgroup_root(None, "vm", str(tmp_path / "a" / "agent"))
    b = agent_cgroup_root(None, "vm", str(tmp_path / "b" / "agent"))
    assert a != b
    assert a.startswith("sigma-vm-") and b.startswith("sigma-vm-")
    assert set(CgroupTree(root=a).own_roots).isdisjoint(CgroupTree(root=b).own_roots)


def test_the_root_is_recorded_and_kept(tmp_path: Path) -> None:
    state = tmp_path / "agent"
    first = agent_cgroup_root(None, "Node_1.example", str(state))
    assert (state / CGROUP_ROOT_FILE).read_text().strip() == first
    assert (state / CGROUP_ROOT_FILE).stat().st_mode & 0o777 == 0o600  # as the agent's own files are
    assert first == default_cgroup_root("Node_1.example", str(state))
    assert agent_cgroup_root(None, "renamed", str(state)) == first  # a restart finds its pods
    assert agent_cgroup_root("sigma-mine", "vm", str(state)) == "sigma-mine"  # asked for: used and recorded
    assert agent_cgroup_root(None, "vm", str(state)) == "sigma-mine"


def test_asking_beforehand_records_nothing(tmp_path: Path) -> None:
    state = tmp_path / "agent"
    assert agent_cgroup_root(None, "vm", str(state), record=False) == default_cgroup_root("vm", str(state))
    assert not state.exists()


def test_a_state_directory_from_before_keeps_the_old_shared_root(tmp_path: Path) -> None:
    state = tmp_path / "agent"
    (state / "process" / "abc").mkdir(parents=True)
    (state / "process" / "abc" / "state.json").write_text("{}")
    assert agent_cgroup_root(None, "vm", str(state)) == LEGACY_ROOT


@pytest.mark.parametrize("bad", ["../escape", "a b", "sigma;rm"])
def test_a_root_that_is_no_cgroup_path_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="--cgroup-root"):
        agent_cgroup_root(bad, "vm", str(tmp_path))
