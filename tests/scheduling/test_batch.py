"""Batch placement against a node-by-node reference: the same nodes, counts and cursor."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sigma.scheduling import BATCH_CPU, BATCH_MEMORY, ClusterSnapshot, InstancePlacer, NodeSpec, requests
from sigma.scheduling.batch import fits_anywhere, instances_per_node, room_for_one
from sigma.scheduling.snapshot import RequestVector
from tests.scheduling.builders import GIB


def reference_place(free: list[list[int]], request: RequestVector, count: int, cursor: int, window: int,
                    eligible: list[bool]) -> tuple[dict[int, int], int]:
    """Next-fit, one node at a time, window by window; returns {node: count} and the cursor.

    Within a window the cursor ends on the node where the count was reached; if the
    window's whole room was taken (and was not more than what was still wanted), on the
    window's last node."""
    n = len(free[0])
    taken: dict[int, int] = {}
    remaining, scanned = count, 0
    while remaining > 0 and scanned < n:
        start, stop = cursor, min(cursor + window, n)
        room = []
        for node in range(start, stop):
            fits = min(free[r][node] // int(request.amounts[r]) for r in request.asked)
            room.append(max(fits, 0) if eligible[node] else 0)
        last = stop - start - 1
        if sum(room) > remaining:
            running = 0
            for i, here in enumerate(room):
                running += here
                if running >= remaining:
                    last = i
                    break
        for i, here in enumerate(room[: last + 1]):
            take = min(here, remaining)
            if take:
                taken[start + i] = taken.get(start + i, 0) + take
                for r in range(len(free)):
                    free[r][start + i] -= take * int(request.amounts[r])
                remaining -= take
        scanned += stop - start
        cursor = (start + last) % n if remaining == 0 else stop % n
    return taken, cursor


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-2000, 16000), st.integers(0, 32 * GIB), st.integers(0, 40)), min_size=1,
             max_size=25),
    st.lists(st.tuples(st.integers(1, 4000), st.integers(0, 8 * GIB), st.integers(0, 200)), min_size=1, max_size=8),
    st.integers(1, 30),
    st.data(),
)
def test_placement_is_next_fit_node_by_node(nodes, tasks, window, data) -> None:  # type: ignore[no-untyped-def]
    specs = [NodeSpec(f"n{i}", {BATCH_CPU: max(c, 0), BATCH_MEMORY: m, "pods": p})
             for i, (c, m, p) in enumerate(nodes)]
    snapshot = ClusterSnapshot(specs)
    row = snapshot.resource_row(BATCH_CPU)
    snapshot.free[row] = [c for c, _, _ in nodes]  # some nodes over-committed (negative free)
    eligible = data.draw(st.lists(st.booleans(), min_size=len(nodes), max_size=len(nodes)))
    placer = InstancePlacer(snapshot, window=window)
    free = snapshot.free.tolist()
    for cpu, memory, count in tasks:
        ask = requests({BATCH_CPU: cpu, BATCH_MEMORY: memory})
        expected, cursor = reference_place(free, snapshot.request_vector(ask), count, placer.cursor, window,
                                           eligible)
        placement = placer.place(ask, count, np.array(eligible))
        assert dict(zip(placement.nodes.tolist(), placement.counts.tolist(), strict=True)) == expected
        assert placer.cursor == cursor
        assert snapshot.free.tolist() == free


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(-5000, 9000), st.integers(-GIB, 4 * GIB)), min_size=1, max_size=20),
       st.integers(1, 3000), st.integers(0, 2 * GIB))
def test_room_for_one_is_a_positive_count_of_instances(nodes, cpu, memory) -> None:  # type: ignore[no-untyped-def]
    snapshot = ClusterSnapshot([NodeSpec(f"n{i}", {BATCH_CPU: 0, BATCH_MEMORY: 0, "pods": 10})
                                for i in range(len(nodes))])
    snapshot.free[snapshot.resource_row(BATCH_CPU)] = [c for c, _ in nodes]
    snapshot.free[snapshot.resource_row(BATCH_MEMORY)] = [m for _, m in nodes]
    vector = snapshot.request_vector(requests({BATCH_CPU: cpu, BATCH_MEMORY: memory}))
    counts = instances_per_node(snapshot.free, vector)
    assert room_for_one(snapshot.free, vector).tolist() == (counts > 0).tolist()
    assert fits_anywhere(snapshot.free, vector) == bool(counts.any())
