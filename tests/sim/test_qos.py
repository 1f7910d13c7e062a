"""Per-node Level-0 decisions are made once per distinct node; grouping the nodes is exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigma.sim import qos
from sigma.sim.qos import distinct_rows

rows = st.lists(st.lists(st.integers(-(2**40), 2**40), min_size=3, max_size=3), min_size=1, max_size=40)


def check(keys: np.ndarray) -> None:
    first, inverse = distinct_rows(keys)
    assert np.array_equal(keys[first][inverse], keys)  # every row is its group's row
    assert len({tuple(r) for r in keys[first].tolist()}) == first.size  # one row per distinct value
    assert first.size == len({tuple(r) for r in keys.tolist()})


@settings(max_examples=100, deadline=None)
@given(rows, st.data())
def test_rows_are_grouped_by_value(values, data) -> None:  # type: ignore[no-untyped-def]
    keys = np.array(values, dtype=np.int64)
    repeat = data.draw(st.lists(st.integers(0, len(values) - 1), max_size=60))
    check(np.concatenate([keys, keys[repeat]]) if repeat else keys)


def test_rows_sharing_a_fingerprint_are_still_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qos, "_FINGERPRINT", np.zeros(16, dtype=np.int64))  # every row: the same print
    check(np.array([[1, 2], [3, 4], [1, 2], [5, 6]], dtype=np.int64))
