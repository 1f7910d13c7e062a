"""A runc start cut short between mounting its overlay rootfs and launching its shim leaves
nothing behind: the start releases what it prepared, and what an agent that died there left
is removed by remove_unfinished (called at the agent's start and at the end of a drain).
Real overlay mounts, so root and busybox."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from sigma.agent.images import ImageStore
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.runc import RuncRuntime
from sigma.bench.agentproc import release_mounts_under

from .conftest import needs_root
from .imagebuild import busybox_layout

BUSYBOX = shutil.which("busybox")
pytestmark = [
    *needs_root,
    pytest.mark.e2e,
    pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed (apt package busybox-static)"),
]


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(str(path) + "/")]


class FailsAfterTheRootfs(RuncRuntime):
    """config.json cannot be made: the rootfs is mounted by then."""

    def _adapt(self, config: dict[str, Any], spec: ContainerSpec) -> dict[str, Any]:
        raise OSError("no space left for config.json")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    assert BUSYBOX is not None
    busybox_layout(str(tmp_path / "layout"), BUSYBOX)
    images = ImageStore(str(tmp_path / "images"))
    images.import_path(str(tmp_path / "layout"))
    return images


def spec() -> ContainerSpec:
    return ContainerSpec(pod_uid=str(uuid.uuid4()), pod_namespace="default", pod_name="p", name="main",
                         attempt=0, command=["sleep", "30"], image="busybox:test")


def test_a_start_that_fails_after_mounting_its_rootfs_unmounts_it_and_forgets_it(
        tmp_path: Path, store: ImageStore) -> None:
    runtime = FailsAfterTheRootfs(str(tmp_path / "state"), store, overlay=True)
    try:
        with pytest.raises(OSError, match=r"config\.json"):
            runtime.start(spec())
        assert mounts_under(tmp_path) == []
        assert os.listdir(runtime.dir) == []
    finally:
        release_mounts_under(tmp_path)


def test_what_a_start_cut_short_left_is_removed_and_finished_containers_stay(
        tmp_path: Path, store: ImageStore) -> None:
    runtime = RuncRuntime(str(tmp_path / "state"), store, overlay=True)
    cut = spec()
    try:
        # As an agent killed between make_rootfs and the shim leaves it: a mounted rootfs, maybe
        # a spec.json, no state.json.
        rootfs = os.path.join(runtime.dir, cut.id, "bundle", "rootfs")
        assert store.make_rootfs(cut.image, rootfs, overlay=True) == "overlay"
        Path(runtime.dir, cut.id, "spec.json").write_text('{"mode": "runc"}')
        failed = spec()
        runtime.record_failure(failed, "StartError", "kept: it is reported and backed off")
        assert [c.id for c in runtime.list()] == [failed.id]  # the cut start is invisible to list()

        assert runtime.remove_unfinished() == (cut.id,)
        assert mounts_under(tmp_path) == []
        assert os.listdir(runtime.dir) == [failed.id]
        assert runtime.remove_unfinished() == ()
    finally:
        release_mounts_under(tmp_path)
