"""The PredictiveScaler's pure parts: its history ring and one decision."""

from __future__ import annotations

import math

import numpy as np

from sigma.predict.ring import Ring
from sigma.predict.scaler import Observation, ScalerState, fit_model, plan
from sigma.predict.scalerspec import ScalerSpec, parse_scaler_spec

STEP = 300.0
T0 = 1_764_000_000.0 - 1_764_000_000.0 % 86400


def test_the_ring_is_bounded_keeps_gaps_and_survives_encoding():
    ring = Ring.empty(STEP, capacity=4)
    for i in (0, 1, 3):
        ring = ring.record(T0 + i * STEP + 10, float(i))
    assert ring.start_ts == T0 and np.isnan(ring.values[2]) and ring.values.size == 4
    ring = ring.record(T0 + 5 * STEP, 5.0)  # two more slots: the two oldest go
    assert ring.start_ts == T0 + 2 * STEP and ring.values.size == 4
    assert ring.record(T0, 99.0) is ring  # older than the ring: ignored
    back = Ring.decode(ring.encode(), STEP, 4)
    assert back.start_ts == ring.start_ts
    np.testing.assert_array_equal(np.isnan(back.values), np.isnan(ring.values))
    assert Ring.decode(ring.encode(), 60.0, 4).values.size == 0  # another grain: a new history
    assert Ring.decode({"stepSeconds": STEP, "start": 1, "values": "!!"}, STEP, 4).values.size == 0
    assert Ring.decode(ring.encode(), STEP, 2).values.size == 2  # a shorter window keeps the newest


def spec(**over: object) -> ScalerSpec:
    raw = {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "metric": {"type": "cpu"},
           "targetPerReplica": 100, "minReplicas": 1, "maxReplicas": 20, "leadSeconds": 600, "stepSeconds": 60,
           **over}
    parsed, errors = parse_scaler_spec(raw)
    assert parsed is not None, errors
    return parsed


def test_without_history_it_reacts_like_the_hpa():
    result = plan(spec(), None, Observation(T0, metric=800.0, replicas=4, ready=4), ScalerState())
    assert result.decision.replicas == 8 and "no forecast yet" in result.decision.reason
    assert result.reservation is None


def test_a_scale_down_waits_for_the_stabilisation_window():
    s = spec(reactive={"scaleDownStabilizationSeconds": 300})
    state = ScalerState()
    first = plan(s, None, Observation(T0, 1000.0, 10, 10), state)
    low = plan(s, None, Observation(T0 + 60, 200.0, 10, 10), first.state)
    assert low.decision.replicas == 10 and "held at 10" in low.decision.reason
    later = plan(s, None, Observation(T0 + 400, 200.0, 10, 10), low.state)
    assert later.decision.replicas == 2


def test_the_forecast_leads_and_reserves_the_predicted_peak():
    ts = T0 + STEP * np.arange(int(2 * 86400 / STEP))
    history = 500 + 300 * np.sin(2 * math.pi * (ts % 86400) / 86400)
    s = spec(calendar=[{"name": "rush", "start": "2025-11-26T12:00:00Z", "durationSeconds": 3600,
                        "multiplier": 3}])
    model = fit_model(s, history, T0)
    assert model is not None
    rush = T0 + 2 * 86400 + 12 * 3600
    before = plan(s, model, Observation(rush - 660, 500.0, 5, 5), ScalerState())
    assert before.decision.replicas >= 15
    assert before.reservation is not None and before.reservation.cpu >= 1500  # milli-cores, cpu metric
    assert fit_model(s, history[:6], T0) is None  # half an hour is not a history

