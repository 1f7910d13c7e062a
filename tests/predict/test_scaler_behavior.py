"""The PredictiveScaler's spec.behavior: the HPA's windows and rate policies, Kubernetes'
defaults for a direction that is given, none for one left out, and bad fields by path."""

from __future__ import annotations

from typing import Any

from sigma.colocation.jobspec import FieldError
from sigma.predict.hpa_types import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, History, Policy, Rules
from sigma.predict.scaler import Observation, ScalerState, plan
from sigma.predict.scaler_behavior import Behavior, behave, parse_behavior
from sigma.predict.scalerspec import parse_scaler_spec


def parsed(value: object, window: float = 300.0) -> tuple[Behavior, list[FieldError]]:
    errors: list[FieldError] = []
    return parse_behavior(value, window, errors), errors


def test_left_out_the_windows_are_the_reactive_ones_and_there_is_no_rate_policy() -> None:
    behavior, errors = parsed(None, window=120.0)
    assert errors == []
    assert behavior == Behavior(Rules(0.0), Rules(120.0))


def test_a_direction_given_takes_kubernetes_defaults_for_what_it_leaves_out() -> None:
    behavior, errors = parsed({"scaleUp": {}, "scaleDown": {"stabilizationWindowSeconds": 600}})
    assert errors == []
    assert behavior.scale_up == Rules(0.0, "Max", DEFAULT_SCALE_UP.policies)
    assert behavior.scale_down == Rules(600.0, "Max", DEFAULT_SCALE_DOWN.policies)


def test_policies_given_replace_the_defaults() -> None:
    behavior, errors = parsed({"scaleUp": {"selectPolicy": "Min", "policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 60}]}})
    assert errors == []
    assert behavior.scale_up == Rules(0.0, "Min", (Policy("Pods", 1, 60),))


def test_bad_fields_are_named_by_path() -> None:
    _, errors = parsed({"scaleUp": {"stabilizationWindowSeconds": 4000, "selectPolicy": "Most"},
                        "scaleDown": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 1801}],
                                      "extra": 1},
                        "sideways": {}})
    fields = sorted(e.path for e in errors)
    assert fields == ["spec.behavior.scaleDown.extra", "spec.behavior.scaleDown.policies[0].periodSeconds",
                      "spec.behavior.scaleDown.policies[0].value", "spec.behavior.scaleUp.selectPolicy",
                      "spec.behavior.scaleUp.stabilizationWindowSeconds", "spec.behavior.sideways"]
    _, errors = parsed({"scaleDown": {"policies": []}})
    assert [e.path for e in errors] == ["spec.behavior.scaleDown.policies"]


def test_a_scale_down_waits_for_the_window_of_lower_recommendations() -> None:
    behavior = Behavior(Rules(0.0), Rules(600.0))
    history = History()
    first = behave(4, 4, history, behavior, 1, 10, 1000.0)
    held = behave(2, 4, first.history, behavior, 1, 10, 1300.0)
    assert held.replicas == 4 and "held at 4" in held.note
    after = behave(2, 4, held.history, behavior, 1, 10, 1601.0)
    assert after.replicas == 2 and after.note == ""


def test_a_scale_up_window_takes_the_lowest_recent_recommendation() -> None:
    behavior = Behavior(Rules(600.0), Rules(0.0))
    first = behave(2, 2, History(), behavior, 1, 10, 1000.0)
    up = behave(6, 2, first.history, behavior, 1, 10, 1300.0)
    assert up.replicas == 2 and "lowest" in up.note


def test_the_rate_policies_bound_the_change_per_period() -> None:
    behavior = Behavior(Rules(0.0, "Max", (Policy("Pods", 2, 60),)), Rules(0.0))
    first = behave(8, 2, History(), behavior, 1, 10, 1000.0)
    assert first.replicas == 4 and "ScaleUpLimit" in first.note
    again = behave(8, 4, first.history, behavior, 1, 10, 1030.0)
    assert again.replicas == 4  # two pods added within the last 60 s already
    later = behave(8, 4, again.history, behavior, 1, 10, 1061.0)
    assert later.replicas == 6


def test_a_disabled_direction_does_not_scale() -> None:
    behavior = Behavior(Rules(0.0), Rules(0.0, "Disabled"))
    assert behave(1, 5, History(), behavior, 1, 10, 1000.0).replicas == 5


def scaler(behavior: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "metric": {"type": "cpu"},
                            "targetPerReplica": 100, "maxReplicas": 10}
    return {**spec, "behavior": behavior} if behavior is not None else spec


def test_the_scaler_applies_its_behavior_to_the_final_decision() -> None:
    spec, errors = parse_scaler_spec(scaler({"scaleDown": {"stabilizationWindowSeconds": 900}}))
    assert spec is not None, errors
    state = ScalerState()
    high = plan(spec, None, Observation(1000.0, 800.0, 8, 8), state)
    assert high.decision.replicas == 8
    low = plan(spec, None, Observation(1700.0, 200.0, 8, 8), high.state)
    assert low.decision.replicas == 8 and "held at 8" in low.decision.reason
    lower = plan(spec, None, Observation(1950.0, 200.0, 8, 8), low.state)
    assert lower.decision.replicas == 2
    assert lower.state.scale_down_events == ((1950.0, 6),)  # for the default policy (100% per 15 s)


def test_the_spec_refuses_a_bad_behavior_by_path() -> None:
    spec, errors = parse_scaler_spec(scaler({"scaleUp": {"selectPolicy": "Fastest"}}))
    assert spec is None and [e.path for e in errors] == ["spec.behavior.scaleUp.selectPolicy"]
