"""The PredictiveScaler's spec.behavior: the HorizontalPodAutoscaler's stabilisation windows
and rate policies, read from the spec and applied to the scaler's final decision. Pure.

    behavior:
      scaleUp:   {stabilizationWindowSeconds: 0, selectPolicy: Max,
                  policies: [{type: Percent, value: 100, periodSeconds: 15}, {type: Pods, value: 4, periodSeconds: 15}]}
      scaleDown: {stabilizationWindowSeconds: 300, selectPolicy: Max,
                  policies: [{type: Percent, value: 100, periodSeconds: 15}]}

The semantics are Kubernetes' (sigma.predict.hpa_behavior does the arithmetic): a scale-down
goes only to the highest recommendation of the scale-down window, a scale-up only to the
lowest of the scale-up window, and the rate policies bound the change per period. A
direction that is given takes Kubernetes' defaults for the fields it leaves out (the rules
above). A direction left out keeps its window (scale-up 0, scale-down
spec.reactive.scaleDownStabilizationSeconds) and has no rate policy: the forecast's job is to
jump ahead of a rush, and a default policy would hold such a jump back by a step.

Every duration is on the scaler's clock (scaled seconds under spec.timeScale), like the
rest of the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from sigma.colocation.jobspec import FieldError
from sigma.predict import hpa_behavior
from sigma.predict.hpa_types import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, History, Policy, Rules, Spec

MAX_WINDOW_S = 3600.0  # as the HorizontalPodAutoscaler's stabilizationWindowSeconds
MAX_PERIOD_S = 1800  # as its policies' periodSeconds
SELECT = ("Max", "Min", "Disabled")
_FIELDS = {"scaleUp", "scaleDown"}
_RULE_FIELDS = {"stabilizationWindowSeconds", "selectPolicy", "policies"}
_POLICY_FIELDS = {"type", "value", "periodSeconds"}


@dataclass(frozen=True)
class Behavior:
    scale_up: Rules
    scale_down: Rules


def default_behavior(scale_down_window_s: float = 300.0) -> Behavior:
    return Behavior(Rules(0.0), Rules(scale_down_window_s))


DEFAULT_BEHAVIOR = default_behavior()


def parse_behavior(value: object, scale_down_window_s: float, errors: list[FieldError]) -> Behavior:
    """spec.behavior as rules; problems are appended to errors with their field path."""
    if value is None:
        return default_behavior(scale_down_window_s)
    path = "spec.behavior"
    if not isinstance(value, Mapping):
        errors.append(FieldError(path, "Invalid value: must be an object"))
        return default_behavior(scale_down_window_s)
    errors += [FieldError(f"{path}.{key}", f'Unsupported value: unknown field "{key}"', "FieldValueNotSupported")
               for key in value if key not in _FIELDS]
    up = _rules(value.get("scaleUp"), f"{path}.scaleUp", Rules(0.0), DEFAULT_SCALE_UP, errors)
    down = _rules(value.get("scaleDown"), f"{path}.scaleDown", Rules(scale_down_window_s),
                  replace(DEFAULT_SCALE_DOWN, stabilization_s=scale_down_window_s), errors)
    return Behavior(up, down)


def _rules(value: object, path: str, absent: Rules, defaults: Rules, errors: list[FieldError]) -> Rules:
    if value is None:
        return absent
    if not isinstance(value, Mapping):
        errors.append(FieldError(path, "Invalid value: must be an object"))
        return absent
    errors += [FieldError(f"{path}.{key}", f'Unsupported value: unknown field "{key}"', "FieldValueNotSupported")
               for key in value if key not in _RULE_FIELDS]
    window = value.get("stabilizationWindowSeconds", defaults.stabilization_s)
    if isinstance(window, bool) or not isinstance(window, int | float) or not 0 <= window <= MAX_WINDOW_S:
        errors.append(FieldError(f"{path}.stabilizationWindowSeconds",
                                 f"Invalid value: {window!r}: must be a number from 0 to {MAX_WINDOW_S:.0f}"))
        window = defaults.stabilization_s
    select = value.get("selectPolicy", defaults.select)
    if select not in SELECT:
        errors.append(FieldError(f"{path}.selectPolicy", f'Unsupported value: {select!r}: supported values: '
                                 '"Max", "Min", "Disabled"', "FieldValueNotSupported"))
        select = defaults.select
    policies = value.get("policies")
    if policies is None:
        return Rules(float(window), str(select), defaults.policies)
    if not isinstance(policies, list) or not policies:
        errors.append(FieldError(f"{path}.policies", "Required value: must specify at least one policy",
                                 "FieldValueRequired"))
        return Rules(float(window), str(select), defaults.policies)
    return Rules(float(window), str(select), tuple(p for i, item in enumerate(policies)
                                                   if (p := _policy(item, f"{path}.policies[{i}]", errors))))


def _policy(value: object, path: str, errors: list[FieldError]) -> Policy | None:
    if not isinstance(value, Mapping):
        errors.append(FieldError(path, "Invalid value: a policy must be an object"))
        return None
    before = len(errors)
    errors += [FieldError(f"{path}.{key}", f'Unsupported value: unknown field "{key}"', "FieldValueNotSupported")
               for key in value if key not in _POLICY_FIELDS]
    kind, amount, period = value.get("type"), value.get("value"), value.get("periodSeconds")
    if kind not in ("Pods", "Percent"):
        errors.append(FieldError(f"{path}.type", f'Unsupported value: {kind!r}: supported values: "Pods", "Percent"',
                                 "FieldValueNotSupported"))
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        errors.append(FieldError(f"{path}.value", f"Invalid value: {amount!r}: must be an integer > 0"))
    if not isinstance(period, int) or isinstance(period, bool) or not 0 < period <= MAX_PERIOD_S:
        errors.append(FieldError(f"{path}.periodSeconds",
                                 f"Invalid value: {period!r}: must be an integer from 1 to {MAX_PERIOD_S}"))
    if len(errors) > before:
        return None
    assert isinstance(amount, int) and isinstance(period, int)
    return Policy(str(kind), amount, period)


@dataclass(frozen=True)
class Behaved:
    replicas: int
    note: str  # why the recommendation was changed; "" when it was not
    history: History


def behave(recommended: int, current: int, history: History, behavior: Behavior, min_replicas: int,
           max_replicas: int, now: float) -> Behaved:
    """Kubernetes' normalizeDesiredReplicasWithBehaviors on the scaler's recommendation:
    stabilise it over the windows, then bound the change by the rate policies, and record
    the scale event the result makes."""
    spec = Spec(min_replicas, max_replicas, (), behavior.scale_up, behavior.scale_down)
    stabilised, _, history = hpa_behavior.stabilize(recommended, current, history, spec, now)
    note = ""
    if stabilised > recommended:
        note = (f"scale-down to {recommended} held at {stabilised} (highest in the last "
                f"{behavior.scale_down.stabilization_s:.0f}s)")
    elif stabilised < recommended:
        note = (f"scale-up to {recommended} held at {stabilised} (lowest in the last "
                f"{behavior.scale_up.stabilization_s:.0f}s)")
    replicas = stabilised
    rules = behavior.scale_up if stabilised > current else behavior.scale_down
    if stabilised != current and (rules.policies or rules.select == "Disabled"):
        replicas, reason, _ = hpa_behavior.limit_rate(stabilised, current, history, spec, now)
        if replicas != stabilised:
            note = "; ".join(filter(None, (note, f"{reason}: {current} -> {replicas}, not {stabilised}, "
                                                 "within the rate policies")))
    return Behaved(replicas, note, hpa_behavior.record_scale(history, spec, current, replicas, now))
