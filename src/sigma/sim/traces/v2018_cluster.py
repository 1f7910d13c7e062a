"""v2018 cluster-average machine usage, one file per trace day and bucket width.

Layout (as shared): <root>/day_N/machine_usage_day_N_grouped_<B>_seconds.csv, B in 10/30/300,
a header line and one row per time bucket holding the mean over all reporting machines of
cpu_util_percent, mem_util_percent, net_in, net_out, disk_io_percent.

The files have no timestamp column and empty buckets are simply absent (day 2 has 226 of
288 five-minute buckets), so a row index is NOT a time: only the day is known. That is why
the data is kept per day and nothing here pretends to a time axis.

Bad input, decided per case:
- a missing day directory or file, an empty or truncated file, a header that is not the five
  columns above, a wrong column count, an unparsable number → TraceError(file, line, column).
- a mean outside [-1, 101] (the per-machine values live in [0, 100] plus the -1/101 invalid
  markers, so their mean cannot leave that range) → TraceError.
- more rows than buckets in a day (86400 / B, plus one for the bucket on the boundary) →
  TraceError: the file is not a single day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sigma.data_paths import fetch_hint
from sigma.sim.traces.errors import FieldParser, TraceError, check_file, csv_rows

_COLUMNS = ("cpu_util_percent", "mem_util_percent", "net_in", "net_out", "disk_io_percent")
_DAY_DIR = re.compile(r"^day_(\d+)$")
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DayUsage:
    day: int  # 1-based trace day
    cpu_percent: F64  # one entry per non-empty bucket, in file order
    mem_percent: F64
    net_in: F64
    net_out: F64
    disk_io_percent: F64


@dataclass(frozen=True)
class V2018ClusterUsage:
    bucket_seconds: int
    days: tuple[DayUsage, ...]

    def all_buckets(self, column: str = "cpu_percent") -> F64:
        return np.concatenate([getattr(d, column) for d in self.days])


def cluster_usage_file(root: Path, day: int, bucket_seconds: int) -> Path:
    return root / f"day_{day}" / f"machine_usage_day_{day}_grouped_{bucket_seconds}_seconds.csv"


def load_v2018_cluster_usage(root: Path, bucket_seconds: int = 300,
                             days: tuple[int, ...] | None = None) -> V2018ClusterUsage:
    """Load the given days (default: every day_N directory under root, in day order)."""
    if not root.is_dir():
        raise TraceError(root, "cluster usage directory not found" + fetch_hint(root / "cluster_avg_machine_usage"))
    if days is None:
        found = [int(m.group(1)) for p in root.iterdir() if (m := _DAY_DIR.match(p.name))]
        days = tuple(sorted(found))
        if not days:
            raise TraceError(root, "no day_N directories")
    return V2018ClusterUsage(bucket_seconds, tuple(
        _load_day(cluster_usage_file(root, d, bucket_seconds), d, bucket_seconds) for d in days))


def _load_day(path: Path, day: int, bucket_seconds: int) -> DayUsage:
    check_file(path)
    with path.open() as f:
        header = f.readline().strip().split(",")
    if tuple(header) != _COLUMNS:
        raise TraceError(path, f"header is {header}, expected {list(_COLUMNS)}", line=1)
    parse = FieldParser(path, _COLUMNS)
    rows: list[list[float]] = []
    for line, fields in csv_rows(path, _COLUMNS, header=True):
        row = [parse.number(fields, i, line) for i in range(len(_COLUMNS))]
        for i, value in enumerate(row):
            if not -1.0 <= value <= 101.0:
                raise TraceError(path, f"a mean percent cannot be {value}", line=line,
                                 column=f"{i + 1} ({_COLUMNS[i]})")
        rows.append(row)
    most = 86400 // bucket_seconds + 1
    if len(rows) > most:
        raise TraceError(path, f"{len(rows)} buckets is more than one day holds ({most})")
    if not rows:
        raise TraceError(path, "no usage rows")
    a = np.array(rows, dtype=np.float64)
    return DayUsage(day, a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy(), a[:, 4].copy())
