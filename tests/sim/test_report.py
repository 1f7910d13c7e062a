"""report.md as a person reads it: the checks section names each check's verdict and figures."""

from __future__ import annotations

import numpy as np

from sigma.sim.checks import cluster_cpu_not_run, job_spans
from sigma.sim.report import markdown


def report(checks: dict[str, object]) -> dict[str, object]:
    inputs = {"jobs": 3, "tasks": 3, "instances": 3, "machines": 10, "cpus": 96.0, "prod": "none",
              "prod_pods": 0, "prod_share": 0.0}
    return {"inputs": inputs, "policies": {}, "checks": checks}


def test_the_checks_section_gives_each_verdict_and_the_span_figures() -> None:
    traced = np.array([100.0, 200.0, 400.0, 800.0])
    text = markdown(report({"v2018_job_spans": job_spans(traced / 100.0, traced),
                            "v2018_chains": job_spans(traced * 2.0, traced),
                            "cluster_cpu": cluster_cpu_not_run("cluster_avg_machine_usage")}))
    lines = {line.split(":")[0]: line for line in text.splitlines() if line.startswith("- ")}
    assert "passed (100.0% of jobs within their traced span; median ratio 0.0100)" in lines["- v2018_job_spans"]
    assert "FAILED (0.0% of jobs within their traced span; median ratio 2.0000)" in lines["- v2018_chains"]
    assert "not run; not run: prod is a share of the same curve" in lines["- cluster_cpu"]
