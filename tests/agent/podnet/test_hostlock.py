"""One pod network per network namespace (sigma.agent.podnet.hostlock)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sigma.agent.podnet.hostlock import PodNetworkInUse, hold_pod_network, pod_network_holder


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    assert pod_network_holder(str(tmp_path)) is None
    fd = hold_pod_network("/srv/first", str(tmp_path))
    try:
        assert "/srv/first" in (pod_network_holder(str(tmp_path)) or "")
        with pytest.raises(PodNetworkInUse, match="/srv/first"):
            hold_pod_network("/srv/second", str(tmp_path))
    finally:
        os.close(fd)
    # Released with its descriptor (the kernel drops it with the process, however it ends).
    assert pod_network_holder(str(tmp_path)) is None
    os.close(hold_pod_network("/srv/second", str(tmp_path)))
