"""v2017 server_event: machines joining, leaving and erroring, with their capacities.

The v2017 doc defines the events: `add` (the machine becomes available, with its capacity),
`softerror` and `harderror` (no new work should be placed on it, existing work may carry on),
and `remove`. The doc gives no recovery event, so an errored machine stays unschedulable until
it is added again; that is what `machines_at` answers. Capacities: CPU in cores (not
normalised), memory and disk normalised; error events carry zeros there, which we ignore.

Bad input, decided per case (this table is small and complete, so everything is an error):
- missing/empty/truncated file, wrong column count, unparsable number → TraceError.
- an event type outside add/remove/softerror/harderror → TraceError.
- an `add` without a positive CPU count → TraceError (the machine would have no capacity).
- a negative timestamp is kept: the v2017 doc says negative times mean "before the trace".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sigma.sim.traces.errors import FieldParser, LoadReport, TraceError, csv_rows

SERVER_EVENT_TYPES = ("add", "remove", "softerror", "harderror")
_CODE = {name: code for code, name in enumerate(SERVER_EVENT_TYPES)}
_COLUMNS = ("timestamp", "machine_id", "event_type", "event_detail", "cpus", "mem", "disk")


@dataclass(frozen=True)
class MachineCapacity:
    machine_id: int
    cpus: int
    mem: float  # normalised
    disk: float  # normalised
    schedulable: bool  # False after a softerror/harderror until the next add


@dataclass(frozen=True)
class V2017ServerEvents:
    """The event table as parallel arrays in file order (which is not time order)."""

    time: npt.NDArray[np.int64]
    machine_id: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]  # index into SERVER_EVENT_TYPES
    detail: tuple[str, ...]
    cpus: npt.NDArray[np.int64]
    mem: npt.NDArray[np.float64]
    disk: npt.NDArray[np.float64]
    report: LoadReport

    def __len__(self) -> int:
        return len(self.time)

    def count(self, kind: str) -> int:
        return int((self.kind == _CODE[kind]).sum())

    @property
    def machine_ids(self) -> npt.NDArray[np.int64]:
        return np.unique(self.machine_id)

    def machines_at(self, t: float) -> dict[int, MachineCapacity]:
        """Machines in the cluster at time t, replaying events with time <= t in time order."""
        order = np.argsort(self.time, kind="stable")
        state: dict[int, MachineCapacity] = {}
        for i in order:
            if self.time[i] > t:
                break
            m, kind = int(self.machine_id[i]), SERVER_EVENT_TYPES[self.kind[i]]
            if kind == "add":
                state[m] = MachineCapacity(m, int(self.cpus[i]), float(self.mem[i]),
                                           float(self.disk[i]), schedulable=True)
            elif kind == "remove":
                state.pop(m, None)
            elif m in state:
                old = state[m]
                state[m] = MachineCapacity(m, old.cpus, old.mem, old.disk, schedulable=False)
        return state


def load_v2017_server_events(path: Path) -> V2017ServerEvents:
    """Load server_event.csv (no header)."""
    report = LoadReport(path)
    parse = FieldParser(path, _COLUMNS)
    time: list[int] = []
    machine: list[int] = []
    kind: list[int] = []
    detail: list[str] = []
    cpus: list[int] = []
    mem: list[float] = []
    disk: list[float] = []
    for line, f in csv_rows(path, _COLUMNS, header=False):
        report.rows_read += 1
        code = _CODE.get(f[2])
        if code is None:
            raise TraceError(path, f"unknown event type {f[2]!r}; expected one of "
                             f"{', '.join(SERVER_EVENT_TYPES)}", line=line, column="3 (event_type)")
        t, m = parse.integer(f, 0, line), parse.integer(f, 1, line)
        n_cpu = parse.integer(f, 4, line) if f[4] else 0
        if code == _CODE["add"] and n_cpu <= 0:
            raise TraceError(path, "an add event needs a positive CPU count", line=line, column="5 (cpus)")
        report.flag("before_trace", t < 0)
        time.append(t)
        machine.append(m)
        kind.append(code)
        detail.append(f[3])
        cpus.append(n_cpu)
        mem.append(parse.optional(f, 5, line))
        disk.append(parse.optional(f, 6, line))
    report.rows_kept = len(time)
    return V2017ServerEvents(
        time=np.array(time, dtype=np.int64),
        machine_id=np.array(machine, dtype=np.int64),
        kind=np.array(kind, dtype=np.int8),
        detail=tuple(detail),
        cpus=np.array(cpus, dtype=np.int64),
        mem=np.array(mem, dtype=np.float64),
        disk=np.array(disk, dtype=np.float64),
        report=report,
    )
