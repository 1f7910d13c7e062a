"""`sigma sim`: replay Alibaba traces on a virtual clock and compare co-location policies.

    sigma sim --dag-jobs jobs-...yaml [--dag-jobs ...] --prod-usage machine_usage.csv \\
              --machines 4034 --policies segregated,requests,sigma --out DIR
    sigma sim --v2017-batch-task batch_task.csv --v2017-jobs jobs.csv \\
              --v2017-server-event server_event.csv --policies as-traced,segregated,requests,sigma --out DIR
    sigma sim ... --policies sigma,sigma-predictive --predict-lead 30 --memory-threshold 0.85
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sigma.cli import sim_sweep
from sigma.sim import batchload, checks, options
from sigma.sim.alignment import available_days, clock_start, prod_days, trace_days
from sigma.sim.cluster import POLICIES, WAITING, Machines
from sigma.sim.prod import DEFAULT_REQUEST_RATIO, ProdCurves, build_fleet, load_prod_curves, no_prod
from sigma.sim.run import SimInputs, Tasks, run
from sigma.sim.sweep_runner import SchedulerUnreachable, dask_tasks
from sigma.sim.traces import (
    TraceError,
    load_v2017_batch_tasks,
    load_v2017_server_events,
    load_v2018_cluster_usage,
    load_v2018_dag_jobs,
    load_v2018_machine_meta,
)
from sigma.sim.workload import MEMORY_UNITS, Workload, concat, from_dag_jobs, from_v2017


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sim", help="trace-driven simulation of co-location policies")
    p.add_argument("--dag-jobs", type=Path, action="append", default=[], help="v2018 DAG jobs yaml (repeat)")
    p.add_argument("--prod-usage", type=Path, help="v2018 machine_usage.csv, or a dir of day_N cluster averages")
    p.add_argument("--prod-share", type=float, default=0.5,
                   help="fraction of the usage curve that is prod (the curves count prod and batch)")
    p.add_argument("--prod-request-ratio", type=float, default=DEFAULT_REQUEST_RATIO,
                   help="prod pods' cpu request / their peak cpu usage (>= 1; docs/simulator.md says where "
                        f"the default {DEFAULT_REQUEST_RATIO:g} comes from)")
    p.add_argument("--prod-loop", action="store_true",
                   help="lay a loop of the prod curves over job days they do not cover (reported)")
    p.add_argument("--batch-scale", default="auto",
                   help="multiply every task's instances by this (a number), or 'auto': so that the replayed batch "
                        "carries the trace's batch cores, (1 - prod share) of the usage curve (reported)")
    p.add_argument("--start", type=float, help="trace second the virtual clock starts at (default: first submit)")
    p.add_argument("--v2017-batch-task", type=Path, help="v2017 batch_task.csv: the batch jobs to replay")
    p.add_argument("--v2017-jobs", type=Path, help="CloudSimPy jobs.csv: mean instance durations")
    p.add_argument("--v2017-server-event", type=Path, help="v2017 server_event.csv: the machines at t=0")
    p.add_argument("--v2018-machine-meta", type=Path, help="v2018 machine_meta.csv: the machines")
    p.add_argument("--v2018-cluster-usage", type=Path, help="day_N dir: validate cluster CPU utilisation")
    p.add_argument("--machines", type=int, help="cluster size (default: the trace's machines)")
    p.add_argument("--cpus", type=float, help="cores per machine")
    p.add_argument("--memory", type=float, help="memory per machine, as a fraction of the largest")
    p.add_argument("--policies", default="segregated,requests,sigma",
                   help=f"comma-separated, compared in one run; of: {', '.join(POLICIES)}")
    p.add_argument("--jobs", type=int, help="replay only the first N jobs")
    p.add_argument("--tick", type=float, default=60.0, help="agent report / metrics interval, seconds")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (a run replays exactly)")
    p.add_argument("--no-search", action="store_true", help="skip the machines-needed search")
    p.add_argument("--search-jobs", type=_jobs_count, default=0,
                   help="jobs each search probe replays: 0 (default) the whole workload; N: a slice of N jobs "
                        "spread over the arrivals with the same share of prod pods and machines (quicker, and "
                        "biased: docs/simulator.md)")
    options.add_arguments(p)
    sim_sweep.add_arguments(p)
    p.add_argument("--out", type=Path, required=True, help="directory for report.json, report.md and the plots")
    p.set_defaults(func=run_sim)


def run_sim(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    if args.serial and args.dask_scheduler:
        err.print("[red]sigma sim: --serial and --dask-scheduler exclude each other[/]")
        return 2
    try:
        inputs = load_inputs(args)
    except (TraceError, ValueError) as e:
        err.print(f"[red]sigma sim: {e}[/]", soft_wrap=True)  # one line, however long
        return 2
    if args.sweep:
        return sim_sweep.run(args, inputs)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(label: str, fraction: float) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=1.0)
            bar.update(tasks[label], completed=fraction)

        try:
            with comparison_tasks(args, inputs, progress) as runner:
                report, series = run(inputs, progress, runner)
        except SchedulerUnreachable as e:
            bar.stop()
            err.print(f"[red]sigma sim: {e}[/]", soft_wrap=True)
            return 2
    from sigma.sim.report import markdown, write

    written = write(args.out, report, series)
    Console().print(markdown(report))
    err.print("wrote " + ", ".join(str(p) for p in written))
    return 0


# A comparison runs its independent simulations (the policies, then their searches) on a
# LocalCluster from this size on; below it starting the workers costs more than it saves.
PARALLEL_FROM_INSTANCES = 1_000_000


@contextlib.contextmanager
def comparison_tasks(args: argparse.Namespace, inputs: SimInputs,
                     progress: Callable[[str, float], None]) -> Iterator[Tasks | None]:
    """None (one after another, here) or dask tasks: --serial, --dask-scheduler and --workers
    decide, else the workload's size."""
    parallel = args.dask_scheduler or (args.workers or 0) > 1 or (
        inputs.workload.total_instances >= PARALLEL_FROM_INSTANCES and (os.cpu_count() or 1) > 1)
    if args.serial or not parallel:
        yield None
        return
    with dask_tasks(inputs, args.dask_scheduler, args.workers, progress) as (tasks, _):
        yield tasks


def load_inputs(args: argparse.Namespace) -> SimInputs:
    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    for p in policies:
        if p not in POLICIES and p not in WAITING:
            raise ValueError(f"unknown policy {p!r}; known: {', '.join([*POLICIES, *WAITING])}")
    notes: list[str] = []
    parts: list[Workload] = [from_dag_jobs(load_v2018_dag_jobs(path)) for path in args.dag_jobs]
    tasks = as_traced = None
    if args.v2017_batch_task:
        tasks = load_v2017_batch_tasks(args.v2017_batch_task, args.v2017_jobs)
        notes.append(tasks.report.summary())
        parts.append(from_v2017(tasks))
        as_traced = from_v2017(tasks, as_traced=True)
    if not parts:
        raise ValueError("no batch workload: give --dag-jobs or --v2017-batch-task")
    workload = concat(parts)
    if args.jobs:
        workload = workload.first_jobs(args.jobs)
        if as_traced is not None:
            as_traced = as_traced.first_jobs(args.jobs)
    machines = _machines(args, notes)
    start = clock_start(float(workload.job_submit.min()), args.start)
    statistics = checks.dag_statistics(workload) if workload.traced_span is not None else None
    fleet = no_prod()
    load = None
    if args.prod_usage:
        curves = _prod_curves(args, workload, notes)
        fleet = build_fleet(curves, machines.count, machines.cpu_millis, machines.memory, args.prod_share,
                            request_ratio=args.prod_request_ratio)
        load = batchload.measure(workload, curves, machines.count * machines.cpu_millis / 1000, args.prod_share,
                                 _batch_scale(args.batch_scale))
        workload = batchload.scale_instances(workload, load.scale, args.seed)
    elif args.batch_scale != "auto":
        workload = batchload.scale_instances(workload, _batch_scale(args.batch_scale) or 1.0, args.seed)
    usage = load_v2018_cluster_usage(args.v2018_cluster_usage) if args.v2018_cluster_usage else None
    return SimInputs(workload, fleet, machines, policies, as_traced_workload=as_traced, v2017_tasks=tasks,
                     v2018_usage=usage, tick=args.tick, seed=args.seed, search=not args.no_search,
                     search_jobs=args.search_jobs, notes=notes, thresholds=options.thresholds(args),
                     predict=options.predict_settings(args), start=start, batch_load=load,
                     dag_statistics=statistics)


def _jobs_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number of jobs >= 0 (0: the whole workload), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a whole number of jobs >= 0 (0: the whole workload), got {text!r}")
    return value


def _batch_scale(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--batch-scale must be 'auto' or a number > 0, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"--batch-scale must be 'auto' or a number > 0, got {text!r}")
    return value


def _prod_curves(args: argparse.Namespace, workload: Workload, notes: list[str]) -> ProdCurves:
    """The prod curves of the jobs' own trace days (aligned time, sigma.sim.alignment)."""
    path: Path = args.prod_usage
    if path.is_dir():
        chosen = prod_days(trace_days(workload.job_submit), available_days(path), str(path), args.prod_loop)
        notes.append(chosen.note)
        return load_prod_curves(path, days=chosen.days, loop=chosen.loop)
    curves = load_prod_curves(path, loop=args.prod_loop)
    first, last = float(workload.job_submit.min()), float(workload.job_submit.max())
    if not args.prod_loop and not (curves.origin <= first and last < curves.end):
        raise ValueError(f"{path}: the jobs are submitted over trace seconds {first:.0f}-{last:.0f} but the usage "
                         f"covers {curves.origin:.0f}-{curves.end:.0f}; give matching data, or --prod-loop")
    notes.append(f"prod curves: {curves.source}, trace seconds {curves.origin:.0f}-{curves.end:.0f}"
                 + (", looped (--prod-loop)" if args.prod_loop else ""))
    return curves


def _machines(args: argparse.Namespace, notes: list[str]) -> Machines:
    count, cpus, memory = None, None, None
    if args.v2018_machine_meta:
        meta = load_v2018_machine_meta(args.v2018_machine_meta)
        count, cpus, memory = len(meta.names), int(meta.cpus.max()), float(meta.mem.max()) / 100
    elif args.v2017_server_event:
        events = load_v2017_server_events(args.v2017_server_event)
        at_start = events.machines_at(0)
        count = len(at_start)
        cpus = max(m.cpus for m in at_start.values())
        memory = max(m.mem for m in at_start.values())
        notes.append(f"server_event: {count} machines at t=0; {events.count('softerror')} softerror events "
                     "are not modelled (the machines keep running their work)")
    count = args.machines or count
    cpus = args.cpus or cpus
    memory = args.memory or memory or 1.0
    if not count or not cpus:
        raise ValueError("cluster size unknown: give --machines and --cpus, or a machine table")
    return Machines(int(count), int(cpus * 1000), int(memory * MEMORY_UNITS))
