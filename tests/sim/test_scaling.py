import numpy as np

from sigma.sim.scaling import Reactive, Service, Static, outcome, simulate

SERVICE = Service(target_per_replica=100.0, startup_s=60.0, tick_s=15.0)


def step_load(before: float, after: float, at: int, n: int = 80) -> np.ndarray:
    return np.where(np.arange(n) < at, before, after).astype(np.float64)


def test_a_static_fleet_above_the_peak_never_violates_and_its_slack_is_the_idle_share():
    run = simulate(step_load(400.0, 800.0, 40), 0.0, SERVICE, Static(10))
    result = outcome(run, SERVICE)
    assert result.violation_minutes == 0
    assert result.slack == (1000 * 80 - (400 * 40 + 800 * 40)) / (400 * 40 + 800 * 40)


def test_new_pods_carry_load_only_after_their_startup():
    run = simulate(step_load(400.0, 800.0, 40), 0.0, SERVICE, Static(4))
    assert run.ready[0] == 4  # steady state at the start
    doubled = simulate(step_load(400.0, 400.0, 0), 0.0, SERVICE, Static(8))
    assert list(doubled.ready[:6]) == [4, 4, 4, 4, 8, 8]  # asked at t=0, Ready at t=60 s
    assert list(doubled.requested[:2]) == [8, 8]


def test_the_hpa_violates_while_its_new_pods_start_after_a_sudden_rise():
    run = simulate(step_load(400.0, 2000.0, 40), 0.0, SERVICE, Reactive(SERVICE))
    result = outcome(run, SERVICE)
    assert result.violation_minutes >= 1
    assert run.ready[-1] * 100.0 >= 2000.0  # caught up in the end
    assert result.batch_lost == 0.0  # no pre-reservation
