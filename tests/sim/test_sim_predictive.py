"""sigma-predictive and Level-0's thresholds in the simulator, on hand-computed scenarios.

The scenario: one machine of 10 cores; one prod service using 2 cores all day except a
daily rush from 12:00 to 14:00 at 6 cores. Level-0 (cpu threshold 0.65) gives batch
6.5 - 2 = 4.5 cores outside the rush and 0.5 during it. A batch job of 4 one-core,
one-hour instances arrives at 11:45, a quarter of an hour before the rush.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from sigma.colocation.level0 import Thresholds
from sigma.sim import options
from sigma.sim.cluster import POLICIES, Machines, build_cluster
from sigma.sim.engine import Simulation
from sigma.sim.forecast import PredictSettings, ProdForecast
from sigma.sim.prod import ProdCurves, ProdFleet
from sigma.sim.workload import MEMORY_UNITS, Workload

STEP, DAY = 300.0, 86400.0
RUSH = (12 * 3600.0, 14 * 3600.0)
ONE_MACHINE = Machines(1, 10_000, MEMORY_UNITS)


def daily_rush(days: int = 1, rush_days: tuple[int, ...] | None = None) -> ProdFleet:
    """Prod at 20% of the machine, 60% during the rush (every day, or only on `rush_days`)."""
    t = np.arange(int(days * DAY / STEP)) * STEP
    in_rush = (t % DAY >= RUSH[0]) & (t % DAY < RUSH[1])
    if rush_days is not None:
        in_rush &= np.isin(t // DAY, rush_days)
    cpu = np.where(in_rush, 0.6, 0.2)[None, :]
    curves = ProdCurves(STEP, cpu, np.zeros_like(cpu), "daily rush", loop=True)  # a true daily cycle
    return ProdFleet(curves, np.zeros(1, dtype=np.int64), np.array([10_000.0]), np.array([0.0]), 1.0)


def job_at(submit: float, instances: int = 4, cpu: int = 1000, memory: int = 1, duration: float = 3600.0) -> Workload:
    return Workload(job_names=("job",), job_submit=np.array([submit]), job=np.zeros(1, dtype=np.int64),
                    name=("t",), instances=np.array([instances]), cpu_millis=np.array([cpu]),
                    memory=np.array([memory]), duration=np.array([duration]), release=np.array([submit]),
                    depends_on=((),))


# The rush really is daily: earlier days are occurrences to learn from, not a looped sample.
DAILY = PredictSettings(history_s=3 * DAY)


def run(policy: str, workload: Workload, fleet: ProdFleet, **kw: object) -> Simulation:
    if POLICIES[policy].predictive:
        kw.setdefault("forecast", ProdForecast(fleet.curves, DAILY))
    cluster = build_cluster(ONE_MACHINE, fleet, POLICIES[policy])
    sim = Simulation(workload, fleet, cluster, POLICIES[policy], **kw)
    sim.run()
    return sim


def allocatable_at(sim: Simulation, t: float) -> float:
    series = sim.rec.series()
    return float(series["batch_allocatable_cores"][np.searchsorted(series["time_s"], t)])


def test_batch_allocatable_shrinks_before_a_predictable_rush_so_nothing_is_evicted() -> None:
    fleet, batch = daily_rush(), job_at(RUSH[0] - 900)
    sigma, predictive = run("sigma", batch, fleet), run("sigma-predictive", batch, fleet)
    # At 11:45 sigma still offers 4.5 cores; the forecast (30 min lead) already holds the rush.
    assert allocatable_at(sigma, RUSH[0] - 900) == pytest.approx(4.5)
    assert allocatable_at(predictive, RUSH[0] - 900) == pytest.approx(0.5, abs=0.1)
    # sigma places the 4 instances, then evicts all of them at 12:00; predictive waits.
    assert sigma.rec.summary()["evictions"] == 4
    assert predictive.rec.summary()["evictions"] == 0
    # Both run the job after the rush (14:05, once the 5-minute peak window has passed).
    for sim in (sigma, predictive):
        assert sim.rec.job_finish[0] == pytest.approx(RUSH[1] + 300 + 3600, abs=61)
        assert sim.rec.summary()["prod_violation"] == 0.0


def test_outside_the_lead_window_predictive_is_sigma() -> None:
    fleet, batch = daily_rush(), job_at(6 * 3600.0)  # 06:00, one hour of work, far from the rush
    sigma, predictive = run("sigma", batch, fleet), run("sigma-predictive", batch, fleet)
    assert sigma.rec.summary() == predictive.rec.summary()
    assert allocatable_at(predictive, 6 * 3600.0) == pytest.approx(4.5, abs=0.1)


def test_a_rush_never_seen_before_is_not_predicted() -> None:
    # The rush happens on day 5 only: the forecaster, fitted on days before it, cannot know.
    forecast = ProdForecast(daily_rush(days=10, rush_days=(5,)).curves)
    cpu, _ = forecast.peaks(5 * DAY + RUSH[0] - 900)
    assert cpu[0] == pytest.approx(0.2, abs=0.02)
    # After a daily rush seen on the days before, the same moment is predicted at 60%.
    cpu, _ = ProdForecast(daily_rush(days=10).curves).peaks(5 * DAY + RUSH[0] - 900)
    assert cpu[0] == pytest.approx(0.6, abs=0.03)


def test_the_same_inputs_give_the_same_run() -> None:
    fleet, batch = daily_rush(), job_at(RUSH[0] - 1800, instances=12, duration=1200.0)
    first, second = run("sigma-predictive", batch, fleet), run("sigma-predictive", batch, fleet)
    assert first.rec.summary() == second.rec.summary()
    for key, values in first.rec.series().items():
        np.testing.assert_array_equal(values, second.rec.series()[key], err_msg=key)
    # A forecaster shared between runs (as a run's search probes share one) answers the same.
    shared = ProdForecast(fleet.curves, DAILY)
    third = run("sigma-predictive", batch, fleet, forecast=shared)
    assert third.rec.summary() == first.rec.summary() and shared.fits


def test_a_higher_memory_threshold_lets_more_batch_run_beside_prod() -> None:
    # Prod holds half the machine's memory. Each batch instance needs a tenth: 0.70 leaves
    # room for 2 at a time (3 waves of 100 s for 6), 0.85 for 3 (2 waves).
    curves = ProdCurves(STEP, np.zeros((1, 4)), np.full((1, 4), 0.5), "half memory")
    fleet = ProdFleet(curves, np.zeros(1, dtype=np.int64), np.array([0.0]), np.array([float(MEMORY_UNITS)]), 1.0)
    batch = job_at(0.0, instances=6, cpu=100, memory=MEMORY_UNITS // 10, duration=100.0)
    default = run("sigma", batch, fleet)
    relaxed = run("sigma", batch, fleet, thresholds=Thresholds(0.65, 0.85))
    assert default.rec.job_finish[0] == pytest.approx(300.0, abs=1)
    assert relaxed.rec.job_finish[0] == pytest.approx(200.0, abs=1)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_command_line_reaches_level0_through_the_nodeslo_reader() -> None:
    assert options.thresholds(parse()) == Thresholds(0.65, 0.70)  # the live defaults
    assert options.thresholds(parse("--memory-threshold", "0.85")) == Thresholds(0.65, 0.85)
    assert options.predict_settings(parse("--predict-lead", "45")).lead_s == 2700.0


@pytest.mark.parametrize("argv", [("--cpu-threshold", "1.5"), ("--memory-threshold", "0")])
def test_a_threshold_outside_0_1_is_refused(argv: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match=argv[0]):
        options.thresholds(parse(*argv))


def test_a_lead_shorter_than_the_forecast_step_is_refused() -> None:
    with pytest.raises(ValueError, match="lead"):
        PredictSettings(lead_s=60.0)


@pytest.mark.parametrize(("high", "evicts"), [
    pytest.param(0.31, False, id="a 2.5% wiggle of batch allocatable is not published: nothing is evicted"),
    pytest.param(0.40, True, id="a 25% drop is published and the ladder evicts what no longer fits"),
])
def test_level0_publishes_only_moves_above_five_percent(high: float, evicts: bool) -> None:
    # Prod memory alternates 30% / `high` every 5 minutes: batch allocatable 40% / (70 - high)%.
    memory = np.array([[0.30, high] * 6])
    curves = ProdCurves(STEP, np.zeros_like(memory), memory, "wiggle")
    fleet = ProdFleet(curves, np.zeros(1, dtype=np.int64), np.array([0.0]), np.array([float(MEMORY_UNITS)]), 1.0)
    batch = job_at(0.0, instances=4, cpu=100, memory=MEMORY_UNITS // 10, duration=1800.0)
    assert (run("sigma", batch, fleet).rec.summary()["evictions"] > 0) is evicts
