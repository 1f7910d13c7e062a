"""One `sigma sim` run: every policy on the same inputs, machines needed, validation, report.

Pure orchestration over the engine; the only I/O is done by the caller (loading traces
before, writing the report after). `progress(label, fraction)` reports how far it is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sigma.colocation.level0 import DEFAULT_THRESHOLDS, Thresholds
from sigma.sim import checks, validation
from sigma.sim.batchload import BatchLoad
from sigma.sim.cluster import POLICIES, WAITING, Machines, Policy, build_cluster
from sigma.sim.engine import Simulation
from sigma.sim.forecast import PredictSettings, ProdForecast
from sigma.sim.measures import Recorder
from sigma.sim.prod import ProdFleet, build_fleet
from sigma.sim.prod import curves_from_cluster_usage as load_prod_curves_from
from sigma.sim.search import SLACK, certain_failure, machines_needed, passes
from sigma.sim.traces import V2017BatchTasks, V2018ClusterUsage
from sigma.sim.workload import Workload, spread

Progress = Callable[[str, float], None]
# One simulation of a run: a module function of the inputs, its other arguments, its label.
Call = tuple[Callable[..., Any], tuple[Any, ...], str]
# Runs independent calls (in this process, or on workers that hold the inputs) and returns
# their results in the calls' order.
Tasks = Callable[[list[Call]], list[Any]]


@dataclass
class SimInputs:
    workload: Workload
    fleet: ProdFleet
    machines: Machines
    policies: tuple[str, ...]
    as_traced_workload: Workload | None = None  # v2017 with recorded lifetimes
    v2017_tasks: V2017BatchTasks | None = None
    v2018_usage: V2018ClusterUsage | None = None
    tick: float = 60.0
    seed: int = 0
    search: bool = True
    search_jobs: int = 0  # 0: the search replays the whole workload
    notes: list[str] = field(default_factory=list)
    thresholds: Thresholds = DEFAULT_THRESHOLDS  # Level-0 and suppress (the NodeSLO's)
    predict: PredictSettings = field(default_factory=PredictSettings)
    start: float | None = None  # trace second the clock starts at (None: the first submit)
    batch_load: BatchLoad | None = None  # how much of the trace's batch the workload carries
    dag_statistics: dict[str, Any] | None = None  # checks.dag_statistics of the workload as loaded
    _forecast: ProdForecast | None = field(default=None, init=False, repr=False)

    def forecast(self) -> ProdForecast:
        """One forecaster per run: every sigma-predictive simulation (and search probe) of
        the run asks for the same fits, so they are made once."""
        if self._forecast is None:
            self._forecast = ProdForecast(self.fleet.curves, self.predict)
        return self._forecast


def simulate(inputs: SimInputs, policy: Policy, machines: Machines, workload: Workload,
             unlimited: bool | None = None, progress: Callable[[float], None] | None = None,
             give_up: Callable[[Recorder, float], bool] | None = None, fleet: ProdFleet | None = None) -> Recorder:
    """`fleet`: the prod pods, when not the whole run's (a search sample's)."""
    fleet = fleet or inputs.fleet
    cluster = build_cluster(machines, fleet, policy, inputs.seed, unlimited=unlimited)
    forecast = inputs.forecast() if policy.predictive else None
    return Simulation(workload, fleet, cluster, policy, tick=inputs.tick, progress=progress,
                      thresholds=inputs.thresholds, forecast=forecast, start=inputs.start, give_up=give_up).run()


def serial_tasks(inputs: SimInputs, say: Progress) -> Tasks:
    """The calls one after another, here, each reporting how far it is."""
    def run_all(calls: list[Call]) -> list[Any]:
        out = []
        for fn, args, label in calls:
            say(label, 0.0)
            out.append(fn(inputs, *args, progress=functools.partial(say, label)))
            say(label, 1.0)
        return out
    return run_all


def run(inputs: SimInputs, progress: Progress | None = None,
        tasks: Tasks | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (report, series per policy). `tasks` runs each round's independent simulations
    (default: one after another, here); the report is the same whichever runs them."""
    say = progress or (lambda label, fraction: None)
    tasks = tasks or serial_tasks(inputs, say)
    report: dict[str, Any] = {
        "inputs": {"jobs": len(inputs.workload.job_names), "tasks": len(inputs.workload),
                   "instances": inputs.workload.total_instances, "skipped": inputs.workload.skipped,
                   "machines": inputs.machines.count, "cpus": inputs.machines.cpu_millis / 1000,
                   "memory_units": inputs.machines.memory, "prod": inputs.fleet.curves.source,
                   "prod_pods": inputs.fleet.count, "prod_share": inputs.fleet.share, "tick_s": inputs.tick,
                   "prod_request_ratio": inputs.fleet.request_ratio, "prod_loop": inputs.fleet.curves.loop,
                   "prod_curve_span_s": [inputs.fleet.curves.origin, inputs.fleet.curves.end],
                   "clock_start_s": inputs.start if inputs.start is not None else _first_submit(inputs.workload),
                   "seed": inputs.seed,
                   "level0_thresholds": {"cpu": inputs.thresholds.cpu, "memory": inputs.thresholds.memory}},
        "policies": {}, "waiting": {}, "notes": list(inputs.notes),
    }
    if inputs.batch_load is not None:
        report["inputs"]["batch_load"] = inputs.batch_load.describe()
        report["inputs"]["batch_scale"] = inputs.batch_load.scale
        report["inputs"]["batch_replayed_share"] = inputs.batch_load.replayed_share
    if any(POLICIES[p].predictive for p in inputs.policies if p in POLICIES):
        report["inputs"]["prediction"] = inputs.predict.describe(inputs.fleet.curves)
    series: dict[str, Any] = {}
    policies = [name for name in inputs.policies if name not in WAITING]
    for name in inputs.policies:
        if name in WAITING:
            report["waiting"][name] = WAITING[name]
    # Round one: every policy at the common size, and the unlimited clusters the checks and
    # the searches compare with. Round two needs the unlimited p90: each policy's search and
    # its run at the size found. Within a round the simulations are independent.
    wants_unlimited = inputs.search or inputs.workload.traced_span is not None
    calls: list[tuple[Callable[..., Any], tuple[Any, ...], str]] = [(_at_size, (name,), name) for name in policies]
    if wants_unlimited:
        calls.append((_unlimited_spans, (), "unlimited cluster"))
    sample = search_sample(inputs)
    sampled = inputs.search and sample.fraction < 1.0
    if sampled:
        calls.append((_search_baseline, (), "unlimited cluster (search workload)"))
    first = tasks(calls)
    for name, done in zip(policies, first, strict=False):
        series[name] = done["series"]
        report["policies"][name] = done["summary"]
        if "validation" in done:
            report["validation"] = done["validation"]
    for name, summary in list(report["policies"].items()):
        report["policies"][name] = {**summary, "measured_at_machines": inputs.machines.count,
                                    "at_common_size": dict(summary)}
    report["common_size_machines"] = inputs.machines.count
    unlimited = first[len(policies)] if wants_unlimited else None
    report["checks"] = _checks(inputs, report, unlimited)
    if inputs.search and unlimited is not None:
        whole_p90 = unlimited["summary"]["jct_p90_s"]
        search_p90 = first[-1] if sampled else whole_p90
        searched = [n for n in policies if not POLICIES[n].as_traced and search_p90 is not None]
        # On the whole workload the common size's run is already a probe: its verdict is known.
        common = {name: report["policies"][name]["at_common_size"] for name in searched} if not sampled else {}
        second = tasks([(_needed_and_own_size, (name, search_p90, whole_p90, common.get(name)),
                         f"{name}: machines needed") for name in searched])
        needed: dict[str, Any] = {"workload_jobs": len(sample.workload.job_names),
                                  "sample": _describe_sample(inputs, sample),
                                  "unlimited_jct_p90_s": search_p90,
                                  "rule": "prod_violation == 0 and jct_p90 <= 1.2 x unlimited"}
        for name, done in zip(searched, second, strict=True):
            needed[name] = done["found"]
            report["policies"][name]["machines_needed"] = done["found"]["machines"]
        # Each policy on the whole workload at the size it needs: what co-location buys is
        # seen there, not on a cluster every policy shares. The top-level figures of a policy
        # are these; `at_common_size` keeps the shared-size run. Whether the size found on the
        # search's workload also passes on the whole one is reported (a sampled search can be
        # wrong).
        needed["whole_workload_unlimited_jct_p90_s"] = whole_p90
        report["machines_needed"] = needed
        for name, done in zip(searched, second, strict=True):
            if done.get("own") is None:
                continue
            n, own, entry = done["found"]["machines"], done["own"], report["policies"][name]
            report["policies"][name] = {**own, "machines_needed": n, "measured_at_machines": n,
                                        "at_own_size": dict(own), "at_common_size": entry["at_common_size"]}
            series[name] = done["series"]
    return report, series


# -- the simulations of a run: module functions of the inputs, so a worker process can run them


def _recorded(rec: Recorder) -> dict[str, Any]:
    series = rec.series()
    series["jct"] = rec.jct()
    return {"summary": rec.summary(), "series": series}


def _at_size(inputs: SimInputs, name: str, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """One policy at the common size (the as-traced replay with its own workload and the
    validation against the trace)."""
    policy = POLICIES[name]
    workload = inputs.as_traced_workload if policy.as_traced and inputs.as_traced_workload else inputs.workload
    start, span = _horizon(inputs.workload)
    tick = (lambda t: progress(min((t - start) / span, 1.0))) if progress else None
    done = _recorded(simulate(inputs, policy, inputs.machines, workload, progress=tick))
    if policy.as_traced:
        done["validation"] = _validate(inputs, done["series"])
    return done


def _unlimited_spans(inputs: SimInputs, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    rec = simulate(inputs, POLICIES["requests"], inputs.machines, inputs.workload, unlimited=True)
    return {"summary": rec.summary(), "spans": rec.job_finish - rec.job_submit}


# The search stops once the passing size is within 1% of the failing one: on a day of
# thousands of machines, each further halving is a whole simulation for a few machines.
SEARCH_PRECISION = 0.01


@dataclass(frozen=True)
class SearchSample:
    """What each search probe replays: a slice of the whole run, batch, prod and machines
    alike. `fraction` is the sample's share of the whole workload's CPU-seconds; the prod
    pods and the machines are taken in the same proportion, so a probe of n machines of the
    whole is a cluster of n x fraction machines holding that share of both."""

    workload: Workload
    fleet: ProdFleet
    fraction: float

    def machines(self, whole: int) -> int:
        return max(1, round(whole * self.fraction))


def search_sample(inputs: SimInputs) -> SearchSample:
    """The whole run (`search_jobs` 0), or `search_jobs` jobs spread evenly over the arrival
    order (so the sample sees each hour of the day, quiet and busy) with the same share of
    prod pods (every k-th) and of machines. Jobs keep their own shapes and widths; a task is
    still wider against the slice's cluster than against the whole one, which biases the
    search (docs/simulator.md measures it)."""
    w = inputs.workload
    if inputs.search_jobs <= 0 or inputs.search_jobs >= len(w.job_names) or w.cpu_seconds <= 0:
        return SearchSample(w, inputs.fleet, 1.0)
    sample = w.select_jobs(w.spread_jobs(inputs.search_jobs))
    fraction = sample.cpu_seconds / w.cpu_seconds
    pods = inputs.fleet.count
    fleet = inputs.fleet.select(spread(pods, max(1, round(pods * fraction)))) if pods else inputs.fleet
    return SearchSample(sample, fleet, fraction)


def _describe_sample(inputs: SimInputs, sample: SearchSample) -> dict[str, Any]:
    if sample.fraction == 1.0:
        return {"jobs": len(sample.workload.job_names), "of_jobs": len(inputs.workload.job_names),
                "how": "the whole workload"}
    return {"jobs": len(sample.workload.job_names), "of_jobs": len(inputs.workload.job_names),
            "fraction": round(sample.fraction, 5), "prod_pods": sample.fleet.count,
            "how": "jobs spread evenly over the arrival order, with the same share of prod pods and machines"}


def _search_baseline(inputs: SimInputs, progress: Callable[[float], None] | None = None) -> float | None:
    """The batch p90 on an unlimited cluster, of the workload the searches replay."""
    sample = search_sample(inputs)
    p90: float | None = simulate(inputs, POLICIES["requests"], inputs.machines, sample.workload,
                                 unlimited=True, fleet=sample.fleet).summary()["jct_p90_s"]
    return p90


def _needed_and_own_size(inputs: SimInputs, name: str, search_p90: float, whole_p90: float | None,
                         at_common_size: dict[str, Any] | None = None,
                         progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """The binary search for the machines `name` needs, then the whole workload at that size.

    `at_common_size`: the summary of the whole workload at the common size, when the search
    runs on the whole workload (its verdict is then known). A whole-workload probe that
    passes ran to the end, so the size found is not replayed again."""
    policy, sample = POLICIES[name], search_sample(inputs)
    whole = sample.fraction == 1.0

    # A probe ends as soon as it cannot pass: half the probes of a search fail, and a
    # failing one would otherwise replay a cluster too small for its batch to the end.
    verdict = certain_failure(search_p90, SLACK)
    passed_runs: dict[int, dict[str, Any]] = {}

    @functools.cache
    def on(machines: int) -> dict[str, Any]:
        rec = simulate(inputs, policy, Machines(machines, inputs.machines.cpu_millis, inputs.machines.memory),
                       sample.workload, give_up=verdict, fleet=sample.fleet)
        summary = rec.summary()
        if whole and passes(summary, search_p90, SLACK):
            passed_runs.clear()  # a smaller passing size follows a larger one: keep the last only
            passed_runs[machines] = _recorded(rec)
        return summary

    known = {inputs.machines.count: passes(at_common_size, search_p90, SLACK)} if whole and at_common_size else None
    found = machines_needed(lambda n: on(sample.machines(n)), inputs.machines.count, search_p90, SLACK,
                            known=known, precision=SEARCH_PRECISION)
    n = found["machines"]
    if not n:
        return {"found": found, "own": None}
    if progress:
        progress(0.5)
    done = passed_runs.get(n) or _recorded(simulate(
        inputs, policy, Machines(n, inputs.machines.cpu_millis, inputs.machines.memory), inputs.workload))
    own = done["summary"]
    own["passes_rule_on_whole_workload"] = whole_p90 is not None and passes(own, whole_p90, SLACK)
    return {"found": found, "own": own, "series": done["series"]}


def _checks(inputs: SimInputs, report: dict[str, Any], unlimited: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    w = inputs.workload
    if w.traced_span is not None and unlimited is not None:
        out["v2018_job_spans"] = checks.job_spans(unlimited["spans"], w.traced_span)
    if inputs.dag_statistics is not None:
        out["v2018_dag_statistics"] = inputs.dag_statistics
    if inputs.batch_load is not None:
        out["cluster_cpu_vs_usage_curve"] = checks.cluster_cpu_not_run(inputs.fleet.curves.source)
    v2017 = report.get("validation", {}).get("v2017")
    if v2017 is not None:
        out["v2017_as_traced"] = {"check": "as-traced running instances and CPU per bucket against the task "
                                           "timestamps", "tolerance": "1% of peak per bucket, 1% of the total",
                                  "passed": v2017["within_tolerance"]}
    if "v2018" in report.get("validation", {}):
        out["v2018_prod_replay"] = checks.cluster_cpu_not_run("the cluster-average files replayed as prod alone")
    return out


def _first_submit(w: Workload) -> float:
    return float(w.job_submit.min()) if len(w) else 0.0


def _horizon(w: Workload) -> tuple[float, float]:
    start = float(w.job_submit.min()) if len(w) else 0.0
    return start, max(float(np.nanmax(w.job_submit)) - start, 1.0) * 1.5


def _validate(inputs: SimInputs, series: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if inputs.v2017_tasks is not None and inputs.as_traced_workload is not None:
        out["v2017"] = validation.v2017(inputs.v2017_tasks, series, inputs.tick,
                                         inputs.as_traced_workload.job_names)
    if inputs.v2018_usage is not None:
        # The cluster-average curve is the whole machine (prod and batch together), so the
        # replay is prod alone, at share 1.0, on the trace's machines, for the days it covers.
        usage = inputs.v2018_usage
        curves = load_prod_curves_from(usage)
        fleet = build_fleet(curves, inputs.machines.count, inputs.machines.cpu_millis, inputs.machines.memory, 1.0)
        replay = SimInputs(inputs.workload.first_jobs(0), fleet, inputs.machines, ("as-traced",), tick=300.0)
        cluster = build_cluster(inputs.machines, fleet, POLICIES["as-traced"], unlimited=False)
        rec = Simulation(replay.workload, fleet, cluster, POLICIES["as-traced"], tick=300.0,
                         start=curves.origin, until=curves.end).run()
        out["v2018"] = validation.v2018(usage, rec.series())
    return out
