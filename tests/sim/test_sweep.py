"""A sweep's grid, its rows and the frontier of machines against prod violation and batch slowdown."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.sim.sweep import Point, dominates, frontier, grid, pareto, parse_thresholds, run_point, with_slowdown
from sigma.sim.sweep_runner import run_serial
from tests.sim.test_run import inputs


def test_pareto_keeps_exactly_the_points_nothing_beats() -> None:
    points = [(10, 0.0, 1.5), (8, 0.0, 1.5), (8, 0.1, 1.0), (8, 0.1, 1.2), (12, 0.0, 1.0), (8, 0.0, 1.5)]
    # (10,0,1.5) loses to (8,0,1.5); (8,0.1,1.2) loses to (8,0.1,1.0); equal points are both kept.
    assert pareto(points) == [1, 2, 4, 5]
    assert dominates((1, 1), (1, 2)) and not dominates((1, 2), (2, 1)) and not dominates((1, 1), (1, 1))
    assert pareto([]) == []


def row(policy: str, cpu: float, machines: int, seed: int, violation: float, slowdown: float | None) -> dict[str, Any]:
    return {"policy": policy, "cpu_threshold": cpu, "memory_threshold": cpu, "machines": machines, "seed": seed,
            "prod_violation": violation, "batch_slowdown": slowdown}


def test_frontier_averages_seeds_and_drops_settings_whose_batch_did_not_finish() -> None:
    rows = [
        row("sigma", 0.65, 10, 0, 0.0, 1.4), row("sigma", 0.65, 10, 1, 0.0, 1.2),  # mean slowdown 1.3
        row("sigma", 0.9, 10, 0, 0.0, 1.1), row("sigma", 0.9, 10, 1, 0.02, 1.1),  # faster, some violation
        row("sigma", 0.9, 8, 0, 0.0, None), row("sigma", 0.9, 8, 1, 0.0, 1.0),  # unfinished on seed 0
        row("sigma", 0.65, 12, 0, 0.0, 1.3), row("sigma", 0.65, 12, 1, 0.0, 1.3),  # dominated by 0.65@10
        row("requests", 0.65, 20, 0, 0.0, 1.0),
    ]
    front = frontier(rows)
    assert [(f["cpu_threshold"], f["machines"]) for f in front["sigma"]] == [(0.65, 10), (0.9, 10)]
    first = front["sigma"][0]
    assert first["batch_slowdown"] == pytest.approx(1.3) and first["seeds"] == 2
    assert front["sigma"][1]["prod_violation"] == pytest.approx(0.01)
    assert [f["machines"] for f in front["requests"]] == [20]


def test_slowdown_is_against_the_seeds_own_unlimited_run() -> None:
    rows = [{"policy": "requests", "seed": 0, "machines": 0, "jct_p90_s": 100.0, "jobs": 2, "jobs_finished": 2},
            {"policy": "sigma", "seed": 0, "machines": 5, "jct_p90_s": 150.0, "jobs": 2, "jobs_finished": 2},
            {"policy": "sigma", "seed": 0, "machines": 3, "jct_p90_s": 90.0, "jobs": 2, "jobs_finished": 1}]
    out = with_slowdown(rows)
    assert [r["machines"] for r in out] == [5, 3]
    assert out[0]["batch_slowdown"] == pytest.approx(1.5)
    assert out[1]["batch_slowdown"] is None  # an unfinished run's p90 covers only the jobs that finished


def test_grid_has_every_combination_after_one_unlimited_run_per_seed() -> None:
    points = grid(["sigma", "requests"], [(0.65, 0.7), (0.9, 0.9)], [0, 1], [4, 8])
    assert points[:2] == [Point("requests", 1.0, 1.0, 0, 0), Point("requests", 1.0, 1.0, 1, 0)]
    assert len(points) == 2 + 2 * 2 * 2 * 2
    assert len(set(points)) == len(points)


@pytest.mark.parametrize(("args", "field"), [
    ((["as-traced"], [(0.65, 0.7)], [0], [4]), "--sweep-policies"),
    ((["nope"], [(0.65, 0.7)], [0], [4]), "--sweep-policies"),
    ((["sigma"], [(1.5, 0.7)], [0], [4]), "--sweep-thresholds"),
    ((["sigma"], [(0.65, 0.7)], [0], [0]), "--sweep-machines"),
])
def test_bad_grid_names_the_option(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        grid(*args)


def test_thresholds_parse_pairs_and_refuse_garbage() -> None:
    assert parse_thresholds("0.65:0.7, 0.9") == [(0.65, 0.7), (0.9, 0.9)]
    with pytest.raises(ValueError, match="CPU:MEMORY"):
        parse_thresholds("high:low")


def test_a_point_replays_exactly_and_thresholds_reach_level0() -> None:
    base = inputs()
    low, high = Point("sigma", 0.3, 0.3, 0, 4), Point("sigma", 0.95, 0.95, 0, 4)
    first = run_point(base, low)
    assert run_point(base, low) == first
    assert first["machines"] == 4 and first["cpu_threshold"] == 0.3
    # Level-0 offers batch more of each node at the higher threshold: more batch CPU in use.
    assert run_point(base, high)["cpu_util_mean"] > first["cpu_util_mean"]


def test_serial_run_reports_each_point_in_grid_order() -> None:
    points = grid(["sigma"], [(0.65, 0.7)], [0], [4, 8])
    seen: list[Point] = []
    rows = run_serial(inputs(), points, seen.append)
    assert seen == points
    assert [(r["policy"], r["machines"]) for r in rows] == [("requests", 0), ("sigma", 4), ("sigma", 8)]
