"""The cgroup tree on cgroup v2, against a directory that mimics a cgroup2 mount."""

from __future__ import annotations

from typing import Any

from sigma.agent.cgroups import CgroupTree
from sigma.agent.podspec import Resources


def fake_v2(tmp_path: Any) -> CgroupTree:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    return CgroupTree(root="sigma", mount=str(tmp_path))


def test_v2_is_detected_and_the_tree_uses_v2_files(tmp_path: Any) -> None:
    tree = fake_v2(tmp_path)
    assert (tree.version, tree.real) == (2, False)
    tree.setup()
    assert (tmp_path / "sigma-batch/cpu.weight").read_text() == "1"  # no cpu.idle file: weight 1
    assert "+memory" in (tmp_path / "sigma/cgroup.subtree_control").read_text()
    rel = tree.ensure_pod("prod", "u1", Resources(250, 500, 0, 64 * 2**20), cpuset="1")
    pod = tmp_path / rel
    assert (pod / "cpu.weight").read_text() == "10"
    assert (pod / "cpu.max").read_text() == "50000 100000"
    assert (pod / "memory.max").read_text() == str(64 * 2**20)
    assert (pod / "cpuset.cpus").read_text() == "1"
    assert tree.procs_files(rel) == [str(pod / "cgroup.procs")]
    assert tree.oom_counter(rel) == str(pod / "memory.events")


def test_v2_batch_quota_round_trip_and_removal(tmp_path: Any) -> None:
    tree = fake_v2(tmp_path)
    tree.setup()
    tree.set_batch_cpu_quota(1500)
    assert (tmp_path / "sigma-batch/cpu.max").read_text() == "150000 100000"
    assert tree.batch_cpu_quota() == 1500
    tree.set_batch_cpu_quota(None)
    assert tree.batch_cpu_quota() is None
    rel = tree.ensure_container(tree.ensure_pod("batch", "u2", Resources()), "main", Resources())
    (tmp_path / rel / "cgroup.procs").write_text("")
    tree.remove(tree.pod_path("batch", "u2"))
    assert not (tmp_path / "sigma-batch/u2").exists()


def test_v2_batch_parent_uses_cpu_idle_when_present(tmp_path: Any) -> None:
    tree = fake_v2(tmp_path)
    (tmp_path / "sigma-batch").mkdir(parents=True)
    (tmp_path / "sigma-batch/cpu.idle").write_text("0")
    tree.setup()
    assert (tmp_path / "sigma-batch/cpu.idle").read_text() == "1"


def test_v2_freezing_writes_cgroup_freeze(tmp_path: Any) -> None:
    tree = fake_v2(tmp_path)
    tree.setup()
    tree.set_frozen("sigma-batch", True)
    assert (tmp_path / "sigma-batch/cgroup.freeze").read_text() == "1"
    tree.set_frozen("sigma-batch", False)
    assert (tmp_path / "sigma-batch/cgroup.freeze").read_text() == "0"


def test_the_batch_parent_sits_beside_the_root_and_remove_all_takes_both(tmp_path: Any) -> None:
    # cpu.idle is idle only towards siblings: nested in <root>, batch's cycles would be charged
    # to <root> where it competes with the host's own tasks (see cgroups.py).
    tree = fake_v2(tmp_path)
    tree.setup()
    assert tree.tier_path("batch") == "sigma-batch" and tree.tier_path("prod") == "sigma/prod"
    assert tree.pod_path("batch", "u3") == "sigma-batch/u3"
    assert not (tmp_path / "sigma/batch").exists()
    tree.ensure_pod("batch", "u3", Resources())
    tree.ensure_pod("prod", "u4", Resources())
    tree.remove_all()
    assert not (tmp_path / "sigma").exists() and not (tmp_path / "sigma-batch").exists()
