"""Simulator throughput: `sigma bench sim [--jobs N] [--machines 1313] [--policy sigma]`.

Replays the complete v2017 batch_task (with CloudSimPy's instance durations) on 1,313
machines of 64 cores under one policy, batch only (the v2017 prod usage tables are not in the
shared data). Timed: the simulation itself; loading the trace is reported separately.
"instances" counts the instances that ran; tasks that never ran in the trace (Waiting, Ready,
Cancelled) or had no request are skipped, as the report's "skipped" says.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console

from sigma.data_paths import alibaba_dir
from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.engine import Simulation
from sigma.sim.prod import no_prod
from sigma.sim.traces import load_v2017_batch_tasks
from sigma.sim.workload import MEMORY_UNITS, from_v2017


def run(argv: list[str]) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="sigma bench sim")
    p.add_argument("--jobs", type=int, help="only the first N jobs (default: all)")
    p.add_argument("--machines", type=int, default=1313)
    p.add_argument("--cpus", type=int, default=64)
    p.add_argument("--policy", default="sigma", choices=[k for k, v in POLICIES.items() if not v.as_traced])
    args = p.parse_args(argv)
    err = Console(stderr=True)
    root = alibaba_dir() / "v2017"
    t0 = time.perf_counter()
    tasks = load_v2017_batch_tasks(root / "batch_task.csv", root / "derived/cloudsimpy/jobs.csv")
    workload = from_v2017(tasks)
    if args.jobs:
        workload = workload.first_jobs(args.jobs)
    load_s = time.perf_counter() - t0
    err.print(f"loaded {len(workload)} tasks, {workload.total_instances} instances in {load_s:.1f}s")
    fleet = no_prod()
    policy = POLICIES[args.policy]
    # v2017 server_event: every machine normalised memory 0.69 of the largest.
    machines = Machines(args.machines, args.cpus * 1000, int(0.69 * MEMORY_UNITS))
    cluster = build_cluster(machines, fleet, policy)
    t1 = time.perf_counter()
    rec = Simulation(workload, fleet, cluster, policy).run()
    wall = time.perf_counter() - t1
    summary = rec.summary()
    return {
        "bench": "sim", "policy": args.policy, "machines": args.machines,
        "jobs": len(workload.job_names), "tasks": len(workload), "instances": workload.total_instances,
        "instances_finished": summary["instances_finished"], "wall_s": round(wall, 2),
        "instances_per_s": round(workload.total_instances / wall), "load_s": round(load_s, 2),
        "jct_p90_s": summary["jct_p90_s"], "cpu_util_mean": summary["cpu_util_mean"],
        "skipped_tasks": workload.skipped,
    }
