"""Running a sweep's simulations: in-process, or as tasks on dask.distributed.

Each point is one task calling `sigma.sim.sweep.run_point`, the function the serial run
calls, on the same inputs (scattered to every worker once), so the rows are identical
whichever way they ran. Rows come back in the grid's order, not in the order they finished.

The cluster: a LocalCluster of one single-threaded worker process per core by default (the
simulator is pure Python and numpy, so processes, not threads, run in parallel), or an
existing scheduler's address, the way a sweep is spread over many machines.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sigma.sim.run import Call, Progress, SimInputs, Tasks
from sigma.sim.sweep import Point, run_point

Done = Callable[[Point], None]  # called once per finished simulation (progress)

CONNECT_TIMEOUT_S = 5.0


class SchedulerUnreachable(RuntimeError):
    """The dask scheduler address given does not answer."""


def run_serial(inputs: SimInputs, points: list[Point], done: Done | None = None) -> list[dict[str, Any]]:
    rows = []
    for point in points:
        rows.append(run_point(inputs, point))
        if done:
            done(point)
    return rows


@contextmanager
def dask_tasks(inputs: SimInputs, scheduler: str | None = None, workers: int | None = None,
               say: Progress | None = None) -> Iterator[tuple[Tasks, dict[str, Any]]]:
    """A comparison's rounds of simulations as dask tasks (`sigma.sim.run.run(..., tasks=)`):
    the inputs go to every worker once, each call is a task, results come back in the calls'
    order. Also where they run ({"scheduler", "workers"})."""
    from distributed import as_completed

    with _client(scheduler, workers) as client:
        where = {"scheduler": scheduler or "LocalCluster", "workers": len(client.scheduler_info()["workers"])}
        shared = client.scatter(inputs, broadcast=True)

        def run_all(calls: list[Call]) -> list[Any]:
            futures = [client.submit(fn, shared, *args, pure=False) for fn, args, _ in calls]
            labels = {f.key: label for f, (_, _, label) in zip(futures, calls, strict=True)}
            for label in labels.values():
                if say:
                    say(label, 0.0)
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                future.result()  # a task's error is raised here, as in a serial run
                if say:
                    say(labels[future.key], 1.0)
            return [f.result() for f in futures]

        yield run_all, where


def run_dask(inputs: SimInputs, points: list[Point], scheduler: str | None = None, workers: int | None = None,
             done: Done | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows, and where they ran ({"scheduler": address, "workers": n})."""
    from distributed import as_completed

    with _client(scheduler, workers) as client:
        where = {"scheduler": scheduler or "LocalCluster", "workers": len(client.scheduler_info()["workers"])}
        shared = client.scatter(inputs, broadcast=True)
        # pure=False: two equal points are still two simulations (the grid has none, but a
        # caller's list might), and dask must not hash the whole workload to find out.
        futures = [client.submit(run_point, shared, point, pure=False) for point in points]
        index = {f.key: i for i, f in enumerate(futures)}
        rows: list[dict[str, Any] | None] = [None] * len(points)
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            i = index[future.key]
            rows[i] = future.result()
            if done:
                done(points[i])
    return [r for r in rows if r is not None], where


@contextmanager
def _client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if scheduler is None:
        n = workers or os.cpu_count() or 1
        # The scheduler serves /metrics over HTTP whatever the dashboard setting: on loopback
        # (nothing off the machine reaches it) and on a port of its own, so that two sweeps
        # (or a sweep and a comparison) can run side by side.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",  # type: ignore[no-untyped-call]
                               dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL)
        with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    # distributed logs the failed connection attempts at ERROR with a traceback; the caller
    # prints one line instead.
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SchedulerUnreachable(f"dask scheduler {scheduler} unreachable within {CONNECT_TIMEOUT_S:g} s "
                                   f"({reason})") from None
    finally:
        quiet.setLevel(level)
    with client:
        yield client
