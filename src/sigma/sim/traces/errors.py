"""How trace loaders fail loudly: TraceError, LoadReport and the shared row readers.

Every loader in this package makes one of two choices for each kind of bad input, and says
which in its module docstring:

- raise TraceError naming the file, the 1-based line and the column, when the input is not
  the table it claims to be (missing or truncated file, wrong column count, a number that
  does not parse, a status the table never uses). Nothing after such a line can be trusted.
- skip the row and count it in a LoadReport under a named reason, when the row is a quirk the
  real trace is known to contain (timestamps outside the window, end before start). The
  report keeps the first line of each reason so a user can look at a real example.

A loader never substitutes a guess for a value it could not read.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sigma.data_paths import fetch_hint


class TraceError(ValueError):
    """A trace file is not what its loader expects. Carries where, so a user can open the line."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None,
                 column: str | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.reason = reason
        where = str(self.path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {reason}")


@dataclass
class LoadReport:
    """Rows a loader read, kept and skipped, with a count and the first line per skip reason."""

    path: Path
    rows_read: int = 0
    rows_kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)
    # Values that were kept but flagged, e.g. the trace's -1/101 "invalid" utilisation markers
    # turned into NaN. Counted, so a user sees how much of a column is missing.
    flagged: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, line: int, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count
        self.first_line.setdefault(reason, line)

    def flag(self, reason: str, count: int = 1) -> None:
        if count:
            self.flagged[reason] = self.flagged.get(reason, 0) + count

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        parts = [f"{self.path.name}: {self.rows_kept} of {self.rows_read} rows kept"]
        parts += [f"skipped {n} {why} (first at line {self.first_line[why]})"
                  for why, n in sorted(self.skipped.items())]
        parts += [f"flagged {n} {why}" for why, n in sorted(self.flagged.items())]
        return "; ".join(parts)


def check_file(path: Path) -> None:
    """Refuse a missing, empty or truncated file before parsing it.

    Every table we load ends with a newline (the shared copies all do, as does the official
    release); a last byte that is not one means the copy was cut off mid-line.
    """
    if not path.is_file():
        raise TraceError(path, "file not found" + fetch_hint(path))
    size = path.stat().st_size
    if size == 0:
        raise TraceError(path, "file is empty")
    if path.suffix == ".gz":
        return
    with path.open("rb") as f:
        f.seek(size - 1)
        if f.read(1) != b"\n":
            lines = sum(chunk.count(b"\n") for chunk in _chunks(path)) + 1
            raise TraceError(path, "file is truncated: the last line has no newline", line=lines)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def csv_rows(path: Path, columns: tuple[str, ...], *, header: bool) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each row, with the column count checked on every row."""
    check_file(path)
    with path.open(newline="") as f:
        reader = csv.reader(f)
        if header:
            first = next(reader, None)
            if first is None or len(first) != len(columns):
                raise TraceError(path, f"header has {len(first or [])} columns, expected "
                                 f"{len(columns)} ({', '.join(columns)})", line=1)
        for fields in reader:
            if len(fields) != len(columns):
                raise TraceError(path, f"expected {len(columns)} columns, got {len(fields)}",
                                 line=reader.line_num, column=str(len(fields)))
            yield reader.line_num, fields


class FieldParser:
    """Turns one field into a number, raising TraceError that names file, line and column."""

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        self.columns = columns

    def integer(self, fields: list[str], i: int, line: int) -> int:
        try:
            return int(fields[i])
        except ValueError:
            raise self._bad(fields, i, line, "an integer") from None

    def number(self, fields: list[str], i: int, line: int) -> float:
        """A float; an empty field is refused (use optional() where the schema allows empty)."""
        try:
            value = float(fields[i])
        except ValueError:
            raise self._bad(fields, i, line, "a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise self._bad(fields, i, line, "a finite number")
        return value

    def optional(self, fields: list[str], i: int, line: int) -> float:
        """A float, or NaN for an empty field (the schema marks the column not mandatory)."""
        return float("nan") if fields[i] == "" else self.number(fields, i, line)

    def _bad(self, fields: list[str], i: int, line: int, what: str) -> TraceError:
        return TraceError(self.path, f"expected {what}, got {fields[i]!r}", line=line,
                          column=f"{i + 1} ({self.columns[i]})")
