"""The load generator's result: windows by due time, pooled windows, percentiles."""

from __future__ import annotations

import math

from sigma.bench.loadgen import LoadResult


def test_a_window_keeps_the_requests_due_inside_it_and_its_errors() -> None:
    run = LoadResult([1.0, 2.0, 3.0, 4.0], 2, 4.0, due=[10.0, 11.0, 12.0, 13.0], error_due=[11.5, 13.5])
    part = run.window(11.0, 13.0)
    assert (part.latencies_ms, part.due, part.errors, part.seconds) == ([2.0, 3.0], [11.0, 12.0], 1, 2.0)


def test_pooled_windows_add_their_samples_errors_and_time() -> None:
    a = LoadResult([1.0], 0, 1.0, due=[0.0])
    b = LoadResult([5.0, 2.0], 1, 2.0, due=[3.0, 4.0], error_due=[4.5])
    both = a.merged(b)
    assert (sorted(both.latencies_ms), both.errors, both.seconds) == ([1.0, 2.0, 5.0], 1, 3.0)
    assert both.percentile(99) == 5.0 and both.percentile(0) == 1.0


def test_an_empty_result_has_no_percentile() -> None:
    assert math.isnan(LoadResult([], 0, 0.0).percentile(99))
