"""Benchmark of forecasting and predictive scaling: `sigma bench predict [--seed S --out DIR]`.

Scenario (a shopping festival built on real data): a prod service whose requests/s follow
the real daily shapes of the Alibaba v2018 cluster-average CPU (7 days, 300 s buckets, one
day per weekday), stretched to several weeks at 1-minute resolution with week-on-week growth,
per-day level jitter, a slow AR(1) drift and per-minute noise, all from --seed. A festival
("double-11") hits at midnight of the last-but-one day: x10, a sharp 15 minutes decaying over
the hour. Its previous occurrence is in the history at x6 (the calendar is compressed: three
weeks and a day back instead of a year, so it falls one weekday earlier, as a date does a
year before), and the calendar lists both, the coming one at x10.

Measured:
1. Forecast error, rolling origin: fit at noon on each of the last days on 28 days of
   history, forecast 24 h; MAPE and sMAPE on normal points and on the rush hour, for Sigma's
   forecaster, the naive seasonal (one week ago) and Holt-Winters (statsmodels).
2. Scaling around the rush (+-6 h), one decision a minute, pods Ready --startup seconds after
   they are asked for, forecasts refitted every --refit-min minutes: each forecaster's
   upper-quantile replicas combined with the reactive HPA rule, and the HPA alone.
   Under-provisioned share (Ready replicas x target < load), mean surplus replicas, and
   whether capacity met the load in the first rush minute.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sigma.data_paths import alibaba_dir
from sigma.predict import (
    CalendarEvent,
    Forecaster,
    HoltWinters,
    HpaState,
    NaiveSeasonal,
    SeasonalForecaster,
    combine,
    hpa_step,
    mape,
    replicas_for,
    reservation_for,
    smape,
)
from sigma.predict.errors import coverage

DAY, HOUR, STEP = 86400.0, 3600.0, 60.0
RUSH_TS = datetime(2026, 11, 11, tzinfo=UTC).timestamp()
USAGE_DIR = "v2018/derived/cluster_avg_machine_usage"
HISTORY_DAYS = 28


def load_day_shapes() -> np.ndarray:
    """(7, 288) cluster-average CPU % per 300 s bucket, one row per trace day.

    The files carry no timestamps and drop empty buckets; day 2 lost 62 of 288, so its
    buckets cannot be placed in time: it takes the median shape of the other days at its own
    (real) mean level.
    """
    days = []
    for n in range(1, 8):
        path = alibaba_dir() / USAGE_DIR / f"day_{n}" / f"machine_usage_day_{n}_grouped_300_seconds.csv"
        with path.open() as f:
            days.append(np.array([float(row["cpu_util_percent"]) for row in csv.DictReader(f)]))
    complete = np.vstack([d[:288] for d in days if d.size >= 288])
    median_shape = np.median(complete / complete.mean(axis=1, keepdims=True), axis=0)
    return np.vstack([d[:288] if d.size >= 288 else median_shape * d.mean() for d in days])


@dataclass(frozen=True)
class Scenario:
    load: np.ndarray  # requests/s per minute from start_ts
    start_ts: float
    calendar: tuple[CalendarEvent, ...]
    rush: CalendarEvent


def rush_shape(minutes: np.ndarray, peak: float) -> np.ndarray:
    """Festival multiplier over its hour: full for 15 minutes, then easing to 1.5x at the end."""
    fade = np.clip((minutes - 15.0) / 45.0, 0.0, 1.0)
    return 1.0 + (peak - 1.0) * (1.0 - fade * (1.0 - 0.5 / (peak - 1.0)))


def build_scenario(rng: np.random.Generator, args: argparse.Namespace) -> Scenario:
    shapes = load_day_shapes()
    start_ts = RUSH_TS - (args.days - 2) * DAY
    n = int(args.days * DAY / STEP)
    t = np.arange(n) * STEP
    # Trace day k plays weekday k; buckets are interpolated to minutes across day borders.
    weeks = math.ceil(args.days / 7)
    coarse = np.tile(shapes.ravel(), weeks + 1)
    base = np.interp(t / 300.0, np.arange(coarse.size), coarse)
    growth = (1.0 + args.weekly_growth) ** (t / (7 * DAY))
    day_level = np.exp(rng.normal(0.0, 0.03, args.days + 1))[(t // DAY).astype(int)]
    drift = np.zeros(n)
    shocks = rng.normal(0.0, 0.03 * math.sqrt(1 - 0.98**2), n)
    for i in range(1, n):  # AR(1) per minute, ~1 h memory: "today runs a bit hot"
        drift[i] = 0.98 * drift[i - 1] + shocks[i]
    noise = np.exp(rng.normal(0.0, args.noise, n))
    load = base * args.rps_per_cpu_percent * growth * day_level * np.exp(drift) * noise
    past = CalendarEvent(RUSH_TS - 22 * DAY, HOUR, args.past_multiplier, "double-11")
    rush = CalendarEvent(RUSH_TS, HOUR, args.rush_multiplier, "double-11")
    for event, peak in ((past, args.past_multiplier), (rush, args.rush_multiplier)):
        inside = (start_ts + t >= event.start_ts) & (start_ts + t < event.end_ts)
        load[inside] *= rush_shape((start_ts + t[inside] - event.start_ts) / 60.0, peak)
    return Scenario(load, start_ts, (past, rush), rush)


def forecasters() -> dict[str, Forecaster]:
    return {"sigma": SeasonalForecaster(), "naive": NaiveSeasonal(), "holt_winters": HoltWinters()}


def history_before(sc: Scenario, ts: float) -> tuple[np.ndarray, float]:
    end = int((ts - sc.start_ts) / STEP)
    begin = max(0, end - int(HISTORY_DAYS * DAY / STEP))
    return sc.load[begin:end], sc.start_ts + begin * STEP


def forecast_errors(sc: Scenario, origins: int) -> dict[str, Any]:
    """Rolling-origin 24 h forecasts from noon of each of the last `origins` days."""
    out: dict[str, Any] = {}
    first_origin = sc.rush.start_ts - 0.5 * DAY - (origins - 1) * DAY
    for name, forecaster in forecasters().items():
        actual, predicted, lower, upper, rush = [], [], [], [], []
        for k in range(origins):
            origin = first_origin + k * DAY
            hist, hist_start = history_before(sc, origin)
            f = forecaster.fit(hist, STEP, hist_start, sc.calendar).predict(origin, DAY)
            idx = ((f.ts - sc.start_ts) / STEP).astype(int)
            actual.append(sc.load[idx])
            predicted.append(f.mean)
            lower.append(f.at(0.1))
            upper.append(f.at(0.9))
            rush.append((f.ts >= sc.rush.start_ts) & (f.ts < sc.rush.end_ts))
        a, p, r = np.concatenate(actual), np.concatenate(predicted), np.concatenate(rush)
        out[f"mape_{name}"] = round(mape(a[~r], p[~r]), 4)
        out[f"smape_{name}"] = round(smape(a[~r], p[~r]), 4)
        out[f"rush_mape_{name}"] = round(mape(a[r], p[r]), 4)
        out[f"rush_smape_{name}"] = round(smape(a[r], p[r]), 4)
        out[f"coverage_80_{name}"] = round(coverage(a[~r], np.concatenate(lower)[~r],
                                                    np.concatenate(upper)[~r]), 3)
        print(f"  {name}: MAPE normal {out[f'mape_{name}']:.3f}, rush {out[f'rush_mape_{name}']:.3f}",
              file=sys.stderr)
    return out


@dataclass
class Run:
    spec: np.ndarray  # replicas asked for at each minute
    ready: np.ndarray  # replicas Ready at each minute
    forecast_upper: np.ndarray


def simulate(sc: Scenario, forecaster: Forecaster | None, args: argparse.Namespace,
             use_calendar: bool = True) -> Run:
    """One decision a minute over rush +- window; forecaster None is the HPA alone."""
    t0 = sc.rush.start_ts - args.window_h * HOUR
    minutes = int(2 * args.window_h * HOUR / STEP)
    i0 = int((t0 - sc.start_ts) / STEP)
    load = sc.load[i0 - 1: i0 + minutes]
    startup = max(1, round(args.startup / STEP))
    spec = np.zeros(minutes, dtype=int)
    ready = np.zeros(minutes, dtype=int)
    upper = np.full(minutes, np.nan)
    steady = math.ceil(load[0] / args.target)
    prev_ready, state, forecast = steady, HpaState(), None
    for m in range(minutes):
        now = t0 + m * STEP
        observed = load[m]  # the last complete minute is all a controller has seen
        reactive, state = hpa_step(state, now, prev_ready, observed / max(prev_ready, 1), args.target,
                                   1, args.max_replicas)
        decision = reactive
        if forecaster is not None:
            if m % args.refit_min == 0:
                hist, hist_start = history_before(sc, now)
                calendar = sc.calendar if use_calendar else ()
                forecast = forecaster.fit(hist, STEP, hist_start, calendar).predict(now, 3 * HOUR)
            assert forecast is not None
            predictive = replicas_for(forecast, args.target, 1, args.max_replicas, args.startup,
                                      args.quantile, now_ts=now, interval_s=STEP)
            decision = combine(predictive, reactive)
            upper[m] = float(forecast.window(now, now + STEP).at(args.quantile)[0])
        spec[m] = decision.replicas
        # Pods asked for less than `startup` ago are not Ready; removed pods go at once.
        earlier = spec[max(0, m - startup): m + 1] if m >= startup else np.append(spec[: m + 1], steady)
        ready[m] = int(earlier.min())
        prev_ready = ready[m]
    return Run(spec, ready, upper)


def scaling_metrics(sc: Scenario, runs: dict[str, Run], args: argparse.Namespace) -> dict[str, Any]:
    t0 = sc.rush.start_ts - args.window_h * HOUR
    i0 = int((t0 - sc.start_ts) / STEP)
    minutes = next(iter(runs.values())).ready.size
    load = sc.load[i0: i0 + minutes]
    ts = t0 + STEP * np.arange(minutes)
    rush = (ts >= sc.rush.start_ts) & (ts < sc.rush.end_ts)
    first = int(np.argmax(rush))
    needed = np.ceil(load / args.target)
    out: dict[str, Any] = {}
    for name, run in runs.items():
        short = run.ready * args.target < load
        out[f"rush_underprovisioned_share_{name}"] = round(float(short[rush].mean()), 4)
        out[f"underprovisioned_share_{name}"] = round(float(short.mean()), 4)
        out[f"overprovision_mean_replicas_{name}"] = round(float(np.maximum(run.ready - needed, 0).mean()), 2)
        out[f"replica_minutes_{name}"] = int(run.ready.sum())
        out[f"ready_before_rush_{name}"] = bool(not short[first])
    return out


def level0_reservation(sc: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    """What Level-0 would hold back for prod --drain-min minutes before the rush, in cores."""
    ahead = sc.rush.start_ts - args.drain_min * 60.0
    hist, hist_start = history_before(sc, ahead)
    forecast = SeasonalForecaster().fit(hist, STEP, hist_start, sc.calendar).predict(ahead, 2 * HOUR)
    res = reservation_for(forecast, args.cpu_per_replica, args.drain_min * 60.0 + args.startup,
                          args.target, args.quantile, now_ts=ahead)
    # The same window the reservation covers: from `ahead` until pods started then are Ready.
    i = int((ahead - sc.start_ts) / STEP)
    window = sc.load[i: i + int((args.drain_min * 60.0 + args.startup) / STEP)]
    actual = float(window.max()) / args.target * args.cpu_per_replica
    return {"level0_reserved_cores_ahead": round(res.cpu, 1), "level0_actual_peak_cores": round(actual, 1),
            "level0_reason": res.reason}


def plot(sc: Scenario, runs: dict[str, Run], args: argparse.Namespace, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = sc.rush.start_ts - args.window_h * HOUR
    i0 = int((t0 - sc.start_ts) / STEP)
    minutes = runs["sigma"].ready.size
    hours = (np.arange(minutes) * STEP + t0 - sc.rush.start_ts) / HOUR
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    top.plot(hours, sc.load[i0: i0 + minutes], color="black", lw=0.8, label="actual requests/s")
    top.plot(hours, runs["sigma"].forecast_upper, color="tab:blue", lw=1, label=f"Sigma p{args.quantile * 100:g}")
    for name, colour, label in (("holt_winters", "tab:orange", "Holt-Winters"), ("naive", "tab:green", "naive")):
        top.plot(hours, runs[name].forecast_upper, color=colour, lw=1, alpha=0.7, label=f"{label}, same quantile")
    top.set_ylabel("requests/s")
    top.legend(loc="upper left")
    bottom.plot(hours, sc.load[i0: i0 + minutes] / args.target, color="black", lw=0.8, label="replicas needed")
    for name, colour in (("sigma", "tab:blue"), ("hpa", "tab:red"), ("holt_winters", "tab:orange")):
        bottom.step(hours, runs[name].ready, where="post", color=colour, lw=1, label=f"Ready replicas: {name}")
    bottom.set_ylabel("replicas")
    bottom.set_xlabel("hours from the rush (2026-11-11T00:00Z)")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "predict_rush.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sigma bench predict", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--days", type=int, default=35, help="days of traffic; the rush is 2 days before the end")
    p.add_argument("--rush-multiplier", type=float, default=10.0)
    p.add_argument("--past-multiplier", type=float, default=6.0)
    p.add_argument("--rps-per-cpu-percent", type=float, default=100.0)
    p.add_argument("--weekly-growth", type=float, default=0.02)
    p.add_argument("--noise", type=float, default=0.05, help="per-minute log-normal noise sigma")
    p.add_argument("--target", type=float, default=100.0, help="requests/s per replica")
    p.add_argument("--max-replicas", type=int, default=2000)
    p.add_argument("--startup", type=float, default=60.0, help="seconds from asking for a pod to Ready")
    p.add_argument("--quantile", type=float, default=0.95,
                   help="forecast quantile replicas are provisioned from (a minute short is costly)")
    p.add_argument("--refit-min", type=int, default=30)
    p.add_argument("--window-h", type=float, default=6.0)
    p.add_argument("--origins", type=int, default=7, help="rolling 24 h forecast origins")
    p.add_argument("--drain-min", type=float, default=10.0, help="Level-0 lead for draining batch")
    p.add_argument("--cpu-per-replica", type=float, default=1.0, help="cores a replica uses at target")
    p.add_argument("--out", type=Path, default=None, help="directory for the PNG plot")
    return p.parse_args(argv)


def run(argv: list[str]) -> dict[str, Any]:
    args = parse(argv)
    started = time.perf_counter()
    sc = build_scenario(np.random.default_rng(args.seed), args)
    print(f"scenario: {sc.load.size} minutes, rush x{args.rush_multiplier:g} at "
          f"{datetime.fromtimestamp(sc.rush.start_ts, UTC):%Y-%m-%d %H:%M}Z", file=sys.stderr)
    result: dict[str, Any] = {"bench": "predict", "seed": args.seed}
    print("forecast error (rolling 24 h origins):", file=sys.stderr)
    result.update(forecast_errors(sc, args.origins))
    print("scaling around the rush:", file=sys.stderr)
    runs = {name: simulate(sc, f, args) for name, f in forecasters().items()}
    runs["sigma_no_calendar"] = simulate(sc, SeasonalForecaster(), args, use_calendar=False)
    runs["hpa"] = simulate(sc, None, args)
    result.update(scaling_metrics(sc, runs, args))
    result.update(level0_reservation(sc, args))
    if args.out is not None:
        result["plot"] = str(plot(sc, runs, args, args.out))
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(sys.argv[1:]), indent=1))
