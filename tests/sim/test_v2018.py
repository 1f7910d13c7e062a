from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sigma.sim.traces import (
    TraceError,
    load_v2018_cluster_usage,
    load_v2018_machine_meta,
    load_v2018_machine_usage,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


CLUSTER_HEADER = "cpu_util_percent,mem_util_percent,net_in,net_out,disk_io_percent\n"


def test_machine_meta_holds_4034_machines_with_96_cpus(alibaba: Path) -> None:
    meta = load_v2018_machine_meta(alibaba / "v2018/machine_meta.csv")
    assert len(meta) == 17_592
    assert len(meta.names) == 4_034
    assert set(meta.cpus.tolist()) == {96}
    assert set(meta.mem.tolist()) == {100}
    assert int((meta.status == 1).sum()) == 5  # IMPORT_INSTALLING
    # m_1,0,219,17,96,100,USING
    assert (meta.names[meta.machine[0]], meta.time[0], meta.failure_domain_1[0]) == ("m_1", 0, 219)
    assert meta.failure_domain_2[0] == "17"


def test_the_machine_usage_sample_covers_16_machines(alibaba: Path) -> None:
    usage = load_v2018_machine_usage(alibaba / "v2018/machine_usage.csv")
    assert usage.report.rows_read == 100_002
    assert len(usage.names) == 16
    # m_1932,386640,41,92,,,43.04,33.08,5
    assert (usage.names[usage.machine[0]], usage.time[0], usage.cpu_percent[0]) == ("m_1932", 386640, 41)
    assert np.isnan(usage.mem_gps[0]) and usage.net_out[0] == pytest.approx(33.08)
    # SOURCES.md: CPU mean 34.8 %, memory mean 89.6 % for this sample.
    assert np.nanmean(usage.cpu_percent) == pytest.approx(34.8, abs=0.05)
    assert np.nanmean(usage.mem_percent) == pytest.approx(89.6, abs=0.05)


def test_invalid_percent_markers_become_nan_and_are_counted(tmp_path: Path) -> None:
    usage = load_v2018_machine_usage(write(tmp_path / "u.csv", "m_1,10,101,-1,,,1,1,5\n"))
    assert np.isnan(usage.cpu_percent[0]) and np.isnan(usage.mem_percent[0])
    assert usage.report.flagged == {"invalid_cpu_util_percent": 1, "invalid_mem_util_percent": 1}


def test_a_usage_sample_at_time_zero_is_skipped_and_counted(tmp_path: Path) -> None:
    usage = load_v2018_machine_usage(write(tmp_path / "u.csv", "m_1,0,5,5,,,1,1,5\nm_1,10,5,5,,,1,1,5\n"))
    assert len(usage) == 1
    assert usage.report.skipped == {"time_outside_window": 1}
    assert usage.report.first_line == {"time_outside_window": 1}


@pytest.mark.parametrize(("loader", "text", "column", "reason"), [
    (load_v2018_machine_meta, "m_1,-5,219,17,96,100,USING\n", "2 (time_stamp)", "negative timestamp"),
    (load_v2018_machine_meta, "m_1,0,219,17,96,100,BROKEN\n", "7 (status)", "unknown machine status"),
    (load_v2018_machine_meta, "m_1,0,219,17,96,100\n", "6", "expected 7 columns"),
    (load_v2018_machine_meta, "m_1,0,219,17,ninety,100,USING\n", "5 (cpu_num)", "expected an integer"),
    (load_v2018_machine_usage, "m_1,-1,5,5,,,1,1,5\n", "2 (time_stamp)", "negative timestamp"),
    (load_v2018_machine_usage, "m_1,10,150,5,,,1,1,5\n", "3 (cpu_util_percent)", "out of range"),
    (load_v2018_machine_usage, "m_1,10,,5,,,1,1,5\n", "3 (cpu_util_percent)", "expected a number"),
])
def test_bad_machine_rows_name_the_line_and_column(
        tmp_path: Path, loader: object, text: str, column: str, reason: str) -> None:
    path = write(tmp_path / "m.csv", "m_1,1,219,17,96,100,USING\n" if loader is load_v2018_machine_meta
                 else "m_1,10,5,5,,,1,1,5\n")
    path.write_text(path.read_text() + text)
    with pytest.raises(TraceError, match=reason) as err:
        loader(path)  # type: ignore[operator]
    assert (err.value.line, err.value.column) == (2, column)


def test_cluster_means_reproduce_the_daily_figures_in_sources(alibaba: Path) -> None:
    usage = load_v2018_cluster_usage(alibaba / "v2018/derived/cluster_avg_machine_usage", 300)
    assert [d.day for d in usage.days] == [1, 2, 3, 4, 5, 6, 7]
    assert [len(d.cpu_percent) for d in usage.days] == [289, 226, 288, 288, 288, 288, 288]
    daily = [round(float(d.cpu_percent.mean()), 1) for d in usage.days]
    assert daily == [32.6, 40.4, 41.6, 40.6, 41.3, 37.6, 43.0]  # SOURCES.md, days 1-7


def test_cluster_usage_row_counts_match_sources_for_every_bucket_width(alibaba: Path) -> None:
    root = alibaba / "v2018/derived/cluster_avg_machine_usage"
    assert [len(d.cpu_percent) for d in load_v2018_cluster_usage(root, 10, days=(1, 2)).days] == [8641, 6762]
    assert [len(d.cpu_percent) for d in load_v2018_cluster_usage(root, 30, days=(3,)).days] == [2880]


def test_a_missing_day_file_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "day_1/machine_usage_day_1_grouped_300_seconds.csv", CLUSTER_HEADER + "1,2,3,4,5\n")
    with pytest.raises(TraceError, match="day_2"):
        load_v2018_cluster_usage(tmp_path, 300, days=(1, 2))


@pytest.mark.parametrize(("body", "reason", "line"), [
    ("1,2,3,4\n", "expected 5 columns", 2),
    ("1,2,x,4,5\n", "expected a number", 2),
    ("1,2,3,4,500\n", "cannot be 500", 2),
    ("1,2,3,4,5\n" * 290, "more than one day", None),
    ("1,2,3,4,5", "truncated", 2),
])
def test_bad_cluster_usage_files_are_errors(tmp_path: Path, body: str, reason: str, line: int | None) -> None:
    write(tmp_path / "day_1/machine_usage_day_1_grouped_300_seconds.csv", CLUSTER_HEADER + body)
    with pytest.raises(TraceError, match=reason) as err:
        load_v2018_cluster_usage(tmp_path, 300)
    assert err.value.line == line


def test_a_cluster_file_with_another_header_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "day_1/machine_usage_day_1_grouped_300_seconds.csv", "a,b,c,d,e\n1,2,3,4,5\n")
    with pytest.raises(TraceError, match="header"):
        load_v2018_cluster_usage(tmp_path, 300)
