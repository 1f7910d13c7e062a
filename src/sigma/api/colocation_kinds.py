"""BatchJob in the API: schema, validation (422 with field paths) and `kubectl get` columns;
NodeSLO and NodeMetric: schemas (sigma.colocation.slo) and NodeSLO validation.

Installed by sigma.api.admission.install, so every registry (the master's, the tests')
validates BatchJobs the same way. The spec rules live in sigma.colocation.jobspec (pure);
the template's pod spec is also checked by the API's own pod rules, at its path.
"""

from __future__ import annotations

from typing import Any

from sigma.api.colocation_schemas import BATCH_JOB_SCHEMA, NODE_METRIC_SCHEMA, NODE_SLO_SCHEMA
from sigma.api.errors import Cause
from sigma.api.schema import register_schema
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_validator, validate_pod_spec
from sigma.colocation.jobspec import DEFAULT_QUEUE, validate_job_spec
from sigma.colocation.slo import validate_slo_spec


def validate_batch_job(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec")
    causes = [Cause(e.path, e.message, e.reason) for e in validate_job_spec(spec)]
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 63:
        # The name is the value of the sigma.io/job label on every instance pod.
        causes.append(Cause("metadata.name", f'Invalid value: "{name}": must be no more than 63 characters'))
    seen = {(c.field, c.message) for c in causes}
    for i, task in enumerate((spec or {}).get("tasks") or [] if isinstance(spec, dict) else []):
        template = task.get("template") if isinstance(task, dict) else None
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            for cause in validate_pod_spec(template["spec"], f"spec.tasks[{i}].template.spec"):
                if (cause.field, cause.message) not in seen and not cause.field.endswith(".command"):
                    causes.append(cause)
    if old is not None and not causes and (old.get("spec") or {}).get("tasks") != (spec or {}).get("tasks"):
        # Changing the DAG under running instances would invalidate the recorded progress.
        causes.append(Cause("spec.tasks", "Forbidden: the tasks of a BatchJob are immutable once created",
                            "FieldValueForbidden"))
    return causes


def validate_node_slo(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    return [Cause(path, message, reason) for path, message, reason in validate_slo_spec(obj.get("spec"))]


def _row(job: dict[str, Any], now: float) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    tasks = spec.get("tasks") or []
    progress = status.get("tasks") or {}
    done = sum(1 for t in progress.values() if t.get("state") == "Succeeded")
    instances = sum(int(t.get("instances") or 0) for t in tasks)
    succeeded = sum(int(t.get("succeeded") or 0) for t in progress.values())
    return [job["metadata"]["name"], status.get("phase") or "Pending", f"{done}/{len(tasks)}",
            f"{succeeded}/{instances}", spec.get("queue") or DEFAULT_QUEUE, age(job, now)]


def install() -> None:
    register_schema("BatchJob", BATCH_JOB_SCHEMA)
    register_schema("NodeSLO", NODE_SLO_SCHEMA)
    register_schema("NodeMetric", NODE_METRIC_SCHEMA)
    register_validator("BatchJob", validate_batch_job)
    register_validator("NodeSLO", validate_node_slo)
    register_printer("BatchJob", [("Name", "string", 0), ("Phase", "string", 0), ("Tasks", "string", 0),
                                  ("Instances", "string", 0), ("Queue", "string", 0), ("Age", "string", 0)], _row)

