"""Pre-reservation, pure: spreading a predicted peak over nodes, and what Level-0 makes of it."""

from __future__ import annotations

from sigma.colocation.level0 import ProdUsage, Resources
from sigma.colocation.prereserve import TargetOnNode, raise_predicted, reservation_nodes, reserved_by_node, spread

NOW = 1_764_000_000.0


def test_existing_pods_reserve_their_share_of_the_peak_minus_what_they_use():
    nodes = {"a": TargetOnNode(pods=2, cpu_millis=1000, free_cpu_millis=0),
             "b": TargetOnNode(pods=1, cpu_millis=500, free_cpu_millis=0)}
    extra, unplaced = spread(6000, 3, nodes, 500, 0)
    assert extra == {"a": Resources(3000, 0), "b": Resources(1500, 0)} and unplaced == 0


def test_new_replicas_go_where_there_is_room_and_those_that_fit_nowhere_reserve_nothing():
    nodes = {"a": TargetOnNode(1, 1000, free_cpu_millis=1000), "b": TargetOnNode(1, 1000, free_cpu_millis=600)}
    extra, unplaced = spread(6000, 6, nodes, 500, 256)
    # 1000m per replica; of four new ones a takes two (1000m of room), b one (600m), one fits nowhere.
    assert extra == {"a": Resources(2000, 512), "b": Resources(1000, 256)} and unplaced == 1


def test_no_peak_or_no_replicas_reserves_nothing():
    assert spread(0, 3, {"a": TargetOnNode(3, 900, 0)}, 100, 0) == ({}, 0)
    assert spread(1000, 0, {}, 100, 0) == ({}, 0)


def scaler(until: float, *nodes: tuple[str, int]) -> dict:
    return {"status": {"reservation": {"until": until, "nodes": reservation_nodes(
        {n: Resources(cpu, 0) for n, cpu in nodes})}}}


def test_live_reservations_add_up_per_node_and_lapsed_ones_are_ignored():
    scalers = [scaler(NOW + 60, ("a", 1000), ("b", 200)), scaler(NOW + 60, ("a", 500)),
               scaler(NOW - 1, ("a", 9999)), {"status": {}}, {}]
    assert reserved_by_node(scalers, NOW) == {"a": Resources(1500, 0), "b": Resources(200, 0)}


def test_the_prediction_is_prod_now_plus_the_extra_on_the_same_basis_as_level0():
    usage = ProdUsage(NOW - 5, 1000, 2**30, cpu_peak_millis=1200)
    requests = Resources(4000, 2**31)
    assert raise_predicted(None, usage, requests, Resources(800, 0), NOW, 60) == Resources(2000, 2**30)
    stale = ProdUsage(NOW - 600, 1000, 2**30)
    assert raise_predicted(None, stale, requests, Resources(800, 0), NOW, 60) == Resources(4800, 2**31)
    assert raise_predicted(Resources(5000, 0), usage, requests, Resources(800, 0), NOW, 60) == Resources(5000, 2**30)
    assert raise_predicted(Resources(7, 7), usage, requests, None, NOW, 60) == Resources(7, 7)
