"""A sweep: many simulations over policies x Level-0 thresholds x seeds x cluster sizes.

Pure: the grid of points, one result row per point and the frontier of machines against
prod violation and batch slowdown are plain functions of their inputs. Running the points
(in-process or on dask.distributed) is `sigma.sim.sweep_runner`'s job; it calls
`run_point`, so a serial run and a distributed one compute each row with the same code.

Batch slowdown is a point's batch p90 job completion time over the p90 of the same workload
on an unlimited cluster (the machines-needed rule's denominator, `sigma.sim.search`), one
unlimited run per seed.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any

from sigma.colocation.slo import node_slo
from sigma.sim.cluster import POLICIES, Machines
from sigma.sim.run import SimInputs, simulate


@dataclass(frozen=True, order=True)
class Point:
    """One simulation of a sweep. `machines` 0 is the unlimited cluster a seed's slowdown
    is measured against."""

    policy: str
    cpu_threshold: float
    memory_threshold: float
    seed: int
    machines: int

    @property
    def unlimited(self) -> bool:
        return self.machines == 0


def grid(policies: list[str], thresholds: list[tuple[float, float]], seeds: list[int],
         machines: list[int]) -> list[Point]:
    """Every combination, in a fixed order, plus one unlimited baseline per seed (first)."""
    for name in policies:
        if name not in POLICIES or POLICIES[name].as_traced:
            known = ", ".join(k for k, v in POLICIES.items() if not v.as_traced)
            raise ValueError(f"--sweep-policies: unknown policy {name!r}; known: {known}")
    for cpu, memory in thresholds:
        if not (0 < cpu <= 1 and 0 < memory <= 1):
            raise ValueError(f"--sweep-thresholds: {cpu:g}:{memory:g} is not in (0, 1]")
    if any(n <= 0 for n in machines):
        raise ValueError(f"--sweep-machines: sizes must be > 0, got {machines}")
    if not (policies and thresholds and seeds and machines):
        raise ValueError("a sweep needs at least one policy, threshold pair, seed and cluster size")
    base = [Point("requests", 1.0, 1.0, seed, 0) for seed in dict.fromkeys(seeds)]
    points = [Point(p, c, m, s, n) for p, (c, m), s, n in
              itertools.product(dict.fromkeys(policies), dict.fromkeys(thresholds), dict.fromkeys(seeds),
                                dict.fromkeys(machines))]
    return base + points


def parse_thresholds(text: str) -> list[tuple[float, float]]:
    """"0.65:0.7,0.8:0.85" -> [(0.65, 0.7), (0.8, 0.85)]; a lone number sets both."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        cpu, _, memory = part.partition(":")
        try:
            pair = (float(cpu), float(memory or cpu))
        except ValueError:
            raise ValueError(f"--sweep-thresholds: {part!r} is not CPU:MEMORY (e.g. 0.65:0.7)") from None
        out.append(pair)
    return out


def parse_ints(text: str, option: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"{option}: {text!r} is not a comma-separated list of integers") from None


def point_inputs(inputs: SimInputs, point: Point) -> SimInputs:
    """The run's inputs with the point's seed and Level-0 thresholds (read through the
    NodeSLO, as `sigma sim --cpu-threshold` and a live node do)."""
    slo = node_slo({"cpuThreshold": point.cpu_threshold, "memoryThreshold": point.memory_threshold})
    return dataclasses.replace(inputs, seed=point.seed, thresholds=slo.thresholds, notes=[])


def run_point(inputs: SimInputs, point: Point) -> dict[str, Any]:
    """One simulation; its summary as a row (deterministic for the same inputs and point)."""
    machines = inputs.machines if point.unlimited else Machines(point.machines, inputs.machines.cpu_millis,
                                                                inputs.machines.memory)
    policy = POLICIES[point.policy]
    summary = simulate(point_inputs(inputs, point), policy, machines, inputs.workload,
                       unlimited=True if point.unlimited else None).summary()
    return {**dataclasses.asdict(point), **summary}


def with_slowdown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the sized points, each with `batch_slowdown` against its seed's unlimited run
    (None when a run left jobs unfinished: its p90 says nothing about the rest)."""
    base = {r["seed"]: r["jct_p90_s"] for r in rows if r["machines"] == 0}
    out = []
    for r in rows:
        if r["machines"] == 0:
            continue
        p90, ref = r.get("jct_p90_s"), base.get(r["seed"])
        finished = r["jobs_finished"] == r["jobs"]
        slowdown = p90 / ref if finished and p90 is not None and ref else None
        out.append({**r, "batch_slowdown": slowdown})
    return out


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """a is no worse than b everywhere and better somewhere (every objective minimised)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto(points: list[tuple[float, ...]]) -> list[int]:
    """Indices of the points no other point dominates, in input order. Equal points are all kept."""
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


OBJECTIVES = ("machines", "prod_violation", "batch_slowdown")


def frontier(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per policy, the rows on the frontier of machines against prod violation and batch
    slowdown (all minimised, averaged over seeds per (thresholds, machines)). A setting
    whose batch did not finish on some seed has no slowdown and cannot be on it."""
    groups: dict[tuple[str, float, float, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["policy"], r["cpu_threshold"], r["memory_threshold"], r["machines"]), []).append(r)
    settings: dict[str, list[dict[str, Any]]] = {}
    for (policy, cpu, memory, machines), members in sorted(groups.items()):
        slowdowns = [m["batch_slowdown"] for m in members]
        if any(s is None for s in slowdowns):
            continue
        settings.setdefault(policy, []).append({
            "policy": policy, "cpu_threshold": cpu, "memory_threshold": memory, "machines": machines,
            "prod_violation": sum(m["prod_violation"] for m in members) / len(members),
            "batch_slowdown": sum(slowdowns) / len(members), "seeds": len(members)})
    out = {}
    for policy, candidates in settings.items():
        keep = pareto([tuple(float(c[k]) for k in OBJECTIVES) for c in candidates])
        out[policy] = [candidates[i] for i in keep]
    return out
