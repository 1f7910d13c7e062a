"""Container log files: written by the shim, read for `kubectl logs`.

Format: the CRI log format kubelet uses, one record per line:
    2024-05-01T12:00:00.123456789Z stdout F the line
(F = full line, P = partial line split because it was too long or the stream ended.)
Files: <dir>/<attempt>.log, rotated to <attempt>.log.1 at a size limit. The previous
attempt's file is kept so `previous=True` works after a restart.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

MAX_RECORD = 16 * 1024


def _timestamp(t: float) -> bytes:
    dt = datetime.fromtimestamp(t, UTC)
    return (dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1e9) % 1_000_000_000:09d}Z").encode()


class LogWriter:
    """Appends records and rotates when the file would exceed max_bytes (keeps one old file)."""

    def __init__(self, path: str, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.path, self.max_bytes, self.clock = path, max_bytes, clock
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the container's life
        self._partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            self._record(stream, b"F", buf[:nl])
            buf = buf[nl + 1 :]
        while len(buf) > MAX_RECORD:
            self._record(stream, b"P", buf[:MAX_RECORD])
            buf = buf[MAX_RECORD:]
        self._partial[stream] = buf

    def close(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._record(stream, b"P", rest)
        self._partial = {"stdout": b"", "stderr": b""}
        self._file.close()

    def _record(self, stream: str, tag: bytes, line: bytes) -> None:
        record = b"%s %s %s %s\n" % (_timestamp(self.clock()), stream.encode(), tag, line)
        if self._file.tell() + len(record) > self.max_bytes and self._file.tell() > 0:
            self._file.close()
            os.replace(self.path, self.path + ".1")
            self._file = open(self.path, "ab")  # noqa: SIM115
        self._file.write(record)
        self._file.flush()


def attempt_log_path(log_dir: str, attempt: int) -> str:
    return os.path.join(log_dir, f"{attempt}.log")


def attempts(log_dir: str) -> list[int]:
    try:
        names = os.listdir(log_dir)
    except FileNotFoundError:
        return []
    return sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())


def prune(log_dir: str, keep: int = 2) -> None:
    """Drop the logs of all but the last `keep` attempts."""
    for attempt in attempts(log_dir)[:-keep]:
        for suffix in ("", ".1"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(attempt_log_path(log_dir, attempt) + suffix)


def _since_filter(since: float | None) -> Callable[[bytes], bool]:
    """A test of whether a record was written at or after `since` (seconds since the epoch;
    None: every record). Records start with a fixed-width UTC timestamp, so comparing the
    bytes compares the times."""
    if since is None:
        return lambda record: True
    threshold = _timestamp(since)
    width = len(threshold)
    return lambda record: record[:width] >= threshold


def parse_since_time(text: str) -> float:
    """An RFC 3339 time (kubectl --since-time) as seconds since the epoch; ValueError if it
    is not one."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # Python's parser takes at most 6 fractional digits: nanoseconds are cut to microseconds.
    head, dot, rest = value.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return parsed.timestamp()


def _render(record: bytes, timestamps: bool) -> bytes:
    parts = record.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 4:
        return record
    ts, _stream, tag, body = parts
    end = b"" if tag == b"P" else b"\n"
    return (ts + b" " + body + end) if timestamps else body + end


def read_log(
    log_dir: str,
    *,
    previous: bool = False,
    tail_lines: int | None = None,
    follow: bool = False,
    timestamps: bool = False,
    since: float | None = None,
    poll_seconds: float = 0.2,
    is_running: Callable[[], bool] = lambda: False,
) -> Iterator[bytes]:
    """Yield the container's output. With follow, keep yielding new data while is_running()
    says the container runs (and once more after it stops, to drain the tail). With since
    (seconds since the epoch), only records written from then on; as the kubelet does, the
    tail is taken first and then filtered."""
    known = attempts(log_dir)
    index = -2 if previous else -1
    if len(known) < (2 if previous else 1):
        raise FileNotFoundError(
            f"previous terminated container not found in {log_dir}"
            if previous
            else f"no log for the container in {log_dir}"
        )
    path = attempt_log_path(log_dir, known[index])
    lines: deque[bytes] = deque(maxlen=tail_lines if tail_lines is not None and tail_lines >= 0 else None)
    if os.path.exists(path + ".1"):
        with open(path + ".1", "rb") as old:
            lines.extend(old)
    with open(path, "rb") as f:
        for line in f:
            lines.append(line)
        recent = _since_filter(since)
        for line in lines:
            if recent(line):
                yield _render(line, timestamps)
        if not follow or previous:
            return
        yield from _follow(f, path, timestamps, poll_seconds, is_running, recent)


def _follow(
    f: object, path: str, timestamps: bool, poll: float, is_running: Callable[[], bool],
    recent: Callable[[bytes], bool] = lambda record: True,
) -> Iterator[bytes]:
    import io

    assert isinstance(f, io.BufferedReader)
    inode = os.fstat(f.fileno()).st_ino
    pending = b""
    last_round = False
    while True:
        chunk = f.read()
        if chunk:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                if recent(line):
                    yield _render(line + b"\n", timestamps)
            continue
        try:
            rotated = os.stat(path).st_ino != inode
        except FileNotFoundError:
            rotated = False
        if rotated:  # the writer rotated: continue with the new file from its start
            f.close()
            f = open(path, "rb")  # noqa: SIM115
            inode = os.fstat(f.fileno()).st_ino
            continue
        if last_round:
            f.close()
            return
        if not is_running():
            last_round = True
            continue
        time.sleep(poll)
