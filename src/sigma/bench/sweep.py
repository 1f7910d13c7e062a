"""A sweep, serial against a dask LocalCluster: `sigma bench sweep [--jobs 1000] [--workers N]`.

The first --jobs DAG jobs of trace day 2 (the repository's slice), prod from that day's
cluster averages (share 0.5, requests 2x the peak, batch scaled to the trace's as `sigma sim`
does by default), on 96-core machines. The grid: policies requests and sigma x Level-0
thresholds 0.65/0.7, 0.8/0.85, 0.95/0.95 x seeds 0, 1 x sizes --machines: 24 simulations,
plus the unlimited-cluster run per seed the slowdowns are measured against (26 tasks). It runs
the grid in-process, then on a LocalCluster, and reports both wall times and whether every
row is equal. Measures; never asserts.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from rich.console import Console

from sigma.data_paths import alibaba_dir
from sigma.sim import batchload
from sigma.sim.alignment import available_days, clock_start, prod_days, trace_days
from sigma.sim.cluster import Machines
from sigma.sim.prod import build_fleet, load_prod_curves
from sigma.sim.run import SimInputs
from sigma.sim.sweep import grid
from sigma.sim.sweep_runner import run_dask, run_serial
from sigma.sim.traces import load_v2018_dag_jobs
from sigma.sim.workload import MEMORY_UNITS, from_dag_jobs

DAG_FILE = "v2018/derived/pivot_dag_jobs/jobs-5000-200-86400-172800.yaml"
USAGE_DIR = "v2018/derived/cluster_avg_machine_usage"
THRESHOLDS = [(0.65, 0.7), (0.8, 0.85), (0.95, 0.95)]


def sweep_inputs(jobs: int, machines: int) -> SimInputs:
    root = alibaba_dir()
    workload = from_dag_jobs(load_v2018_dag_jobs(root / DAG_FILE)).first_jobs(jobs)
    usage = root / USAGE_DIR
    days = prod_days(trace_days(workload.job_submit), available_days(usage), str(usage)).days
    curves = load_prod_curves(usage, days=days)
    size = Machines(machines, 96_000, MEMORY_UNITS)
    fleet = build_fleet(curves, size.count, size.cpu_millis, size.memory, 0.5, request_ratio=2.0)
    load = batchload.measure(workload, curves, size.count * size.cpu_millis / 1000, 0.5, None)
    workload = batchload.scale_instances(workload, load.scale, 0)
    return SimInputs(workload, fleet, size, ("requests", "sigma"),
                     start=clock_start(float(workload.job_submit.min()), None))


def run(argv: list[str]) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="sigma bench sweep")
    p.add_argument("--jobs", type=int, default=1000, help="the first N DAG jobs of trace day 2")
    p.add_argument("--machines", default="60,120", help="the two cluster sizes swept (the prod fleet is the larger's)")
    p.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    args = p.parse_args(argv)
    err = Console(stderr=True)
    sizes = [int(n) for n in args.machines.split(",")]
    inputs = sweep_inputs(args.jobs, max(sizes))
    points = grid(["requests", "sigma"], THRESHOLDS, [0, 1], sizes)
    err.print(f"{len(points)} simulations of {args.jobs} jobs ({inputs.workload.total_instances} instances)")
    t0 = time.perf_counter()
    serial = run_serial(inputs, points)
    serial_s = time.perf_counter() - t0
    err.print(f"serial: {serial_s:.1f} s")
    t1 = time.perf_counter()
    distributed, where = run_dask(inputs, points, workers=args.workers)
    dask_s = time.perf_counter() - t1
    err.print(f"LocalCluster ({where['workers']} workers): {dask_s:.1f} s")
    different = [i for i, (a, b) in enumerate(zip(serial, distributed, strict=True)) if a != b]
    return {"bench": "sweep", "jobs": args.jobs, "instances": inputs.workload.total_instances,
            "grid_simulations": len(points) - 2, "unlimited_baselines": 2, "tasks": len(points),
            "serial_wall_s": round(serial_s, 2), "localcluster_wall_s": round(dask_s, 2),
            "localcluster_workers": where["workers"], "speedup": round(serial_s / dask_s, 2),
            "rows_equal": not different, "rows_different": len(different), "cores": os.cpu_count(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2)}
