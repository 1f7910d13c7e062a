"""Writing a run's report: report.json (every figure), report.md (a table) and PNG plots.

report.json is deterministic for a given input and seed (no wall-clock times in it), so two
runs can be compared byte for byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sigma.sim.cluster import POLICIES

COLUMNS = (("machines_needed", "machines needed", "{}"), ("measured_at_machines", "measured at", "{}"),
           ("prod_violation", "prod violation", "{:.4%}"),
           ("cpu_util_mean", "CPU util mean", "{:.1%}"), ("cpu_util_p95", "CPU util p95", "{:.1%}"),
           ("memory_util_mean", "mem util mean", "{:.1%}"), ("jct_mean_s", "JCT mean s", "{:.0f}"),
           ("jct_p50_s", "JCT p50 s", "{:.0f}"), ("jct_p90_s", "JCT p90 s", "{:.0f}"),
           ("jct_p99_s", "JCT p99 s", "{:.0f}"), ("makespan_s", "makespan s", "{:.0f}"),
           ("evictions", "evictions", "{}"), ("sched_delay_mean_s", "sched delay mean s", "{:.1f}"))


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else round(f, 6)
    return value


def write(out: Path, report: dict[str, Any], series: dict[str, Any]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md"]
    (out / "report.json").write_text(json.dumps(_clean(report), indent=2, sort_keys=True) + "\n")
    (out / "report.md").write_text(markdown(report))
    written += plots(out, report, series)
    return written


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def markdown(report: dict[str, Any]) -> str:
    lines = ["# sigma sim report", ""]
    inputs = report["inputs"]
    lines.append(f"{inputs['jobs']} jobs, {inputs['tasks']} tasks, {inputs['instances']} instances on "
                 f"{inputs['machines']} machines of {inputs['cpus']:g} cores; prod: {inputs['prod']} "
                 f"({inputs['prod_pods']} pods, share {inputs['prod_share']}).")
    if "level0_thresholds" in inputs:
        t = inputs["level0_thresholds"]
        lines.append(f"Level-0 thresholds: cpu {t['cpu']:g}, memory {t['memory']:g}."
                     + (f" sigma-predictive: {inputs['prediction']}." if "prediction" in inputs else ""))
    if "prod_request_ratio" in inputs:
        looped = "looped" if inputs["prod_loop"] else "not looped"
        lines.append(f"Prod pods request {inputs['prod_request_ratio']:g}x their peak cpu; clock starts at trace "
                     f"second {inputs['clock_start_s']:.0f}; prod curves {looped}.")
    if "batch_load" in inputs:
        b = inputs["batch_load"]
        lines.append(f"Batch: the sampled jobs request {b['sampled_workload_cores_mean']:.0f} cores on average against "
                     f"the trace's {b['trace_batch_cores_mean']:.0f}; instances scaled x{b['scale']:.3g}, replaying "
                     f"{b['replayed_share']:.1%} of the trace's batch.")
    lines += ["", "Each policy at the size it needs (its own machines-needed), else at the common size:", ""]
    lines += _table(report["policies"])
    common = {k: v["at_common_size"] for k, v in report["policies"].items() if "at_common_size" in v}
    if common and any("at_own_size" in v for v in report["policies"].values()):
        lines += ["", f"All policies at the common size ({report.get('common_size_machines')} machines):", ""]
        lines += _table(common)
    for name, why in report.get("waiting", {}).items():
        lines.append(f"\nNot run: `{name}`: {why}.")
    if "machines_needed" in report:
        m = report["machines_needed"]
        sample = m.get("sample") or {}
        on = (f"{sample['jobs']} of {sample['of_jobs']} jobs ({sample['how']}: {sample['fraction']:.2%}, "
              f"{sample['prod_pods']} prod pods)" if "fraction" in sample else f"{m['workload_jobs']} jobs")
        lines += ["", f"Machines needed: binary search on {on}; "
                  f"rule: {m['rule']} (unlimited p90 = {_cell(m['unlimited_jct_p90_s'], '{:.0f}')} s)."]
    if report.get("checks"):
        lines += ["", "## Checks against figures the replay did not take as input", ""]
        for name, c in report["checks"].items():
            verdict = {True: "passed", False: "FAILED", None: "not run"}[c.get("passed")]
            detail = c.get("reason") or c.get("tolerance", "")
            extra = ""
            if "share_within_traced_span" in c:
                extra = (f" ({c['share_within_traced_span']:.1%} of jobs within their traced span; "
                         f"median ratio {c['median_ratio']:.4f})")
            lines.append(f"- {name}: {verdict}{extra}; {detail}")
    validation = report.get("validation", {})
    if "v2017" in validation:
        v = validation["v2017"]
        lines += ["", "## Validation (v2017, as-traced vs task timestamps)", ""]
        for key in ("running_instances", "batch_cpu_cores"):
            c = v[key]
            lines.append(f"- {key}: peak {c['peak_simulated']:.0f} vs {c['peak_reference']:.0f}; worst bucket "
                         f"{c['max_bucket_error_of_peak']:.4%} of peak, total {c['total_error']:.4%}: "
                         f"{'within' if c['within_tolerance'] else 'OUTSIDE'} 1%")
    if "v2018" in validation:
        v = validation["v2018"]
        lines += ["", "## Validation (v2018 cluster CPU utilisation)", "",
                  f"- mean {v['simulated_mean']:.1f}% vs trace {v['trace_mean']}% "
                  f"(gap {v['gap_points']:+.1f} points): {v['gap_reason']}"]
        for day, d in v["days"].items():
            lines.append(f"- {day}: {d['simulated']:.1f}% vs {d['published']}% ({d['gap_points']:+.1f})")
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def _table(policies: dict[str, Any]) -> list[str]:
    lines = ["| policy | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for name, s in policies.items():
        lines.append(f"| {name} | " + " | ".join(_cell(s.get(k), f) for k, _, f in COLUMNS) + " |")
    return lines


def plots(out: Path, report: dict[str, Any], series: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, ax = plt.subplots(figsize=(10, 4))
    for name, s in series.items():
        if name in POLICIES and POLICIES[name].as_traced:
            continue  # one node of unlimited capacity: its utilisation is 0 by construction
        ax.plot(s["time_s"] / 3600, s["cpu_util"] * 100, label=name, linewidth=0.8)
    ax.set(xlabel="hours", ylabel="cluster CPU utilisation %", title="CPU utilisation over time")
    ax.legend()
    paths.append(_save(fig, out / "utilisation.png"))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, s in series.items():
        jct = np.sort(s["jct"])
        if jct.size:
            ax.plot(np.maximum(jct, 1), np.arange(1, jct.size + 1) / jct.size, label=name)
    ax.set(xscale="log", xlabel="job completion time (s)", ylabel="fraction of jobs", title="JCT CDF")
    ax.legend()
    paths.append(_save(fig, out / "jct_cdf.png"))
    paths += _allocatable_plot(out, series)
    needed = {k: v.get("machines_needed") for k, v in report["policies"].items() if v.get("machines_needed")}
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(list(needed), list(needed.values()))
    ax.set(ylabel="machines", title="Machines needed per policy")
    paths.append(_save(fig, out / "machines_needed.png"))
    return paths


def _allocatable_plot(out: Path, series: dict[str, Any]) -> list[Path]:
    """Prod demand against the batch allocatable Level-0 published (usage-based policies):
    where the predictive line drops before the demand rises, batch was drained ahead."""
    import matplotlib.pyplot as plt

    shown = {k: s for k, s in series.items() if np.isfinite(s["batch_allocatable_cores"]).any()}
    if not shown:
        return []
    fig, (cpu, memory) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    first = max(shown.values(), key=lambda s: len(s["time_s"]))  # the longest run shows most prod
    cpu.plot(first["time_s"] / 3600, first["prod_demand_cores"], color="black", linewidth=0.8,
             label="prod demand")
    for name, s in shown.items():
        hours = s["time_s"] / 3600
        cpu.plot(hours, s["batch_allocatable_cores"], linewidth=0.8, label=f"{name}: batch allocatable")
        memory.plot(hours, s["batch_allocatable_memory_share"] * 100, linewidth=0.8, label=name)
    cpu.set(ylabel="cores (cluster total)", title="Level-0 batch allocatable against prod demand")
    memory.set(xlabel="hours", ylabel="batch memory allocatable, % of cluster")
    cpu.legend(fontsize=8)
    memory.legend(fontsize=8)
    return [_save(fig, out / "batch_allocatable.png")]


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
