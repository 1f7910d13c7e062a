"""Running a sweep on dask.distributed gives the serial run's rows; a dead scheduler is one error."""

from __future__ import annotations

import socket

import pytest

from sigma.sim.sweep import grid
from sigma.sim.sweep_runner import SchedulerUnreachable, run_dask, run_serial
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


def test_an_unreachable_scheduler_is_one_error_naming_it() -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with pytest.raises(SchedulerUnreachable) as caught:
        run_dask(inputs(), grid(["sigma"], [(0.65, 0.7)], [0], [4]), scheduler=address)
    assert address in str(caught.value) and "\n" not in str(caught.value)
