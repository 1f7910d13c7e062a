"""Quantities stored before the API bounded them to int64 still count, without failing admission."""

from __future__ import annotations

from sigma.api.quota import _exceeded, pod_usage
from sigma.quantity import MAX_INT64


def test_a_stored_quantity_beyond_int64_counts_as_the_most_int64_holds() -> None:
    old = {"spec": {"containers": [{"resources": {"requests": {"memory": "100Ei", "cpu": "1e999999999"}}}]}}
    usage = pod_usage(old)
    assert usage["memory"] == MAX_INT64 and usage["cpu"] == MAX_INT64
    quota = {"metadata": {"name": "q"}, "spec": {"hard": {"memory": "100Ei", "cpu": "2"}}}
    assert _exceeded(quota, {"memory": 0, "cpu": 0}, {"memory": 1, "cpu": 1000}) is None
    assert _exceeded(quota, {"memory": MAX_INT64, "cpu": 0}, {"memory": 1}) is not None
