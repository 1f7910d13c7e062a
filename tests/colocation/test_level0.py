from __future__ import annotations

import pytest

from sigma.colocation.level0 import (
    NodeInput,
    ProdUsage,
    Resources,
    Thresholds,
    batch_allocatable,
    should_update,
)

GIB = 2**30
NOW = 1000.0
CAPACITY = Resources(10_000, 100 * GIB)
REQUESTS = Resources(6000, 60 * GIB)


@pytest.mark.parametrize(
    ("node", "cpu", "memory", "basis"),
    [
        pytest.param(NodeInput(CAPACITY, REQUESTS, ProdUsage(NOW - 5, 2000, 20 * GIB)),
                     # 10000 x 0.65 - 2000 = 4500; 100Gi x 0.70 - 20Gi = 50Gi
                     4500, 50 * GIB, "usage", id="fresh usage reclaims what prod requested but does not use"),
        pytest.param(NodeInput(CAPACITY, REQUESTS, ProdUsage(NOW - 5, 2000, 20 * GIB, 3000, 30 * GIB)),
                     3500, 40 * GIB, "usage", id="the window's peak counts, not the current usage"),
        pytest.param(NodeInput(CAPACITY, REQUESTS, ProdUsage(NOW - 5, 2000, 20 * GIB), predicted=Resources(5000, 0)),
                     1500, 50 * GIB, "usage", id="a predicted rush reserves ahead"),
        pytest.param(NodeInput(CAPACITY, REQUESTS, ProdUsage(NOW - 120, 2000, 20 * GIB)),
                     # 6500 - 6000 = 500; 70Gi - 60Gi = 10Gi
                     500, 10 * GIB, "requests", id="stale metrics fall back to prod requests"),
        pytest.param(NodeInput(CAPACITY, REQUESTS, None), 500, 10 * GIB, "requests",
                     id="a node that never reported uses prod requests"),
        pytest.param(NodeInput(CAPACITY, REQUESTS, ProdUsage(NOW, 2000, 20 * GIB), reserve=Resources(500, 2 * GIB)),
                     4000, 48 * GIB, "usage", id="the system reserve is subtracted"),
        pytest.param(NodeInput(CAPACITY, REQUESTS, ProdUsage(NOW, 9000, 90 * GIB)), 0, 0, "usage",
                     id="prod above the threshold leaves batch nothing, never less than 0"),
        pytest.param(NodeInput(CAPACITY, REQUESTS, ProdUsage(NOW, 0, 0), thresholds=Thresholds(0.5, 0.5)),
                     5000, 50 * GIB, "usage", id="a NodeSLO threshold replaces the default"),
    ],
)
def test_batch_allocatable(node: NodeInput, cpu: int, memory: int, basis: str) -> None:
    result = batch_allocatable(node, NOW, staleness_s=60)
    assert (result.cpu_millis, result.memory_bytes, result.basis) == (cpu, memory, basis)
    assert result.reason


@pytest.mark.parametrize(
    ("current", "new", "update"),
    [
        pytest.param(None, Resources(1, 1), True, id="nothing published yet"),
        pytest.param(Resources(1000, 1000), Resources(1040, 1000), False, id="a 4 percent move is noise"),
        pytest.param(Resources(1000, 1000), Resources(1000, 940), True, id="a 6 percent drop is published"),
        pytest.param(Resources(1000, 1000), Resources(0, 1000), True, id="reaching zero is always published"),
        pytest.param(Resources(0, 1000), Resources(10, 1000), True, id="leaving zero is always published"),
        pytest.param(Resources(1000, 1000), Resources(1000, 1000), False, id="no change, no write"),
    ],
)
def test_should_update_only_on_a_real_change(current: Resources | None, new: Resources, update: bool) -> None:
    assert should_update(current, new, 0.05) is update
