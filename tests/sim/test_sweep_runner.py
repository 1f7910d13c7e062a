"""A sweep (or a comparison's rounds) on dask.distributed gives the serial result; a dead scheduler: one error."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from sigma.sim.run import run
from sigma.sim.sweep import grid
from sigma.sim.sweep_runner import SchedulerUnreachable, dask_tasks, run_dask, run_serial
from tests.sim.test_run import inputs


@pytest.mark.e2e
def test_a_local_cluster_gives_the_serial_rows() -> None:
    points = grid(["requests", "sigma"], [(0.65, 0.7), (0.9, 0.9)], [0, 1], [4, 6])
    base = inputs()
    serial = run_serial(base, points)
    finished: list[object] = []
    distributed, where = run_dask(base, points, workers=2, done=finished.append)
    assert where == {"scheduler": "LocalCluster", "workers": 2}
    assert len(finished) == len(points)
    assert distributed == serial  # same rows, same order, every float equal


def _same(a: object, b: object) -> bool:
    """Deep equality in which numpy arrays compare element by element (NaN equal to NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    return a == b or (a != a and b != b)  # NaN


@pytest.mark.e2e
def test_a_comparison_on_a_local_cluster_gives_the_serial_report() -> None:
    """The policies, the unlimited runs and the searches as dask tasks: the same report and
    series as one after another (the comparison's rounds only change where they run)."""
    serial_report, serial_series = run(inputs())
    labels: list[tuple[str, float]] = []
    base = inputs()
    with dask_tasks(base, workers=2, say=lambda label, f: labels.append((label, f))) as (tasks, where):
        report, series = run(base, tasks=tasks)
    assert where == {"scheduler": "LocalCluster", "workers": 2}
    assert json.dumps(report, sort_keys=True, default=str) == json.dumps(serial_report, sort_keys=True, default=str)
    assert list(report["policies"]) == list(serial_report["policies"]) == ["segregated", "requests", "sigma"]
    assert report["policies"]["sigma"]["machines_needed"] is not None
    assert _same(series, serial_series)
    finished = {label for label, f in labels if f == 1.0}
    assert {"segregated", "sigma", "unlimited cluster", "sigma: machines needed"} <= finished


def test_an_unreachable_scheduler_is_one_error_naming_it() -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(SchedulerUnreachable) as caught:
        run_dask(inputs(), grid(["sigma"], [(0.65, 0.7)], [0], [4]), scheduler=address)
    assert address in str(caught.value) and "\n" not in str(caught.value)
