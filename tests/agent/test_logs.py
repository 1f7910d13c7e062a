"""Log files: CRI records, rotation, tail, previous, timestamps (no root needed)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from sigma.agent.logs import LogWriter, parse_since_time, prune, read_log


def test_records_rotation_and_tail(tmp_path: Any) -> None:
    w = LogWriter(str(tmp_path / "0.log"), max_bytes=400, clock=lambda: 1.5)
    for i in range(20):
        w.write("stdout", f"line {i}\n".encode())
    w.write("stderr", b"no newline")
    w.close()
    assert os.path.exists(tmp_path / "0.log.1")
    assert os.path.getsize(tmp_path / "0.log") <= 400
    assert list(read_log(str(tmp_path), tail_lines=2)) == [b"line 19\n", b"no newline"]
    first = next(iter(read_log(str(tmp_path), tail_lines=1, timestamps=True)))
    assert first == b"1970-01-01T00:00:01.500000000Z no newline"


def test_previous_and_prune(tmp_path: Any) -> None:
    for attempt in range(3):
        w = LogWriter(str(tmp_path / f"{attempt}.log"), 10_000)
        w.write("stdout", f"attempt {attempt}\n".encode())
        w.close()
    prune(str(tmp_path), keep=2)
    assert sorted(os.listdir(tmp_path)) == ["1.log", "2.log"]
    assert list(read_log(str(tmp_path), previous=True)) == [b"attempt 1\n"]
    with pytest.raises(FileNotFoundError):
        list(read_log(str(tmp_path / "none")))


def test_since_keeps_the_records_written_from_then_on(tmp_path: Any) -> None:
    now = [100.0]
    w = LogWriter(str(tmp_path / "0.log"), 10_000, clock=lambda: now[0])
    for i in range(5):
        now[0] = 100.0 + i
        w.write("stdout", f"at {i}\n".encode())
    w.close()
    assert list(read_log(str(tmp_path), since=103.0)) == [b"at 3\n", b"at 4\n"]
    assert list(read_log(str(tmp_path), since=102.5, timestamps=True)) == [
        b"1970-01-01T00:01:43.000000000Z at 3\n", b"1970-01-01T00:01:44.000000000Z at 4\n"]
    # As the kubelet does: the tail first, then the time filter.
    assert list(read_log(str(tmp_path), since=101.0, tail_lines=2)) == [b"at 3\n", b"at 4\n"]
    assert list(read_log(str(tmp_path), since=200.0)) == []


def test_since_time_parses_rfc3339() -> None:
    assert parse_since_time("1970-01-01T00:01:40Z") == 100.0
    assert parse_since_time("1970-01-01T00:01:40.123456789Z") == pytest.approx(100.123456)
    assert parse_since_time("1970-01-01T01:01:40+01:00") == 100.0
    for bad in ("yesterday", "1970-01-01T00:01:40"):
        with pytest.raises(ValueError):
            parse_since_time(bad)
