"""A bounded series at a fixed step, stored compactly in an object's status. Pure.

The PredictiveScaler keeps its metric history in its own status, so a restarted master
refits from the store alone (no side database, nothing that outlives the scaler). Storage
choice, and why:

- One value per slot of `step_s` (the scaler uses max(stepSeconds, 300 s): the forecaster's
  grain; a daily profile needs no finer one), float32 (7 significant digits, far below the
  noise of any traffic metric), NaN for a slot with no sample.
- Encoded as one base64 string of little-endian float32: 14 days at 5 minutes are 4,032
  values, 21.5 KB, one line in `kubectl get -o yaml` instead of thousands.
- Bounded: at most `capacity` slots; recording past the end drops the oldest.
- Written only when a slot closes, so the store (which keeps old revisions until it compacts)
  receives ~22 KB every 5 minutes per scaler, not on every decision.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sigma.predict.types import FloatArray


@dataclass(frozen=True)
class Ring:
    start_ts: float  # the slot of values[0]
    step_s: float
    capacity: int
    values: FloatArray

    @staticmethod
    def empty(step_s: float, capacity: int) -> Ring:
        return Ring(0.0, step_s, capacity, np.zeros(0, dtype=np.float64))

    @property
    def end_ts(self) -> float:
        """The end of the last slot held."""
        return self.start_ts + self.step_s * self.values.size

    def slot(self, ts: float) -> float:
        return math.floor(ts / self.step_s) * self.step_s

    def timestamps(self) -> FloatArray:
        return self.start_ts + self.step_s * np.arange(self.values.size, dtype=np.float64)

    def record(self, ts: float, value: float) -> Ring:
        """The ring with `value` in the slot holding ts: gaps before it become NaN, a slot
        older than the ring's start is ignored, and the oldest slots go beyond capacity."""
        slot = self.slot(ts)
        if self.values.size == 0:
            return Ring(slot, self.step_s, self.capacity, np.array([value], dtype=np.float64))
        index = round((slot - self.start_ts) / self.step_s)
        if index < 0:
            return self
        values = self.values
        if index >= values.size:
            values = np.concatenate([values, np.full(index + 1 - values.size, np.nan)])
        else:
            values = values.copy()
        values[index] = value
        start = self.start_ts
        if values.size > self.capacity:
            drop = values.size - self.capacity
            values, start = values[drop:], start + drop * self.step_s
        return Ring(start, self.step_s, self.capacity, values)

    def between(self, from_ts: float, to_ts: float) -> tuple[FloatArray, FloatArray]:
        """(timestamps, values) of the slots starting in [from_ts, to_ts)."""
        ts = self.timestamps()
        keep = (ts >= from_ts) & (ts < to_ts)
        return ts[keep], self.values[keep]

    def encode(self) -> dict[str, Any]:
        raw = self.values.astype("<f4").tobytes()
        return {"start": self.start_ts, "stepSeconds": self.step_s, "values": base64.b64encode(raw).decode()}

    @staticmethod
    def decode(stored: object, step_s: float, capacity: int) -> Ring:
        """A stored ring; empty when absent, garbled, or kept at another step (a changed
        spec starts a new history rather than mixing two grains)."""
        if not isinstance(stored, Mapping) or stored.get("stepSeconds") != step_s:
            return Ring.empty(step_s, capacity)
        start = stored.get("start")
        try:
            raw = base64.b64decode(str(stored.get("values", "")), validate=True)
            values = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        except ValueError:
            return Ring.empty(step_s, capacity)
        if not isinstance(start, int | float) or isinstance(start, bool) or values.size == 0:
            return Ring.empty(step_s, capacity)
        ring = Ring(float(start), step_s, capacity, values)
        if values.size > capacity:  # the spec's window shrank
            ring = Ring(ring.start_ts + (values.size - capacity) * step_s, step_s, capacity, values[-capacity:])
        return ring
