"""The `sigma up` demo's PredictiveScaler over twelve minutes of its compressed day (three
days and the rush), replayed through the pure decision with a fake clock: steps late by up
to 60% as on a busy machine, one scrape in fifty missed, the Deployment following each decision
at once. The scaler must follow the day and lead the rush without flapping."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

import pytest

from sigma.demo.cluster import (
    DEMO_BASE_RPS,
    DEMO_SPIKE_AFTER_S,
    DEMO_SPIKE_MULTIPLIER,
    DEMO_SPIKE_S,
    DEMO_TARGET_PER_REPLICA,
    DEMO_TIME_SCALE,
    demo_scaler,
)
from sigma.demo.web import offered_load
from sigma.master.controllers.predictive import REFIT_S
from sigma.master.controllers.predictive_state import rebuild
from sigma.predict.scaler import Observation, plan
from sigma.predict.scalerspec import parse_scaler_spec

T0 = 1_800_000_000.0
REPLAY_S = 12 * 60.0
HOUR_WALL_S = 3600.0 / DEMO_TIME_SCALE
MISSED = 0.02  # the share of steps whose scrape fails (a pod being replaced, a slow answer)


@dataclass(frozen=True)
class Change:
    at: float  # wall seconds after the start
    before: int
    after: int


def replay(start: float, seed: int, behavior: dict[str, object] | None = None) -> tuple[list[Change], float]:
    """The scaling changes, as the controller would make them; and the rush's start."""
    spike = start + DEMO_SPIKE_AFTER_S / DEMO_TIME_SCALE
    scaler = demo_scaler(spike)
    if behavior is not None:
        scaler["spec"]["behavior"] = behavior
    spec, errors = parse_scaler_spec(scaler["spec"])
    assert spec is not None, errors
    memory = rebuild({"metadata": {"uid": "u"}}, spec, 0)
    rng = random.Random(seed)
    step_wall = spec.step_s / spec.time_scale
    now, replicas, changes = start, 2, []
    while now - start < REPLAY_S:
        now += step_wall * rng.uniform(1.0, 1.6)
        scaled = now * spec.time_scale
        load = offered_load(now, DEMO_TIME_SCALE, DEMO_BASE_RPS, spike, DEMO_SPIKE_S, DEMO_SPIKE_MULTIPLIER)
        metric = load if rng.random() > MISSED else None
        flushed = memory.add_sample(scaled, metric)
        if (memory.model is None and (flushed or memory.fitted_at < 0)) or scaled - memory.fitted_at >= REFIT_S:
            memory.refit(spec, scaled)
        result = plan(spec, memory.model, Observation(scaled, metric, replicas, replicas), memory.state)
        memory.state = result.state
        if result.decision.replicas != replicas:
            changes.append(Change(now - start, replicas, result.decision.replicas))
            replicas = result.decision.replicas
    return changes, spike - start


def flaps_within(changes: list[Change], seconds: float) -> list[tuple[Change, Change]]:
    """Changes undone less than `seconds` later (1 -> 2, then 2 -> 1): pods started for nothing."""
    return [(a, b) for a, b in itertools.pairwise(changes)
            if b.after == a.before and b.at - a.at < seconds]


def replicas_at(changes: list[Change], at: float) -> int:
    replicas = 2
    for change in changes:
        if change.at > at:
            break
        replicas = change.after
    return replicas


@pytest.mark.parametrize("seed", [0, 2, 4, 6])
def test_the_demo_scaler_follows_its_day_and_leads_the_rush_without_flapping(seed: int) -> None:
    offset = 41.0 * seed  # the rush lands at another hour of the compressed day
    changes, spike = replay(T0 + offset, seed)
    days = REPLAY_S / (86400.0 / DEMO_TIME_SCALE)
    # A day goes 1 -> 2 -> 3 -> 2 -> 1 at most (the load is 50-150 rps at 60 a replica), and
    # the rush adds a rise and a fall of its own.
    assert len(changes) <= 4 * math.ceil(days) + 4, changes
    assert flaps_within(changes, HOUR_WALL_S) == [], changes
    needed = math.ceil(offered_load(T0 + offset + spike, DEMO_TIME_SCALE, DEMO_BASE_RPS, T0 + offset + spike,
                                    DEMO_SPIKE_S, DEMO_SPIKE_MULTIPLIER) / DEMO_TARGET_PER_REPLICA)
    assert replicas_at(changes, spike - 1.0) >= needed, (needed, changes)


def test_without_the_demo_behavior_the_scaler_flaps() -> None:
    """What the scale-down window is for: with a window of one step (the reactive rule's 300
    compressed seconds), a p90 at a replica's boundary sheds and adds a pod in turn."""
    changes, _ = replay(T0 + 41.0 * 6, 6, behavior={})
    assert flaps_within(changes, HOUR_WALL_S), changes
