"""Defaults and validation of Job, CronJob and PodDisruptionBudget, as Kubernetes has them.
Pure functions; the bounds of single integers are the schemas' (sigma.api.batch_schemas)."""

from __future__ import annotations

import json
import re
from typing import Any

from sigma.api.batch_schemas import MAX_INDEXED
from sigma.api.cron import CronError, parse, zone_of
from sigma.api.errors import Cause
from sigma.api.selectors import match_label_selector
from sigma.api.validation import default_pod_spec, validate_labels, validate_pod_spec

COMPLETION_MODES = ("NonIndexed", "Indexed")
FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")
_PERCENT = re.compile(r"^[0-9]+%$")
# Fields of a Job's spec that never change once it exists (parallelism, backoffLimit,
# activeDeadlineSeconds, suspend and ttlSecondsAfterFinished may).
_IMMUTABLE = ("completions", "completionMode", "podFailurePolicy", "selector", "manualSelector", "template")


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))


def _not_supported(path: str, value: Any, supported: tuple[str, ...]) -> Cause:
    return Cause(path, f"Unsupported value: {_shown(value)}: supported values: "
                 + ", ".join(f'"{s}"' for s in supported), "FieldValueNotSupported")


# -- Job --------------------------------------------------------------------------------------
def default_job_spec(spec: dict[str, Any]) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(template.setdefault("spec", {}))


def default_job(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    default_job_spec(spec)


def validate_job_spec(spec: Any, path: str, generated_selector: bool) -> list[Cause]:
    if not isinstance(spec, dict):
        return [Cause(path, "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    mode = spec.get("completionMode", "NonIndexed")
    if mode not in COMPLETION_MODES:
        causes.append(_not_supported(f"{path}.completionMode", mode, COMPLETION_MODES))
    if mode == "Indexed":
        if spec.get("completions") is None:
            causes.append(Cause(f"{path}.completions", "Required value: when completion mode is Indexed",
                                "FieldValueRequired"))
        for name in ("completions", "parallelism"):
            value = spec.get(name)
            if isinstance(value, int) and value > MAX_INDEXED:
                causes.append(Cause(f"{path}.{name}", f"Invalid value: {value}: must be less than or equal to "
                                    f"{MAX_INDEXED} when completion mode is Indexed"))
    template = spec.get("template") or {}
    tspec = template.get("spec") if isinstance(template, dict) else None
    causes += validate_pod_spec(tspec, f"{path}.template.spec")
    policy = (tspec or {}).get("restartPolicy", "Always") if isinstance(tspec, dict) else "Always"
    if policy not in ("OnFailure", "Never"):
        causes.append(_not_supported(f"{path}.template.spec.restartPolicy", policy, ("OnFailure", "Never")))
    if spec.get("podFailurePolicy") is not None:
        if policy != "Never":
            causes.append(Cause(f"{path}.template.spec.restartPolicy", f"Invalid value: {_shown(policy)}: only "
                                '"Never" is supported when podFailurePolicy is specified'))
        causes += _validate_failure_policy(spec["podFailurePolicy"], f"{path}.podFailurePolicy")
    labels = (template.get("metadata") or {}).get("labels") or {} if isinstance(template, dict) else {}
    selector = spec.get("selector")
    if not generated_selector:
        if selector is None:
            causes.append(Cause(f"{path}.selector", "Required value", "FieldValueRequired"))
        elif not match_label_selector(selector, labels):
            causes.append(Cause(f"{path}.template.metadata.labels", f"Invalid value: {_shown(labels)}: `selector` "
                                "does not match template `labels`"))
    return causes


def _validate_failure_policy(policy: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate((policy or {}).get("rules") or []):
        rpath = f"{path}.rules[{i}]"
        action = rule.get("action")
        if action not in FAILURE_ACTIONS:
            causes.append(_not_supported(f"{rpath}.action", action, FAILURE_ACTIONS))
        codes, conds = rule.get("onExitCodes"), rule.get("onPodConditions")
        if (codes is None) == (not conds):
            causes.append(Cause(rpath, "Invalid value: specifying one of OnExitCodes and OnPodConditions is "
                                "required", "FieldValueInvalid"))
        if codes is not None:
            operator = codes.get("operator")
            if operator not in ("In", "NotIn"):
                causes.append(_not_supported(f"{rpath}.onExitCodes.operator", operator, ("In", "NotIn")))
            values = codes.get("values") or []
            if not values:
                causes.append(Cause(f"{rpath}.onExitCodes.values", "Invalid value: []: at least one value is "
                                    "required"))
            elif values != sorted(set(values)):
                causes.append(Cause(f"{rpath}.onExitCodes.values", f"Invalid value: {values}: must be ordered "
                                    "and unique"))
            if operator == "In" and 0 in values:
                causes.append(Cause(f"{rpath}.onExitCodes.values", "Invalid value: 0: must not be 0 for the In "
                                    "operator"))
        for j, pattern in enumerate(conds or []):
            status = pattern.get("status", "True")
            if status not in ("True", "False", "Unknown"):
                causes.append(_not_supported(f"{rpath}.onPodConditions[{j}].status", status,
                                             ("False", "True", "Unknown")))
    return causes


def validate_job(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec")
    manual = isinstance(spec, dict) and bool(spec.get("manualSelector"))
    causes: list[Cause] = []
    if old is None and isinstance(spec, dict) and not manual and spec.get("selector") is not None:
        causes.append(Cause("spec.selector", f"Invalid value: {_shown(spec['selector'])}: `selector` will be "
                            "auto-generated"))
    # On create the selector is generated after validation (it needs the uid): not checked then.
    causes += validate_job_spec(spec, "spec", generated_selector=not manual and old is None)
    if old is not None and isinstance(spec, dict):
        old_spec = old.get("spec") or {}
        for name in _IMMUTABLE:
            if spec.get(name) != old_spec.get(name):
                causes.append(Cause(f"spec.{name}", f"Invalid value: {_shown(spec.get(name))}: field is immutable"))
    return causes


# -- CronJob ------------------------------------------------------------------------------------
def default_cron_job(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    template = spec.get("jobTemplate")
    if isinstance(template, dict):
        default_job_spec(template.setdefault("spec", {}))


def validate_cron_job(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    causes: list[Cause] = []
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > 52:
        # Its Jobs are named <cronjob>-<minutes since the epoch>, within 63 characters.
        causes.append(Cause("metadata.name", f"Invalid value: {_shown(name)}: must be no more than 52 characters"))
    schedule = spec.get("schedule")
    zone = None
    try:
        zone = zone_of(spec.get("timeZone"))
    except CronError:
        causes.append(Cause("spec.timeZone", f"Invalid value: {_shown(spec.get('timeZone'))}: unknown time zone "
                            f"{spec.get('timeZone')}"))
    if not schedule:
        causes.append(Cause("spec.schedule", "Required value", "FieldValueRequired"))
    elif isinstance(schedule, str):
        try:
            parse(schedule, zone or zone_of(None))
        except CronError as err:
            causes.append(Cause("spec.schedule", f"Invalid value: {_shown(schedule)}: {err}"))
    policy = spec.get("concurrencyPolicy", "Allow")
    if policy not in CONCURRENCY_POLICIES:
        causes.append(_not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
    template = spec.get("jobTemplate")
    if not isinstance(template, dict):
        causes.append(Cause("spec.jobTemplate", "Required value", "FieldValueRequired"))
    else:
        jspec = template.get("spec")
        manual = isinstance(jspec, dict) and bool(jspec.get("manualSelector"))
        if isinstance(jspec, dict) and not manual and jspec.get("selector") is not None:
            causes.append(Cause("spec.jobTemplate.spec.selector", "Invalid value: `selector` will be "
                                "auto-generated"))
        causes += validate_job_spec(jspec, "spec.jobTemplate.spec", generated_selector=not manual)
        causes += validate_labels((template.get("metadata") or {}).get("labels"), "spec.jobTemplate.metadata.labels")
    return causes


# -- PodDisruptionBudget ------------------------------------------------------------------------
def default_pdb(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    obj.setdefault("status", {}).setdefault("disruptionsAllowed", 0)
    for name in ("currentHealthy", "desiredHealthy", "expectedPods"):
        obj["status"].setdefault(name, 0)


def _int_or_percent(value: Any, path: str) -> list[Cause]:
    """ValidateNonnegativeIntOrPercent and IsNotMoreThan100Percent."""
    if isinstance(value, str):
        if not _PERCENT.match(value):
            return [Cause(path, f"Invalid value: {_shown(value)}: must be an integer or percentage (e.g '5%')")]
        if int(value[:-1]) > 100:
            return [Cause(path, f"Invalid value: {_shown(value)}: must not be greater than 100%")]
        return []
    if isinstance(value, int) and value < 0:
        return [Cause(path, f"Invalid value: {value}: must be greater than or equal to 0")]
    return []


def validate_pdb(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes: list[Cause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(Cause("spec", f"Invalid value: {_shown(spec)}: minAvailable and maxUnavailable cannot be "
                            "both set"))
    for name in ("minAvailable", "maxUnavailable"):
        if spec.get(name) is not None:
            causes += _int_or_percent(spec[name], f"spec.{name}")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in EVICTION_POLICIES:
        causes.append(_not_supported("spec.unhealthyPodEvictionPolicy", policy, EVICTION_POLICIES))
    selector = spec.get("selector")
    if isinstance(selector, dict):
        causes += validate_labels(selector.get("matchLabels"), "spec.selector.matchLabels")
        for i, expr in enumerate(selector.get("matchExpressions") or []):
            op = expr.get("operator")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                causes.append(_not_supported(f"spec.selector.matchExpressions[{i}].operator", op,
                                             ("DoesNotExist", "Exists", "In", "NotIn")))
    return causes
