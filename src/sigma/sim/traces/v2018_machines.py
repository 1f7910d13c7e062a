"""v2018 machine_meta and machine_usage (the shared 16-machine sample, or any file that size).

Machine names (`m_1932`) are kept once in `names`; rows carry an int32 index into it.
Times are seconds from the trace start; the v2018 doc says 0 means "before or after the
8-day window", so no valid time is negative. Utilisations are percent; the doc says invalid
samples are written as -1 or 101.

Bad input, decided per case:
- missing/empty/truncated file, wrong column count, unparsable number → TraceError.
- a negative timestamp → TraceError (the v2018 doc allows none).
- machine_meta: a status other than USING / IMPORT_INSTALLING (the only two in the complete
  table) → TraceError; cpu_num or mem_size not positive → TraceError.
- machine_usage: cpu or mem of -1/101 (the trace's own invalid marker) → NaN, counted as a
  flag; any other value outside [0, 100] → TraceError. Time 0 (outside the window, cannot be
  placed on the time axis) → row skipped, counted. Empty mem_gps/mkpi (78% of rows) and
  other non-mandatory columns → NaN.
For the full 1.7 GB-gz machine_usage use stream_v2018_table (v2018_full.py) instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sigma.sim.traces.errors import FieldParser, LoadReport, TraceError, csv_rows

V2018_MACHINE_STATUSES = ("USING", "IMPORT_INSTALLING")
_META_COLUMNS = ("machine_id", "time_stamp", "failure_domain_1", "failure_domain_2", "cpu_num",
                 "mem_size", "status")
_USAGE_COLUMNS = ("machine_id", "time_stamp", "cpu_util_percent", "mem_util_percent", "mem_gps",
                  "mkpi", "net_in", "net_out", "disk_io_percent")
INVALID_PERCENT = (-1.0, 101.0)

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class V2018MachineMeta:
    names: tuple[str, ...]  # distinct machine names, in order of first appearance
    machine: I32  # per row: index into names
    time: I64
    failure_domain_1: I64
    failure_domain_2: tuple[str, ...]
    cpus: I64
    mem: I64  # normalised to the largest machine, [0, 100]
    status: npt.NDArray[np.int8]  # index into V2018_MACHINE_STATUSES
    report: LoadReport

    def __len__(self) -> int:
        return len(self.time)


@dataclass(frozen=True)
class V2018MachineUsage:
    names: tuple[str, ...]
    machine: I32
    time: F64
    cpu_percent: F64  # NaN where the trace marks the sample invalid
    mem_percent: F64
    mem_gps: F64
    mkpi: F64
    net_in: F64
    net_out: F64
    disk_io_percent: F64
    report: LoadReport

    def __len__(self) -> int:
        return len(self.time)


class _Names:
    """Interns machine names to small ints, keeping first-seen order."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        return self.index.setdefault(name, len(self.index))

    def names(self) -> tuple[str, ...]:
        return tuple(self.index)


def load_v2018_machine_meta(path: Path) -> V2018MachineMeta:
    report = LoadReport(path)
    parse = FieldParser(path, _META_COLUMNS)
    intern = _Names()
    rows: list[tuple[int, int, int, str, int, int, int]] = []
    for line, f in csv_rows(path, _META_COLUMNS, header=False):
        report.rows_read += 1
        t = parse.integer(f, 1, line)
        if t < 0:
            raise TraceError(path, f"negative timestamp {t}", line=line, column="2 (time_stamp)")
        if f[6] not in V2018_MACHINE_STATUSES:
            raise TraceError(path, f"unknown machine status {f[6]!r}; expected one of "
                             f"{', '.join(V2018_MACHINE_STATUSES)}", line=line, column="7 (status)")
        cpus, mem = parse.integer(f, 4, line), parse.integer(f, 5, line)
        if cpus <= 0 or mem <= 0:
            raise TraceError(path, "machine capacity must be positive", line=line,
                             column="5-6 (cpu_num, mem_size)")
        rows.append((intern(f[0]), t, parse.integer(f, 2, line), f[3], cpus, mem,
                     V2018_MACHINE_STATUSES.index(f[6])))
    report.rows_kept = len(rows)
    c = list(zip(*rows, strict=True))
    return V2018MachineMeta(
        names=intern.names(), machine=np.array(c[0], dtype=np.int32),
        time=np.array(c[1], dtype=np.int64), failure_domain_1=np.array(c[2], dtype=np.int64),
        failure_domain_2=tuple(c[3]), cpus=np.array(c[4], dtype=np.int64),
        mem=np.array(c[5], dtype=np.int64), status=np.array(c[6], dtype=np.int8), report=report)


def load_v2018_machine_usage(path: Path) -> V2018MachineUsage:
    report = LoadReport(path)
    parse = FieldParser(path, _USAGE_COLUMNS)
    intern = _Names()
    machine: list[int] = []
    values: list[list[float]] = [[] for _ in range(8)]  # time and the seven measurements
    for line, f in csv_rows(path, _USAGE_COLUMNS, header=False):
        report.rows_read += 1
        t = parse.number(f, 1, line)
        if t < 0:
            raise TraceError(path, f"negative timestamp {t}", line=line, column="2 (time_stamp)")
        if t == 0:
            report.skip("time_outside_window", line)
            continue
        row = [t, parse.number(f, 2, line), parse.number(f, 3, line)]
        row += [parse.optional(f, i, line) for i in range(4, 9)]
        for i in (1, 2, 7):  # the percent columns: cpu, mem, disk_io
            row[i] = _percent(path, row[i], line, _USAGE_COLUMNS[i + 1], i + 2, report)
        machine.append(intern(f[0]))
        for column, value in zip(values, row, strict=True):
            column.append(value)
    report.rows_kept = len(machine)
    a = [np.array(v, dtype=np.float64) for v in values]
    return V2018MachineUsage(names=intern.names(), machine=np.array(machine, dtype=np.int32),
                             time=a[0], cpu_percent=a[1], mem_percent=a[2], mem_gps=a[3], mkpi=a[4],
                             net_in=a[5], net_out=a[6], disk_io_percent=a[7], report=report)


def _percent(path: Path, value: float, line: int, name: str, column: int, report: LoadReport) -> float:
    if value in INVALID_PERCENT:
        report.flag(f"invalid_{name}")
        return float("nan")
    if not 0 <= value <= 100 and value == value:
        raise TraceError(path, f"percent out of range: {value}", line=line, column=f"{column} ({name})")
    return value
