"""Benchmark of the pure scheduling core: `sigma bench scheduler [--nodes N --pods P --seed S]`.

Two measurements on a synthetic cluster with the real Alibaba v2018 topology (machine_meta
failure domains as racks and zones) and real task sizes (v2018 DAG jobs):

- placements_per_s: pods placed one at a time by `Scheduler.schedule` (full filter set,
  reserve in place, preemption when needed) on a cluster pre-filled with low-priority pods.
- batch_placements_per_s: task instances placed by `InstancePlacer.place` against batch
  allocatable, one call per task with the task's real instance count.

Only the placement work is timed; building pods, nodes and snapshots is not.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from sigma.data_paths import alibaba_dir
from sigma.scheduling import (
    BATCH_CPU,
    BATCH_MEMORY,
    CPU,
    MEMORY,
    PODS,
    AntiAffinityTerm,
    ClusterSnapshot,
    InstancePlacement,
    InstancePlacer,
    LabelSelector,
    NodeSpec,
    PodSpec,
    Scheduler,
    SpreadConstraint,
    Taint,
    TaintEffect,
    Toleration,
    WhenUnsatisfiable,
    labels,
    requests,
)

GIB = 2**30
NODE_CORES, NODE_MEMORY, MAX_PODS = 96, 512 * GIB, 110  # v2018 machines: 96 cores; memory assumed
ZONE, RACK, HOST, POOL = (
    "topology.kubernetes.io/zone",
    "sigma.io/rack",
    "kubernetes.io/hostname",
    "sigma.io/pool",
)
DEDICATED = Taint("sigma.io/dedicated", "search", TaintEffect.NO_SCHEDULE)
DRAINING = Taint("sigma.io/draining", "soon", TaintEffect.PREFER_NO_SCHEDULE)
REPLICAS_PER_APP = 20
DAG_FILE = "v2018/derived/pivot_dag_jobs/jobs-5000-200-86400-172800.yaml"


@dataclass(frozen=True)
class TaskSize:
    milli_cpu: int
    memory: int
    instances: int


def load_task_sizes(path: Path) -> list[TaskSize]:
    """Real task sizes: cpus are cores (plan_cpu/100), mem is % of a machine's memory."""
    jobs = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return [
        TaskSize(
            max(1, round(task["cpus"] * 1000)),
            max(1, round(task["mem"] / 100 * NODE_MEMORY)),
            int(task["n_instances"]),
        )
        for job in jobs
        for task in job["tasks"]
    ]


def load_failure_domains(path: Path) -> list[tuple[str, str]]:
    """(rack, zone) per v2018 machine, from machine_meta's failure_domain_1 and _2."""
    domains: dict[str, tuple[str, str]] = {}
    with path.open() as handle:
        for row in csv.reader(handle):
            domains.setdefault(row[0], (f"rack-{row[2]}", f"zone-{row[3]}"))
    return list(domains.values())


def build_nodes(count: int, domains: list[tuple[str, str]], rng: random.Random) -> list[NodeSpec]:
    nodes = []
    for i in range(count):
        rack, zone = domains[i % len(domains)]
        taints = (DEDICATED,) if i % 20 == 7 else (DRAINING,) if i % 10 == 3 else ()
        batch_share = rng.uniform(0.2, 0.5)  # what Level-0 would reclaim from prod's real usage
        allocatable = {
            CPU: NODE_CORES * 1000,
            MEMORY: NODE_MEMORY,
            PODS: MAX_PODS,
            BATCH_CPU: int(NODE_CORES * 1000 * batch_share),
            BATCH_MEMORY: int(NODE_MEMORY * batch_share),
        }
        pool = "ssd" if i % 4 == 0 else "general"
        node_labels = labels({ZONE: zone, RACK: rack, HOST: f"node-{i}", POOL: pool})
        nodes.append(NodeSpec(f"node-{i}", allocatable, node_labels, taints, unschedulable=i % 100 == 42))
    return nodes


def filler_pods(nodes: list[NodeSpec], fill: float, rng: random.Random) -> list[tuple[PodSpec, str]]:
    """Low-priority pods already running, so the cluster is busy and preemption happens."""
    placed: list[tuple[PodSpec, str]] = []
    for node in nodes:
        used = 0
        while used < fill * NODE_CORES * 1000:
            cpu = rng.choice((4000, 8000, 16000))
            priority = rng.choice((3000, 3500, 5000, 5500))
            uid = f"filler-{len(placed)}"
            pod = PodSpec(
                uid,
                uid,
                priority=priority,
                requests=requests({CPU: cpu, MEMORY: cpu * 4 * 2**20}),
                labels=labels(app="filler"),
            )
            placed.append((pod, node.name))
            used += cpu
    return placed


def app_pods(count: int, sizes: list[TaskSize], rng: random.Random) -> list[PodSpec]:
    """Deployments of REPLICAS_PER_APP identical pods; a mix of priorities and constraints."""
    pods: list[PodSpec] = []
    while len(pods) < count:
        app = f"app-{len(pods) // REPLICAS_PER_APP}"
        size = rng.choice(sizes)
        kind = rng.random()
        template = PodSpec(
            uid="",
            name="",
            priority=rng.choice((9500, 9000, 7500, 5500, 3500)),
            requests=requests({CPU: size.milli_cpu * 4, MEMORY: size.memory * 4}),
            labels=labels(app=app),
            node_selector=labels({POOL: "ssd"}) if kind < 0.1 else (),
            tolerations=(Toleration(DEDICATED.key, "Exists"),) if 0.1 <= kind < 0.15 else (),
            anti_affinity=(AntiAffinityTerm(_app(app), HOST),) if 0.15 <= kind < 0.2 else (),
            spread=_spread(app, kind),
        )
        for replica in range(min(REPLICAS_PER_APP, count - len(pods))):
            uid = f"{app}-{replica}"
            pods.append(PodSpec(**{**template.__dict__, "uid": uid, "name": uid}))
    return pods


def _app(app: str) -> LabelSelector:
    return LabelSelector(match_labels=labels(app=app))


def _spread(app: str, kind: float) -> tuple[SpreadConstraint, ...]:
    if 0.2 <= kind < 0.35:
        return (SpreadConstraint(1, ZONE, _app(app)),)
    if 0.35 <= kind < 0.5:
        return (SpreadConstraint(2, RACK, _app(app), WhenUnsatisfiable.SCHEDULE_ANYWAY),)
    return ()


def place_pods(scheduler: Scheduler, pods: list[PodSpec], console: Console) -> dict[str, Any]:
    unschedulable = preemptions = victims = 0
    started = time.perf_counter()
    for done, pod in enumerate(pods, 1):
        result = scheduler.schedule(pod)
        if not result.status.is_success:
            if result.preemption is not None:
                scheduler.preempt(pod, result.preemption)
                preemptions += 1
                victims += len(result.preemption.victims)
            else:
                unschedulable += 1
        if done % 5000 == 0:
            console.log(f"placed {done}/{len(pods)} pods")
    elapsed = time.perf_counter() - started
    return {
        "placements_per_s": round(len(pods) / elapsed),
        "unschedulable": unschedulable,
        "preemptions": preemptions,
        "victims": victims,
        "pods_seconds": round(elapsed, 3),
    }


def place_batch(snapshot: ClusterSnapshot, sizes: list[TaskSize], console: Console) -> dict[str, Any]:
    """Every task of the DAG file once, releasing the oldest tasks (untimed) when short."""
    placer = InstancePlacer(snapshot)
    running: deque[InstancePlacement] = deque()
    placed = short = 0
    timed = 0.0
    for size in sizes:
        ask = requests({BATCH_CPU: size.milli_cpu, BATCH_MEMORY: size.memory})
        started = time.perf_counter()
        placement = placer.place(ask, size.instances)
        timed += time.perf_counter() - started
        placed += placement.placed
        running.append(placement)
        if placement.placed < size.instances:
            short += 1
            while len(running) > len(sizes) // 20:  # finished instances free their capacity
                placer.release(running.popleft())
    console.log(f"placed {placed} batch instances of {len(sizes)} tasks")
    return {
        "batch_placements_per_s": round(placed / timed),
        "batch_instances": placed,
        "batch_tasks": len(sizes),
        "batch_tasks_short": short,
    }


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="sigma bench scheduler", description=__doc__)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fill", type=float, default=0.8, help="cpu share pre-filled with low-priority pods")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    rng = random.Random(args.seed)
    console.log("loading Alibaba v2018 machine_meta and DAG jobs")
    sizes = load_task_sizes(alibaba_dir() / DAG_FILE)
    nodes = build_nodes(args.nodes, load_failure_domains(alibaba_dir() / "v2018/machine_meta.csv"), rng)
    snapshot = ClusterSnapshot(nodes, filler_pods(nodes, args.fill, rng))
    pods = app_pods(args.pods, sizes, rng)
    console.log(f"{len(nodes)} nodes, {sum(map(len, snapshot.pods_on_node))} running pods; scheduling")
    result: dict[str, Any] = {"bench": "scheduler", "nodes": args.nodes, "pods": args.pods, "seed": args.seed}
    result |= place_pods(Scheduler(snapshot, seed=args.seed), pods, console)
    result |= place_batch(ClusterSnapshot(nodes), sizes, console)
    return result


if __name__ == "__main__":  # pragma: no cover
    print(run(sys.argv[1:]))
