"""A pass's view of the freed nodes: the same answers however they are asked for."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sigma.scheduling import BATCH_CPU, BATCH_MEMORY, ClusterSnapshot, NodeSpec, requests
from sigma.scheduling.batch import fits_anywhere
from sigma.sim.freed import CountingPlacer, FreedRoom, request_floors

shapes = st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 5000)), min_size=1, max_size=6)


def cluster(free: list[tuple[int, int]]) -> ClusterSnapshot:
    snapshot = ClusterSnapshot([NodeSpec(f"n{i}", {BATCH_CPU: 4000, BATCH_MEMORY: 8000, "pods": 50})
                                for i in range(len(free))])
    snapshot.free[snapshot.resource_row(BATCH_CPU)] = [c for c, _ in free]
    snapshot.free[snapshot.resource_row(BATCH_MEMORY)] = [m for _, m in free]
    return snapshot


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-1000, 4000), st.integers(-1000, 8000)), min_size=1, max_size=12), shapes,
       st.data())
def test_all_at_once_agrees_with_one_by_one(free, asks, data) -> None:  # type: ignore[no-untyped-def]
    snapshot = cluster(free)
    freed = np.array(sorted(data.draw(st.sets(st.integers(0, len(free) - 1)))), dtype=np.int64)
    shapes_asked = [requests({BATCH_CPU: c, BATCH_MEMORY: m}) for c, m in asks]
    vectors = [snapshot.request_vector(r) for r in shapes_asked]
    room = FreedRoom(snapshot, freed, CountingPlacer(snapshot))
    none_fits = room.none_fits_now(shapes_asked, request_floors(vectors))
    one_by_one = [freed.size > 0 and fits_anywhere(snapshot.free[:, freed], v) for v in vectors]
    assert none_fits == (not any(one_by_one))
    for shape, vector, fits in zip(shapes_asked, vectors, one_by_one, strict=True):
        assert room.hopeless(shape, vector) == (not fits)


def test_a_shape_seen_to_fit_before_the_pass_is_looked_at_again_after_a_placement() -> None:
    snapshot = cluster([(1000, 1000), (0, 0)])
    placer = CountingPlacer(snapshot)
    ask = requests({BATCH_CPU: 1000, BATCH_MEMORY: 1000})
    vector = snapshot.request_vector(ask)
    room = FreedRoom(snapshot, np.array([0]), placer)
    assert not room.none_fits_now([ask], request_floors([vector]))
    assert placer.place(ask, 1).placed == 1  # the pass's first task takes the freed room
    assert room.hopeless(ask, vector)  # so the next task of that shape is not tried
    assert room.hopeless(ask, vector)  # and the answer holds for the rest of the pass
