from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest

from sigma.sim.traces import V2018_SCHEMAS, TraceError, V2018Table, read_v2018_table

BATCH_TASK = """M1,10,j_1,1,Terminated,157213,157295,100,0.3
R2_1,1,j_1,1,Terminated,157297,157322,100,0.49
task_Nzg3ODAwNDgzMTAwNTc2NTQ2Mw==,371,j_2,1,Running,0,0,50,0.2
"""
BATCH_INSTANCE = "ins_1,M1,j_1,1,Terminated,157213,157295,m_1,1,1,13,16,0.7,0.9\n"
CONTAINER_META = "c_1,m_2556,0,app_5052,started,400,400,1.56\n"
CONTAINER_USAGE = "c_1,m_1,10,5,101,,,,1.2,1.3,3\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_every_official_table_has_a_schema_in_file_order() -> None:
    assert [n for n, _ in V2018_SCHEMAS["batch_task"]] == [
        "task_name", "instance_num", "job_name", "task_type", "status", "start_time", "end_time",
        "plan_cpu", "plan_mem"]
    assert len(V2018_SCHEMAS["batch_instance"]) == 14
    assert len(V2018_SCHEMAS["container_meta"]) == 8
    assert len(V2018_SCHEMAS["container_usage"]) == 11


def test_batch_task_rows_are_typed_by_the_official_schema(tmp_path: Path) -> None:
    table, report = read_v2018_table(write(tmp_path / "batch_task.csv", BATCH_TASK), "batch_task")
    assert table.num_rows == 3 and report.rows_kept == 3
    assert table.schema.field("instance_num").type == pa.int64()
    assert table.column("task_name").to_pylist()[1] == "R2_1"
    assert table.column("plan_cpu").to_pylist() == [100.0, 100.0, 50.0]
    assert report.flagged == {"start_time_outside_window": 1, "end_time_outside_window": 1}


def test_batch_instance_container_meta_and_usage_load_by_schema(tmp_path: Path) -> None:
    instances, _ = read_v2018_table(write(tmp_path / "bi.csv", BATCH_INSTANCE), "batch_instance")
    assert instances.column("machine_id").to_pylist() == ["m_1"]
    meta, _ = read_v2018_table(write(tmp_path / "cm.csv", CONTAINER_META), "container_meta")
    assert meta.column("cpu_request").to_pylist() == [400]
    usage, report = read_v2018_table(write(tmp_path / "cu.csv", CONTAINER_USAGE), "container_usage")
    assert usage.column("mem_util_percent").to_pylist() == [None]  # 101 is the invalid marker
    assert usage.column("cpi").to_pylist() == [None]
    assert report.flagged == {"invalid_mem_util_percent": 1}


def test_a_large_table_streams_in_bounded_batches(tmp_path: Path) -> None:
    path = write(tmp_path / "batch_task.csv", BATCH_TASK * 20_000)
    reader = V2018Table(path, "batch_task", block_size=64 << 10)
    sizes = [batch.num_rows for batch in reader]
    assert len(sizes) > 10 and sum(sizes) == 60_000
    assert reader.report.rows_kept == 60_000


def test_a_gzip_file_is_read_without_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "batch_task.csv.gz"
    path.write_bytes(gzip.compress(BATCH_TASK.encode()))
    table, _ = read_v2018_table(path, "batch_task")
    assert table.num_rows == 3


@pytest.mark.parametrize(("row", "reason"), [
    ("M3,1,j_1,1,Exploded,10,20,100,0.3\n", "unknown_status:Exploded"),
    ("M3,1,j_1,1,Terminated,-10,20,100,0.3\n", "negative_time"),
    ("M3,1,j_1,1,Terminated,30,20,100,0.3\n", "end_before_start"),
    ("M3,-1,j_1,1,Terminated,10,20,100,0.3\n", "negative_resource"),
])
def test_row_quirks_are_skipped_and_counted_with_their_line(tmp_path: Path, row: str, reason: str) -> None:
    table, report = read_v2018_table(write(tmp_path / "bt.csv", BATCH_TASK + row + BATCH_TASK), "batch_task")
    assert table.num_rows == 6
    assert report.skipped == {reason: 1}
    assert report.first_line == {reason: 4}
    assert report.rows_read == 7


@pytest.mark.parametrize(("row", "line", "column", "reason"), [
    ("M3,1,j_1,1,Terminated,10,20,100\n", 4, None, "Expected 9 columns, got 8"),
    ("M3,one,j_1,1,Terminated,10,20,100,0.3\n", 4, "2 (instance_num)", "invalid value 'one'"),
    ("M3,1,j_1,1,Terminated,10,20,100,lots\n", 4, "9 (plan_mem)", "invalid value 'lots'"),
    ("\n", 4, "1 (task_name)", "required field task_name is empty"),
    ("M3,1,j_1,1,Terminated,,20,100,0.3\n", 4, "6 (start_time)", "required field start_time is empty"),
])
def test_structural_errors_name_the_line_and_column(
        tmp_path: Path, row: str, line: int, column: str | None, reason: str) -> None:
    path = write(tmp_path / "bt.csv", BATCH_TASK + row + BATCH_TASK)
    with pytest.raises(TraceError, match=reason) as err:
        read_v2018_table(path, "batch_task")
    assert (err.value.path, err.value.line, err.value.column) == (path, line, column)


def test_a_truncated_full_size_file_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="truncated") as err:
        read_v2018_table(write(tmp_path / "bt.csv", BATCH_TASK + "M3,1,j_1"), "batch_task")
    assert err.value.line == 4


def test_an_unknown_table_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown v2018 table"):
        V2018Table(tmp_path / "x.csv", "server_usage")
