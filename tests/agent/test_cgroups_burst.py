"""CPU burst on real cgroups (CgroupTree): read and written where the kernel has it, and a
quota lowered below a group's burst still applies (the kernel refuses a quota below the
burst, so the tree drops the burst first)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from sigma.agent.cgroups import CgroupTree
from sigma.agent.podspec import Resources
from tests.agent.conftest import needs_root

pytestmark = list(needs_root)


@pytest.fixture
def tree() -> Iterator[CgroupTree]:
    cg = CgroupTree(root=f"sigma-test-{uuid.uuid4().hex[:8]}")
    if not cg.available:
        pytest.skip("no writable cgroups")
    cg.setup()
    try:
        yield cg
    finally:
        cg.remove_all()


def test_a_prod_groups_burst_is_written_and_a_lower_limit_still_applies(tree: CgroupTree) -> None:
    rel = tree.ensure_pod("prod", "u1", Resources(100, 300))
    if tree.cpu_burst_us(rel) is None:
        pytest.skip("this kernel has no CFS burst (Linux < 5.14)")
    assert tree.cpu_burst_us(rel) == 0 and tree.cfs_quota_us(rel) == 30_000
    tree.set_cpu_burst_us(rel, 30_000)
    assert tree.cpu_burst_us(rel) == 30_000
    with pytest.raises(OSError):  # what the kernel does with a burst above the quota
        tree.set_cpu_burst_us(rel, 30_001)
    tree.apply(rel, Resources(100, 100))  # a quota below the burst: the burst goes first
    assert (tree.cfs_quota_us(rel), tree.cpu_burst_us(rel)) == (10_000, 0)
    tree.apply(rel, Resources(100, None))
    assert tree.cfs_quota_us(rel) is None
