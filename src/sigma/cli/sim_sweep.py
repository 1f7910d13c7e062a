"""`sigma sim --sweep`: many simulations of the loaded workload, run in parallel on dask.

    sigma sim --dag-jobs jobs.yaml --prod-usage DIR --machines 200 --out DIR --sweep \\
              --sweep-policies requests,sigma --sweep-thresholds 0.65:0.7,0.8:0.85,0.95:0.95 \\
              --sweep-seeds 0,1 --sweep-machines 100,150,200 [--dask-scheduler tcp://HOST:8786 | --serial] --plot
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sigma.sim import sweep, sweep_report
from sigma.sim.run import SimInputs
from sigma.sim.sweep_runner import SchedulerUnreachable, run_dask, run_serial


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sweep (--sweep): policies x Level-0 thresholds x seeds x cluster sizes")
    g.add_argument("--sweep", action="store_true",
                   help="run a sweep instead of one comparison; writes sweep.json (a row per simulation and "
                        "the frontier of machines against prod violation and batch slowdown)")
    g.add_argument("--sweep-policies", help="comma-separated (default: --policies)")
    g.add_argument("--sweep-thresholds", help="Level-0 CPU:MEMORY pairs, comma-separated, e.g. 0.65:0.7,0.95:0.95 "
                                             "(default: --cpu-threshold:--memory-threshold)")
    g.add_argument("--sweep-seeds", default="0", help="comma-separated seeds")
    g.add_argument("--sweep-machines", help="comma-separated cluster sizes (default: --machines)")
    g.add_argument("--dask-scheduler", metavar="tcp://HOST:PORT",
                   help="run the simulations (a sweep's, or a comparison's independent ones) on this dask "
                        "scheduler's workers (default: a LocalCluster; a comparison of under a million "
                        "instances runs here)")
    g.add_argument("--serial", action="store_true", help="run the simulations one after another in this process")
    g.add_argument("--workers", type=int, help="LocalCluster worker processes (default: one per core)")
    g.add_argument("--plot", action="store_true", help="also plot the frontier to frontier.png")


def points(args: argparse.Namespace, inputs: SimInputs) -> list[sweep.Point]:
    policies = [p.strip() for p in (args.sweep_policies or args.policies).split(",") if p.strip()]
    thresholds = (sweep.parse_thresholds(args.sweep_thresholds) if args.sweep_thresholds
                  else [(args.cpu_threshold, args.memory_threshold)])
    seeds = sweep.parse_ints(args.sweep_seeds, "--sweep-seeds")
    machines = (sweep.parse_ints(args.sweep_machines, "--sweep-machines") if args.sweep_machines
                else [inputs.machines.count])
    return sweep.grid(policies, thresholds, seeds, machines)


def run(args: argparse.Namespace, inputs: SimInputs) -> int:
    err = Console(stderr=True)
    try:
        grid = points(args, inputs)
    except ValueError as e:
        err.print(f"[red]sigma sim: {e}[/]", soft_wrap=True)
        return 2
    columns = (TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    t0 = time.perf_counter()
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("sweep", total=len(grid))

        def done(_: sweep.Point) -> None:
            bar.advance(task)

        try:
            if args.serial:
                rows, where = run_serial(inputs, grid, done), {"scheduler": "serial", "workers": 1}
            else:
                rows, where = run_dask(inputs, grid, args.dask_scheduler, args.workers, done)
        except SchedulerUnreachable as e:
            bar.stop()
            err.print(f"[red]sigma sim: {e}[/]", soft_wrap=True)
            return 2
    wall = time.perf_counter() - t0
    sized = sweep.with_slowdown(rows)
    doc = sweep_report.document(
        {"jobs": len(inputs.workload.job_names), "instances": inputs.workload.total_instances,
         "cpus": inputs.machines.cpu_millis / 1000, "prod": inputs.fleet.curves.source,
         "prod_request_ratio": inputs.fleet.request_ratio, "simulations": len(grid), "notes": list(inputs.notes)},
        sized, sweep.frontier(sized), [r for r in rows if r["machines"] == 0])
    written = sweep_report.write(args.out, doc, args.plot)
    for policy, front in doc["frontier"].items():
        settings = ", ".join(f"{f['cpu_threshold']:g}/{f['memory_threshold']:g}@{f['machines']}" for f in front)
        err.print(f"{policy} frontier: {settings}")
    err.print(f"{len(grid)} simulations on {where['scheduler']} ({where['workers']} workers) in {wall:.1f} s; "
              "wrote " + ", ".join(str(p) for p in written))
    return 0
