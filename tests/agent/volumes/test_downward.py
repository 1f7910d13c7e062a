"""Downward API values in kubelet's spelling."""

from __future__ import annotations

import pytest

from sigma.agent.volumes.downward import DownwardError, field_value, resource_value
from sigma.agent.volumes.sources import Sources

POD = {"metadata": {"name": "p", "labels": {"z": "1", "a": 'say "hi"\n'}},
       "spec": {"containers": [{"name": "c", "resources": {"requests": {"memory": "100Mi"}}}]}}


def test_whole_label_map_is_sorted_quoted_lines() -> None:
    assert field_value(POD, "metadata.labels", Sources()) == 'a="say \\"hi\\"\\n"\nz="1"'
    assert field_value(POD, "metadata.labels['missing']", Sources()) == ""


def test_resources_round_up_and_unknowns_are_errors() -> None:
    assert resource_value(POD, "c", {"resource": "requests.memory", "divisor": "1Gi"}, Sources()) == "1"
    assert resource_value(POD, "c", {"resource": "limits.cpu"}, Sources(node_cpu_millis=2500)) == "3"
    with pytest.raises(DownwardError, match="unsupported container resource"):
        resource_value(POD, "c", {"resource": "limits.ephemeral-storage"}, Sources())
    with pytest.raises(DownwardError, match='container "x" not found'):
        resource_value(POD, "c", {"resource": "limits.cpu", "containerName": "x"}, Sources())
    with pytest.raises(DownwardError, match="unsupported fieldPath"):
        field_value(POD, "spec.priority", Sources())
