"""batch/v1 Job and CronJob, policy/v1 PodDisruptionBudget in the API: schemas, defaults,
validation, `kubectl get` columns, a Job's generated selector, and the disruption budgets
the eviction subresource honours (sigma.api.pdb_eviction).

Installed by sigma.api.admission.install.
"""

from __future__ import annotations

from typing import Any

from sigma.api import pdb_eviction
from sigma.api.batch_schemas import CRON_JOB_SCHEMA, JOB_SCHEMA, PDB_SCHEMA
from sigma.api.batch_validation import (
    default_cron_job,
    default_job,
    default_pdb,
    validate_cron_job,
    validate_job,
    validate_pdb,
)
from sigma.api.objects import condition, parse_rfc3339
from sigma.api.registry_core import RegistryCore
from sigma.api.schema import register_schema
from sigma.api.selectors import selector_to_string
from sigma.api.tables import age, human_duration, register_printer
from sigma.api.validation import register_defaults, register_validator

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_LABELS = ("job-name", "controller-uid")


def install(registry: RegistryCore) -> None:
    register_kinds()
    registry.add_on_create("Job", generate_selector)
    pdb_eviction.install(registry)


def register_kinds() -> None:
    for kind, schema, defaults, validator in (("Job", JOB_SCHEMA, default_job, validate_job),
                                              ("CronJob", CRON_JOB_SCHEMA, default_cron_job, validate_cron_job),
                                              ("PodDisruptionBudget", PDB_SCHEMA, default_pdb, validate_pdb)):
        register_schema(kind, schema)
        register_defaults(kind, defaults)
        register_validator(kind, validator)
    register_printer("Job", [("Name", "string", 0), ("Status", "string", 0), ("Completions", "string", 0),
                             ("Duration", "string", 0), ("Age", "string", 0), ("Containers", "string", 1),
                             ("Images", "string", 1), ("Selector", "string", 1)], job_row)
    register_printer("CronJob", [("Name", "string", 0), ("Schedule", "string", 0), ("Timezone", "string", 0),
                                 ("Suspend", "boolean", 0), ("Active", "integer", 0), ("Last Schedule", "string", 0),
                                 ("Age", "string", 0), ("Containers", "string", 1), ("Images", "string", 1),
                                 ("Selector", "string", 1)], cron_job_row)
    register_printer("PodDisruptionBudget", [("Name", "string", 0), ("Min Available", "string", 0),
                                             ("Max Unavailable", "string", 0), ("Allowed Disruptions", "integer", 0),
                                             ("Age", "string", 0)], pdb_row)


def generate_selector(job: dict[str, Any]) -> None:
    """Without manualSelector, the selector is the job's uid, and the template carries it
    (with the job's name) as labels, as Kubernetes generates them."""
    spec, m = job["spec"], job["metadata"]
    template = spec.setdefault("template", {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    if not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {CONTROLLER_UID_LABEL: m["uid"]}}
        labels.update({CONTROLLER_UID_LABEL: m["uid"], "controller-uid": m["uid"]})
    labels.update({JOB_NAME_LABEL: m["name"], "job-name": m["name"]})


# -- kubectl get columns ----------------------------------------------------------------------
def _containers(template_spec: dict[str, Any]) -> tuple[str, str]:
    containers = template_spec.get("containers") or []
    return (",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers))


def job_status_word(job: dict[str, Any]) -> str:
    for ctype, word in (("Failed", "Failed"), ("Complete", "Complete"), ("Suspended", "Suspended"),
                        ("FailureTarget", "FailureTarget"), ("SuccessCriteriaMet", "SuccessCriteriaMet")):
        if (condition(job, ctype) or {}).get("status") == "True":
            return word
    return "Terminating" if job["metadata"].get("deletionTimestamp") else "Running"


def job_row(job: dict[str, Any], now: float) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    else:
        completions = f"{succeeded}/1 of {spec.get('parallelism', 1)}"
    duration = ""
    if status.get("startTime"):
        end = parse_rfc3339(status["completionTime"]) if status.get("completionTime") else now
        duration = human_duration(end - parse_rfc3339(status["startTime"]))
    names, images = _containers((spec.get("template") or {}).get("spec") or {})
    return [job["metadata"]["name"], job_status_word(job), completions, duration, age(job, now), names, images,
            selector_to_string(spec.get("selector") or {})]


def cron_job_row(cj: dict[str, Any], now: float) -> list[Any]:
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    last = status.get("lastScheduleTime")
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = _containers((job_spec.get("template") or {}).get("spec") or {})
    return [cj["metadata"]["name"], spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            bool(spec.get("suspend")), len(status.get("active") or []),
            human_duration(now - parse_rfc3339(last)) if last else "<none>", age(cj, now), names, images,
            selector_to_string(job_spec.get("selector") or {}) or "<none>"]


def pdb_row(pdb: dict[str, Any], now: float) -> list[Any]:
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}

    def shown(name: str) -> str:
        return "N/A" if spec.get(name) is None else str(spec[name])

    return [pdb["metadata"]["name"], shown("minAvailable"), shown("maxUnavailable"),
            int(status.get("disruptionsAllowed") or 0), age(pdb, now)]
