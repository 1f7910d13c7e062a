"""sigma-predictive: Level-0's `predicted` prod usage, from the live forecaster, per prod service.

Why per service: a node's prod usage is the sum of its prod pods' usage, and the pods of one
service (one curve here) rise and fall together. The live system forecasts per
PredictiveScaler target (a Deployment), and Level-0 adds up what the scalers reserve on each
node. The simulator does the same: each curve is one service, forecast on its own; a node's
predicted usage is the sum over services of (its pods' share of the service) x (the
service's predicted peak). Adding each service's own peak, as the live sum of reservations
does, is conservative when services peak at different moments.

What the forecaster sees: the service's utilisation on a `step_s` grid over the history
before the fit time, never after it (nor, by default, a loop of the curve back to it).
Prod was running before the replay starts (the cluster starts with prod in place), so the
first fit already has that history; the curves repeat with their own period, as they do for
the prod load itself.

Cost: fits are refreshed every `refit_s` of virtual time, at multiples of refit_s, so every
probe of a machines-needed search asks for the same fits; they are cached on this object,
which a run shares between its simulations. Each fit predicts refit_s + lead_s ahead. Per
tick, `reservation_for` reads the peak over [now, now + lead) off that forecast; its answer
only changes when the window gains or loses a grid point, so it is memoised on that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sigma.predict import Forecast, SeasonalForecaster, reservation_for
from sigma.sim.prod import ProdCurves

F64 = npt.NDArray[np.float64]
WEEK = 7 * 86400.0


@dataclass(frozen=True)
class PredictSettings:
    lead_s: float = 1800.0  # how far ahead Level-0 reserves the predicted peak
    quantile: float = 0.95  # upper quantile of the forecast: the mean is short half the time
    refit_s: float = 6 * 3600.0
    # None: a week, or less where the curves loop sooner (see `history_for`). A week of
    # history gives each hour-of-day bucket ~84 residuals: its p95 band is then stable
    # from hour to hour; with 3 days (36 residuals) it jumps, and each upward jump of the
    # reservation evicts batch packed up to the old allocatable.
    history_s: float | None = None
    step_s: float = 300.0  # the grid the history is kept on (the curves' own resolution)

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"prediction quantile must be in (0, 1), got {self.quantile}")
        if self.step_s <= 0 or self.lead_s < self.step_s:
            # A window shorter than a step may fall between two forecast points.
            raise ValueError(f"prediction lead ({self.lead_s:g}s) must be at least one step ({self.step_s:g}s)")
        if self.refit_s < self.step_s or (self.history_s is not None and self.history_s < 2 * self.step_s):
            raise ValueError("prediction refit must be >= one step and history >= two steps")

    def history_for(self, curves: ProdCurves) -> float:
        """The history each fit sees. The trace curves are a sample looped to cover a long
        replay: a fit reaching back a whole loop would have seen the very values it is asked
        to predict. By default the history stops short of that; an explicit one is kept (a
        curve that truly repeats, like a daily rush, may be learnt from earlier loops)."""
        if self.history_s is not None:
            return self.history_s
        unseen = curves.length - self.refit_s - self.lead_s - self.step_s
        return float(max(min(WEEK, np.floor(unseen / self.step_s) * self.step_s), 2 * self.step_s))

    def describe(self, curves: ProdCurves) -> str:
        history = self.history_for(curves)
        looped = history + self.refit_s + self.lead_s + self.step_s > curves.length
        return (f"p{self.quantile * 100:g} peak over the next {self.lead_s / 60:g} min, refit every "
                f"{self.refit_s / 3600:g} h on {history / 86400:.3g} days of history"
                + (f" (longer than the {curves.length / 86400:.3g}-day prod curves' loop: the fits have seen "
                   "the values they predict)" if looped else ""))


@dataclass
class _Fit:
    """The forecasts of one refit: per service, cpu and memory utilisation."""

    start: float
    cpu: list[Forecast | None]  # None: the service never used the resource in its history
    memory: list[Forecast | None]
    peaks: dict[tuple[int, int], tuple[F64, F64]]


class ProdForecast:
    """Predicted peak utilisation per prod service over the lead window, at any virtual time."""

    def __init__(self, curves: ProdCurves, settings: PredictSettings | None = None) -> None:
        self.curves = curves
        self.settings = settings or PredictSettings()
        self.history_s = self.settings.history_for(curves)
        self.fits: dict[float, _Fit] = {}
        self.forecaster = SeasonalForecaster()

    def peaks(self, now: float) -> tuple[F64, F64]:
        """(cpu, memory) utilisation per service: the quantile peak over [now, now + lead)."""
        s = self.settings
        fit = self._fit(math.floor(now / s.refit_s) * s.refit_s)
        # The window's grid points: their indices in the forecast are all the answer depends on.
        key = (math.ceil((now - fit.start) / s.step_s - 1e-9),
               math.ceil((now + s.lead_s - fit.start) / s.step_s - 1e-9))
        found = fit.peaks.get(key)
        if found is None:
            cpu = np.array([self._peak(f, now) for f in fit.cpu])
            memory = np.array([self._peak(f, now) for f in fit.memory])
            found = fit.peaks[key] = (cpu, memory)
        return found

    def _peak(self, forecast: Forecast | None, now: float) -> float:
        if forecast is None:
            return 0.0
        # Utilisation in, utilisation out: one "replica" is the whole service at 100%.
        return reservation_for(forecast, 1.0, self.settings.lead_s, quantile=self.settings.quantile,
                               now_ts=now).cpu

    def _fit(self, start: float) -> _Fit:
        found = self.fits.get(start)
        if found is None:
            s = self.settings
            ts = start - self.history_s + s.step_s * np.arange(round(self.history_s / s.step_s))
            index = self.curves.indices(np.asarray(ts, dtype=np.float64))
            horizon = s.refit_s + s.lead_s + s.step_s
            cpu = [self._forecast(row[index], ts[0], start, horizon) for row in self.curves.cpu]
            memory = [self._forecast(row[index], ts[0], start, horizon) for row in self.curves.memory]
            found = self.fits[start] = _Fit(start, cpu, memory, {})
        return found

    def _forecast(self, history: F64, first_ts: float, start: float, horizon: float) -> Forecast | None:
        if not history.any():  # nothing to scale: a log-space model of all zeros says nothing
            return None
        model = self.forecaster.fit(history, self.settings.step_s, first_ts)
        return model.predict(start, horizon, quantiles=(self.settings.quantile,))
