"""Sets of instance indices as compact range strings: {0,1,2,3,7,9,10} <-> "0-3,7,9-10".

A BatchJob records which of its instances succeeded in its status. Instances of a task
finish roughly in order, so ranges keep a task of 100,000 instances to a few bytes while
staying readable in `kubectl get -o yaml`.
"""

from __future__ import annotations

from collections.abc import Iterable


def encode_indices(indices: Iterable[int]) -> str:
    ordered = sorted(set(indices))
    parts: list[str] = []
    start = prev = None
    for i in ordered:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(_span(start, prev))
        start = prev = i
    if start is not None:
        parts.append(_span(start, prev))
    return ",".join(parts)


def _span(start: int, end: int | None) -> str:
    return str(start) if end is None or end == start else f"{start}-{end}"


def decode_indices(text: str) -> frozenset[int]:
    """Tolerant of damage: a part that does not parse is skipped, not fatal."""
    out: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            continue
        out.update(range(int(low), int(high) + 1) if dash else (int(low),))
    return frozenset(out)
