"""PredictiveScaler in the API: schema, validation (422 with field paths) and `kubectl get` columns.

Installed by sigma.api.admission.install, so every registry validates PredictiveScalers the
same way. The spec rules live in sigma.predict.scalerspec (pure).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sigma.api.errors import Cause
from sigma.api.predict_schemas import PREDICTIVE_SCALER_SCHEMA
from sigma.api.schema import register_schema
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_validator
from sigma.predict.scalerspec import parse_scaler_spec


def validate_predictive_scaler(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    _, errors = parse_scaler_spec(obj.get("spec"))
    return [Cause(e.path, e.message, e.reason) for e in errors]


def _next_peak(status: dict[str, Any]) -> str:
    peak = status.get("nextPeak")
    if not isinstance(peak, dict) or not isinstance(peak.get("value"), int | float):
        return "<none>"
    when = peak.get("time")
    stamp = ""
    if isinstance(when, int | float):
        stamp = " @ " + datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%MZ")
    return f"{peak['value']:.4g}{stamp}"


def _row(scaler: dict[str, Any], now: float) -> list[Any]:
    spec, status = scaler.get("spec") or {}, scaler.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    current, desired = status.get("currentReplicas"), status.get("desiredReplicas")
    replicas = "<none>" if desired is None else f"{current if current is not None else '?'}/{desired}"
    return [scaler["metadata"]["name"], f"Deployment/{ref.get('name', '')}", spec.get("minReplicas", 1),
            spec.get("maxReplicas", ""), replicas, _value(status.get("currentMetric")),
            _value(status.get("forecastNow")), _next_peak(status), age(scaler, now)]


def _value(value: object) -> str:
    """A metric value for a column: forecast and actual side by side, `<none>` before any."""
    return f"{value:.4g}" if isinstance(value, int | float) and not isinstance(value, bool) else "<none>"


def install() -> None:
    register_schema("PredictiveScaler", PREDICTIVE_SCALER_SCHEMA)
    register_validator("PredictiveScaler", validate_predictive_scaler)
    register_printer("PredictiveScaler", [("Name", "string", 0), ("Target", "string", 0), ("Min", "integer", 0),
                                          ("Max", "integer", 0), ("Replicas", "string", 0),
                                          ("Actual", "string", 0), ("Forecast", "string", 0),
                                          ("Next-Peak", "string", 0), ("Age", "string", 0)], _row)

