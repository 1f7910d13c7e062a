"""The full-size v2018 tables (280 GB unpacked), streamed in chunks with pyarrow.

Each table is read by its official schema (schema.txt, column order as in the released
files, no header) as pyarrow RecordBatches of about `block_size` bytes, so memory stays
bounded whatever the file size: container_usage and batch_instance are far too large to
hold. `V2018Table(path, "batch_task")` iterates validated batches and fills `.report`;
`read_v2018_table` collects a table that fits in memory (batch_task, container_meta,
machine_meta). Plain `.csv` or gzip-compressed `.csv.gz` (a tar.gz must be unpacked first).

Bad input, decided per case:
- missing/empty/truncated file, wrong column count (including a blank line), unparsable
  number → TraceError with file, line and column. These mean the file is not this table or
  is corrupt; nothing after them can be trusted. Line numbers are exact because parsing is
  single-threaded and one row is one line (no quoted newlines in the trace).
- a row-level quirk → the row is skipped and counted in the LoadReport with its first line:
  a status outside the table's vocabulary (the v2018 doc does not list statuses, so the
  vocabulary below is the v2017 doc's plus what the v2018 tables are known to use; one
  unexpected value must not abort an hours-long read), a negative time, an end before a start
  when both are known, a negative resource.
- time 0 means "before or after the 8-day window" (v2018 doc): kept, counted as a flag.
- utilisation -1/101 (the doc's invalid marker) → null, counted as a flag.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sigma.sim.traces.errors import LoadReport, TraceError, check_file

_S, _I, _F = pa.string(), pa.int64(), pa.float64()
V2018_SCHEMAS: dict[str, tuple[tuple[str, pa.DataType], ...]] = {
    "machine_meta": (("machine_id", _S), ("time_stamp", _I), ("failure_domain_1", _I),
                     ("failure_domain_2", _S), ("cpu_num", _I), ("mem_size", _I), ("status", _S)),
    "machine_usage": (("machine_id", _S), ("time_stamp", _F), ("cpu_util_percent", _F),
                      ("mem_util_percent", _F), ("mem_gps", _F), ("mkpi", _F), ("net_in", _F),
                      ("net_out", _F), ("disk_io_percent", _F)),
    "container_meta": (("container_id", _S), ("machine_id", _S), ("time_stamp", _I), ("app_du", _S),
                       ("status", _S), ("cpu_request", _I), ("cpu_limit", _I), ("mem_size", _F)),
    "container_usage": (("container_id", _S), ("machine_id", _S), ("time_stamp", _F),
                        ("cpu_util_percent", _F), ("mem_util_percent", _F), ("cpi", _F), ("mem_gps", _F),
                        ("mpki", _F), ("net_in", _F), ("net_out", _F), ("disk_io_percent", _F)),
    "batch_task": (("task_name", _S), ("instance_num", _I), ("job_name", _S), ("task_type", _S),
                   ("status", _S), ("start_time", _I), ("end_time", _I), ("plan_cpu", _F),
                   ("plan_mem", _F)),
    "batch_instance": (("instance_name", _S), ("task_name", _S), ("job_name", _S), ("task_type", _S),
                       ("status", _S), ("start_time", _I), ("end_time", _I), ("machine_id", _S),
                       ("seq_no", _I), ("total_seq_no", _I), ("cpu_avg", _F), ("cpu_max", _F),
                       ("mem_avg", _F), ("mem_max", _F)),
}
_BATCH_STATES = ["Ready", "Waiting", "Running", "Terminated", "Failed", "Cancelled", "Interrupted"]
STATUSES: dict[str, list[str]] = {
    "machine_meta": ["USING", "IMPORT_INSTALLING"],
    "container_meta": ["started", "allocated", "stopped", "unknown"],
    "batch_task": _BATCH_STATES,
    "batch_instance": _BATCH_STATES,
}
_TIMES = {"machine_meta": ("time_stamp",), "machine_usage": ("time_stamp",),
          "container_meta": ("time_stamp",), "container_usage": ("time_stamp",),
          "batch_task": ("start_time", "end_time"), "batch_instance": ("start_time", "end_time")}
_RESOURCES = {"container_meta": ("cpu_request", "cpu_limit", "mem_size"),
              "batch_task": ("instance_num", "plan_cpu", "plan_mem")}
# Columns every row must fill; an empty one (or a blank line, which pyarrow reads as a row of
# empties) is a structural error. machine_id is not required of batch_instance: instances that
# never ran have no machine.
_REQUIRED = {"machine_meta": ("machine_id", "time_stamp", "cpu_num", "mem_size", "status"),
             "machine_usage": ("machine_id", "time_stamp"),
             "container_meta": ("container_id", "time_stamp", "status"),
             "container_usage": ("container_id", "time_stamp"),
             "batch_task": ("task_name", "job_name", "status", "start_time", "end_time"),
             "batch_instance": ("instance_name", "task_name", "job_name", "status", "start_time",
                                "end_time")}
_PERCENTS = ("cpu_util_percent", "mem_util_percent", "disk_io_percent")
_CONVERSION = re.compile(r"CSV column #(\d+): Row #(\d+): (.*)")
_PARSE = re.compile(r"Row #(\d+): (.*)")


class V2018Table:
    """Validated RecordBatches of one full-size v2018 table; `report` fills as you iterate."""

    def __init__(self, path: Path, table: str, block_size: int = 64 << 20) -> None:
        if table not in V2018_SCHEMAS:
            raise ValueError(f"unknown v2018 table {table!r}; expected one of {sorted(V2018_SCHEMAS)}")
        self.path, self.table, self.block_size = path, table, block_size
        self.columns = V2018_SCHEMAS[table]
        self.schema = pa.schema(list(self.columns))
        self.report = LoadReport(path)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        check_file(self.path)
        names = [n for n, _ in self.columns]
        try:  # open_csv already parses the first block, so it can fail like a read
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(column_names=names, block_size=self.block_size,
                                               use_threads=False),
                parse_options=pacsv.ParseOptions(newlines_in_values=False, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(column_types=dict(self.columns),
                                                     strings_can_be_null=False),
            )
        except pa.ArrowInvalid as err:
            raise self._error(str(err)) from None
        first_line = 1
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as err:
                raise self._error(str(err)) from None
            self.report.rows_read += batch.num_rows
            kept = self._validate(batch, first_line)
            first_line += batch.num_rows
            self.report.rows_kept += kept.num_rows
            yield kept

    def _error(self, message: str) -> TraceError:
        if m := _CONVERSION.search(message):
            col = int(m.group(1))
            return TraceError(self.path, m.group(3), line=int(m.group(2)),
                              column=f"{col + 1} ({self.columns[col][0]})")
        if m := _PARSE.search(message):
            return TraceError(self.path, m.group(2), line=int(m.group(1)))
        return TraceError(self.path, message)

    def _check_required(self, batch: pa.RecordBatch, first_line: int) -> None:
        for name in _REQUIRED[self.table]:
            column = batch.column(name)
            empty = pc.is_null(column)
            if pa.types.is_string(column.type):
                empty = pc.or_(empty, pc.equal(column, ""))
            mask = np.asarray(pc.fill_null(empty, True), dtype=bool)
            if mask.any():
                index = [n for n, _ in self.columns].index(name)
                raise TraceError(self.path, f"required field {name} is empty", line=first_line +
                                 int(np.argmax(mask)), column=f"{index + 1} ({name})")

    def _validate(self, batch: pa.RecordBatch, first_line: int) -> pa.RecordBatch:
        self._check_required(batch, first_line)
        bad = np.zeros(batch.num_rows, dtype=bool)

        def skip(reason: str, mask: Any) -> None:
            mask = np.asarray(pc.fill_null(mask, False), dtype=bool) & ~bad
            if mask.any():
                self.report.skip(reason, first_line + int(np.argmax(mask)), int(mask.sum()))
                bad[:] |= mask

        if (allowed := STATUSES.get(self.table)) is not None:
            status = batch.column("status")
            unknown = pc.invert(pc.is_in(status, pa.array(allowed)))
            for value in pc.unique(pc.filter(status, unknown)).to_pylist():
                skip(f"unknown_status:{value}", pc.equal(status, value))
        for name in _TIMES[self.table]:
            skip("negative_time", pc.less(batch.column(name), 0))
            self.report.flag(f"{name}_outside_window", pc.sum(pc.equal(batch.column(name), 0)).as_py() or 0)
        if len(_TIMES[self.table]) == 2:
            start, end = batch.column("start_time"), batch.column("end_time")
            both = pc.and_(pc.greater(start, 0), pc.greater(end, 0))
            skip("end_before_start", pc.and_(both, pc.less(end, start)))
        for name in _RESOURCES.get(self.table, ()):
            skip("negative_resource", pc.less(batch.column(name), 0))
        batch = self._null_invalid_percents(batch)
        return batch.filter(pa.array(~bad)) if bad.any() else batch

    def _null_invalid_percents(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if not self.table.endswith("_usage"):
            return batch
        arrays = list(batch.columns)
        for i, (name, _) in enumerate(self.columns):
            if name in _PERCENTS:
                invalid = pc.is_in(arrays[i], pa.array([-1.0, 101.0]))
                self.report.flag(f"invalid_{name}", pc.sum(invalid).as_py() or 0)
                arrays[i] = pc.if_else(invalid, pa.scalar(None, _F), arrays[i])
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def read_v2018_table(path: Path, table: str, block_size: int = 64 << 20) -> tuple[pa.Table, LoadReport]:
    """A whole table in memory (for the smaller tables), with its load report."""
    reader = V2018Table(path, table, block_size)
    batches = list(reader)
    return pa.Table.from_batches(batches, schema=reader.schema), reader.report
