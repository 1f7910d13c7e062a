"""The PredictiveScaler's spec: checked with field paths, then read into plain values. Pure.

    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
      metric: {type: cpu}          # summed pod CPU from NodeMetric, in milli-cores
      # metric: {type: prometheus, port: 9100, path: /metrics, name: http_requests_total, rate: true}
      targetPerReplica: 500        # metric units one replica should carry
      minReplicas: 1
      maxReplicas: 50
      leadSeconds: 300             # pods must be Ready this long before the load arrives
      historySeconds: 1209600      # 14 days of history feed the forecaster
      stepSeconds: 60              # one decision per step
      quantile: 0.9                # replicas are provisioned from this forecast quantile
      calendar: [{name: double-11, start: "2026-11-11T00:00:00+08:00", durationSeconds: 7200, multiplier: 10}]
      reactive: {enabled: true, tolerance: 0.1, scaleDownStabilizationSeconds: 300}
      behavior: {scaleDown: {stabilizationWindowSeconds: 600}}  # the HPA's (sigma.predict.scaler_behavior)
      timeScale: 1                 # the load's clock runs this many times faster than the wall's

timeScale is for compressed loads (the `sigma up` demo plays a day in four minutes): the
scaler then works on a scaled clock, scaled = wall x timeScale, so days and weeks of the
forecaster are days and weeks of the load. Every duration in the spec (leadSeconds,
stepSeconds, historySeconds, durationSeconds, scaleDownStabilizationSeconds, behavior's
windows and periods) is in scaled
seconds; a calendar `start` is a wall-clock time, as people write it. The status reports
wall-clock times.

The kind's API schema (sigma.api.predict_schemas) refuses unknown fields with their path
and out-of-range integers, and publishes every field with its description (`kubectl explain
predictivescaler.spec`). The parser below refuses unknown fields as well, for a spec read
back from the store.
A prometheus metric whose name ends in `_total` is a counter: its per-second rate is used
unless `rate: false` says otherwise. The pods' readings are summed (`aggregate: sum`, each
pod reports its own share), or the largest is taken (`aggregate: max`: every pod reports
the whole service's load, as a gauge of the traffic offered to it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sigma.colocation.jobspec import FieldError, parse_deadline
from sigma.predict.scaler_behavior import DEFAULT_BEHAVIOR, Behavior, parse_behavior
from sigma.predict.types import CalendarEvent

DAY = 86400.0
MAX_HISTORY_S = 35 * DAY  # five weeks: enough for the weekly profile, bounded in storage
MAX_TIME_SCALE = 86400.0  # a day a second: beyond that a step would be shorter than a scrape
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_FIELDS = {"scaleTargetRef", "metric", "targetPerReplica", "minReplicas", "maxReplicas", "leadSeconds",
           "historySeconds", "stepSeconds", "quantile", "calendar", "reactive", "timeScale", "behavior"}
_METRIC_FIELDS = {"type", "port", "path", "name", "rate", "aggregate"}
AGGREGATES = ("sum", "max")
_EVENT_FIELDS = {"name", "start", "durationSeconds", "multiplier"}
_REACTIVE_FIELDS = {"enabled", "tolerance", "scaleDownStabilizationSeconds"}



@dataclass(frozen=True)
class MetricSpec:
    type: str  # "cpu" or "prometheus"
    port: int = 0
    path: str = "/metrics"
    name: str = ""
    rate: bool = False  # a counter: use its per-second rate between scrapes
    aggregate: str = "sum"  # how the pods' readings combine: "sum" or "max"


@dataclass(frozen=True)
class ReactiveSpec:
    enabled: bool = True
    tolerance: float = 0.1
    scale_down_stabilization_s: float = 300.0


@dataclass(frozen=True)
class ScalerSpec:
    target: str
    metric: MetricSpec
    target_per_replica: float
    min_replicas: int = 1
    max_replicas: int = 10
    lead_s: float = 300.0
    history_s: float = 14 * DAY
    step_s: float = 60.0
    quantile: float = 0.9
    calendar: tuple[CalendarEvent, ...] = ()
    reactive: ReactiveSpec = ReactiveSpec()
    time_scale: float = 1.0  # scaled seconds per wall second; calendar starts are already scaled
    behavior: Behavior = DEFAULT_BEHAVIOR  # applied to the final decision


def parse_scaler_spec(spec: object) -> tuple[ScalerSpec | None, list[FieldError]]:
    """The spec as values, or None and every problem found (each with its field path)."""
    if not isinstance(spec, Mapping):
        return None, [FieldError("spec", "Required value", "FieldValueRequired")]
    errors = _unknown(spec, _FIELDS, "spec")
    target = _target(spec.get("scaleTargetRef"), errors)
    metric = _metric(spec.get("metric"), errors)
    per_replica = _number(spec, "targetPerReplica", "spec", errors, required=True, positive=True)
    low = _count(spec, "minReplicas", 1, errors)
    high = _count(spec, "maxReplicas", None, errors)
    if low is not None and high is not None and high < low:
        errors.append(FieldError("spec.maxReplicas", f"Invalid value: {high}: must be >= minReplicas ({low})"))
    lead = _number(spec, "leadSeconds", "spec", errors, default=300.0, minimum=0.0)
    step = _number(spec, "stepSeconds", "spec", errors, default=60.0, minimum=1.0, maximum=3600.0)
    history = _number(spec, "historySeconds", "spec", errors, default=14 * DAY, minimum=3600.0,
                      maximum=MAX_HISTORY_S)
    quantile = _number(spec, "quantile", "spec", errors, default=0.9)
    if quantile is not None and not 0.5 < quantile < 1.0:
        errors.append(FieldError("spec.quantile", f"Invalid value: {quantile}: must be in (0.5, 1)"))
    calendar = _calendar(spec.get("calendar"), errors)
    reactive = _reactive(spec.get("reactive"), errors)
    scale = _number(spec, "timeScale", "spec", errors, default=1.0, minimum=1.0, maximum=MAX_TIME_SCALE)
    behavior = parse_behavior(spec.get("behavior"), reactive.scale_down_stabilization_s, errors)
    if errors:
        return None, errors
    assert target and metric and per_replica and high is not None and low is not None
    assert lead is not None and step and history and quantile and scale
    calendar = tuple(CalendarEvent(e.start_ts * scale, e.duration_s, e.multiplier, e.name) for e in calendar)
    return ScalerSpec(target, metric, per_replica, low, high, lead, history, step, quantile, calendar,
                      reactive, scale, behavior), []


def ended_events_note(spec: ScalerSpec, now: float) -> str | None:
    """A status line naming the calendar events that ended before ``now`` (scaled clock):
    an event in the past is no error (it may teach the forecaster its uplift, when the
    history holds it), but it will never raise the replicas again, which a user who typed
    the wrong year should see. None when every event is still ahead or under way."""
    ended = [e for e in spec.calendar if e.end_ts <= now]
    if not ended:
        return None
    names = ", ".join(f'"{e.name or "unnamed"}"' for e in ended)
    return f"calendar event(s) {names} ended before now: learned from when in the history, never applied ahead"


def _unknown(obj: Mapping[str, Any], known: set[str], path: str) -> list[FieldError]:
    return [FieldError(f"{path}.{key}", f'Unsupported value: unknown field "{key}"', "FieldValueNotSupported")
            for key in obj if key not in known]


def _target(ref: object, errors: list[FieldError]) -> str:
    path = "spec.scaleTargetRef"
    if not isinstance(ref, Mapping):
        errors.append(FieldError(path, "Required value", "FieldValueRequired"))
        return ""
    errors += _unknown(ref, {"apiVersion", "kind", "name"}, path)
    if ref.get("apiVersion", "apps/v1") != "apps/v1":
        errors.append(FieldError(f"{path}.apiVersion", f'Unsupported value: "{ref.get("apiVersion")}": '
                                 'supported values: "apps/v1"', "FieldValueNotSupported"))
    if ref.get("kind") != "Deployment":
        errors.append(FieldError(f"{path}.kind", f'Unsupported value: "{ref.get("kind")}": '
                                 'supported values: "Deployment"', "FieldValueNotSupported"))
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        errors.append(FieldError(f"{path}.name", "Required value", "FieldValueRequired"))
        return ""
    return name


def _metric(metric: object, errors: list[FieldError]) -> MetricSpec | None:
    path = "spec.metric"
    if not isinstance(metric, Mapping):
        errors.append(FieldError(path, "Required value", "FieldValueRequired"))
        return None
    errors += _unknown(metric, _METRIC_FIELDS, path)
    kind = metric.get("type")
    if kind == "cpu":
        return MetricSpec("cpu")
    if kind != "prometheus":
        errors.append(FieldError(f"{path}.type", f'Unsupported value: "{kind}": supported values: "cpu", '
                                 '"prometheus"', "FieldValueNotSupported"))
        return None
    port, route, name = metric.get("port"), metric.get("path", "/metrics"), metric.get("name")
    before = len(errors)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        errors.append(FieldError(f"{path}.port", f"Invalid value: {port!r}: must be a port number (1-65535)"))
    if not isinstance(route, str) or not route.startswith("/"):
        errors.append(FieldError(f"{path}.path", f'Invalid value: {route!r}: must start with "/"'))
    if not isinstance(name, str) or not _METRIC_NAME.match(name):
        errors.append(FieldError(f"{path}.name", f"Invalid value: {name!r}: must be a Prometheus metric name"
                                 if name is not None else "Required value",
                                 "FieldValueInvalid" if name is not None else "FieldValueRequired"))
    rate = metric.get("rate", isinstance(name, str) and name.endswith("_total"))
    if not isinstance(rate, bool):
        errors.append(FieldError(f"{path}.rate", f"Invalid value: {rate!r}: must be a boolean"))
    aggregate = metric.get("aggregate", "sum")
    if aggregate not in AGGREGATES:
        errors.append(FieldError(f"{path}.aggregate", f'Unsupported value: {aggregate!r}: supported values: '
                                 '"sum", "max"', "FieldValueNotSupported"))
    if len(errors) > before:
        return None
    assert isinstance(port, int)
    return MetricSpec("prometheus", port, str(route), str(name), bool(rate), str(aggregate))


def _calendar(events: object, errors: list[FieldError]) -> tuple[CalendarEvent, ...]:
    if events is None:
        return ()
    if not isinstance(events, list):
        errors.append(FieldError("spec.calendar", "Invalid value: must be a list of events"))
        return ()
    out: list[CalendarEvent] = []
    for i, event in enumerate(events):
        path = f"spec.calendar[{i}]"
        if not isinstance(event, Mapping):
            errors.append(FieldError(path, "Invalid value: an event must be an object"))
            continue
        before = len(errors)
        errors += _unknown(event, _EVENT_FIELDS, path)
        name = event.get("name", "")
        if not isinstance(name, str):
            errors.append(FieldError(f"{path}.name", f"Invalid value: {name!r}: must be a string"))
        start = _start(event.get("start"), f"{path}.start", errors)
        duration = _number(event, "durationSeconds", path, errors, required=True, positive=True)
        multiplier = _number(event, "multiplier", path, errors, required=True, positive=True)
        if len(errors) == before and start is not None and duration and multiplier:
            out.append(CalendarEvent(start, duration, multiplier, str(name)))
    return tuple(out)


def _start(value: object, path: str, errors: list[FieldError]) -> float | None:
    if not isinstance(value, str):
        errors.append(FieldError(path, "Required value: an RFC 3339 time", "FieldValueRequired"))
        return None
    try:
        return parse_deadline(value)
    except ValueError:
        errors.append(FieldError(path, f'Invalid value: "{value}": must be an RFC 3339 time '
                                 '(e.g. 2026-11-11T00:00:00+08:00)'))
        return None


def _reactive(reactive: object, errors: list[FieldError]) -> ReactiveSpec:
    if reactive is None:
        return ReactiveSpec()
    path = "spec.reactive"
    if not isinstance(reactive, Mapping):
        errors.append(FieldError(path, "Invalid value: must be an object"))
        return ReactiveSpec()
    errors += _unknown(reactive, _REACTIVE_FIELDS, path)
    enabled = reactive.get("enabled", True)
    if not isinstance(enabled, bool):
        errors.append(FieldError(f"{path}.enabled", f"Invalid value: {enabled!r}: must be a boolean"))
    tolerance = _number(reactive, "tolerance", path, errors, default=0.1, minimum=0.0)
    if tolerance is not None and tolerance >= 1.0:
        errors.append(FieldError(f"{path}.tolerance", f"Invalid value: {tolerance}: must be in [0, 1)"))
    window = _number(reactive, "scaleDownStabilizationSeconds", path, errors, default=300.0, minimum=0.0,
                     maximum=3600.0)
    return ReactiveSpec(bool(enabled), tolerance or 0.0, window if window is not None else 300.0)


def _count(spec: Mapping[str, Any], key: str, default: int | None, errors: list[FieldError]) -> int | None:
    value = spec.get(key, default)
    if value is None:
        errors.append(FieldError(f"spec.{key}", "Required value", "FieldValueRequired"))
        return None
    if not _is_int(value) or value < 0:
        errors.append(FieldError(f"spec.{key}", f"Invalid value: {value!r}: must be an integer >= 0"))
        return None
    return int(value)


def _number(obj: Mapping[str, Any], key: str, path: str, errors: list[FieldError], *, default: float | None = None,
            required: bool = False, positive: bool = False, minimum: float | None = None,
            maximum: float | None = None) -> float | None:
    value = obj.get(key)
    where = f"{path}.{key}"
    if value is None:
        if required:
            errors.append(FieldError(where, "Required value", "FieldValueRequired"))
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(FieldError(where, f"Invalid value: {value!r}: must be a number"))
        return None
    if positive and value <= 0:
        errors.append(FieldError(where, f"Invalid value: {value}: must be greater than 0"))
        return None
    if minimum is not None and value < minimum:
        errors.append(FieldError(where, f"Invalid value: {value}: must be >= {minimum:g}"))
        return None
    if maximum is not None and value > maximum:
        errors.append(FieldError(where, f"Invalid value: {value}: must be <= {maximum:g}"))
        return None
    return float(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
