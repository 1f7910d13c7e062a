"""The piece picker, pure: rarest first, per-peer limits, exclusions, back to the registry."""

from __future__ import annotations

from sigma.p2p.picker import COMMON, REGISTRY, SOURCE_WINDOW, PickState, pick


def state(**kw: object) -> PickState:
    base: dict[str, object] = {"pieces": 4, "have": frozenset(), "in_flight": {}, "holders": {}}
    base.update(kw)
    return PickState(**base)  # type: ignore[arg-type]


def test_the_rarest_piece_is_fetched_first() -> None:
    holders = {"a": frozenset({0, 1, 2}), "b": frozenset({0, 1}), "c": frozenset({0})}
    plan = pick(state(pieces=3, holders=holders, total_limit=1))
    assert plan.from_peers == ((2, "a"),)
    assert dict(plan.rarity) == {0: 3, 1: 2, 2: 1}


def test_pieces_we_have_or_are_fetching_are_not_picked_again() -> None:
    holders = {"a": frozenset(range(4))}
    plan = pick(state(have=frozenset({0}), in_flight={1: "a"}, holders=holders, per_peer_limit=4))
    assert sorted(p for p, _ in plan.from_peers) == [2, 3]


def test_a_peer_never_has_more_than_its_limit_of_requests_in_flight() -> None:
    holders = {"a": frozenset(range(4)), "b": frozenset({3})}
    plan = pick(state(holders=holders, per_peer_limit=1))
    [(first, peer_a), (last, peer_b)] = plan.from_peers  # 0-2 are rarer (one holder) than 3
    assert first in {0, 1, 2} and peer_a == "a" and (last, peer_b) == (3, "b")
    busy = pick(state(holders={"a": frozenset(range(4))}, in_flight={0: "a", 1: "a"}, per_peer_limit=2))
    assert busy.from_peers == () and busy.from_registry == ()


def test_the_least_busy_holder_serves_a_piece() -> None:
    holders = {"a": frozenset({0, 1}), "b": frozenset({0, 1})}
    plan = pick(state(pieces=2, holders=holders, in_flight={1: "a"}))
    assert plan.from_peers == ((0, "b"),)


def test_excluded_peers_and_failed_pairs_are_not_asked() -> None:
    holders = {"dead": frozenset({0, 1}), "liar": frozenset({0, 1}), "ok": frozenset({1})}
    plan = pick(state(pieces=2, holders=holders, excluded=frozenset({"dead"}), failed=frozenset({(0, "liar")})))
    [(piece, peer)] = plan.from_peers
    assert piece == 1 and peer in {"liar", "ok"}  # "liar" only failed piece 0
    assert plan.from_registry == (0,)  # its only holders are dead or served it corrupt


def test_pieces_nobody_holds_go_to_the_registry_within_its_limit() -> None:
    plan = pick(state(pieces=6, registry_limit=2))
    assert len(plan.from_registry) == 2 and plan.from_peers == ()
    full = pick(state(pieces=6, registry_limit=2, in_flight={0: REGISTRY, 1: REGISTRY}))
    assert full.from_registry == ()


def test_a_piece_another_peer_fetches_from_the_registry_is_waited_for() -> None:
    plan = pick(state(pieces=2, claimed_elsewhere=frozenset({0, 1})))
    assert plan.from_registry == () and sorted(plan.waiting) == [0, 1]


def test_peers_starting_together_spread_over_different_pieces() -> None:
    firsts = {pick(state(pieces=64, registry_limit=1, seed=s)).from_registry[0] for s in range(16)}
    assert len(firsts) >= 8
    # ... among the lowest unclaimed indexes: the blob comes from the registry in about its
    # own order, so each peer's whole-blob hash keeps up with its pieces.
    assert max(firsts) < SOURCE_WINDOW
    later = {pick(state(pieces=64, registry_limit=1, seed=s, have=frozenset(range(20)))).from_registry[0]
             for s in range(16)}
    assert min(later) >= 20 and max(later) < 20 + SOURCE_WINDOW


def test_common_pieces_are_fetched_in_blob_order_after_the_rare_ones() -> None:
    many = {f"p{i}": frozenset(range(8)) for i in range(COMMON)}
    holders = {**many, "fresh": frozenset(range(8, 12))}
    plan = pick(state(pieces=12, holders=holders, per_peer_limit=8, total_limit=12, seed=3))
    order = [piece for piece, _ in plan.from_peers]
    assert sorted(order[:4]) == [8, 9, 10, 11] and order[4:] == list(range(8))


def test_the_plan_never_exceeds_the_total_in_flight_limit() -> None:
    holders = {p: frozenset(range(32)) for p in "abcdefgh"}
    plan = pick(state(pieces=32, holders=holders, total_limit=5, in_flight={31: "a"}))
    assert len(plan.from_peers) == 4


def test_the_same_state_and_seed_give_the_same_plan() -> None:
    holders = {p: frozenset(range(0, 32, i + 1)) for i, p in enumerate("abcd")}
    assert pick(state(pieces=32, holders=holders, seed=7)) == pick(state(pieces=32, holders=holders, seed=7))


def test_a_busy_holder_is_not_asked_and_its_pieces_never_go_to_the_registry() -> None:
    holders = {"a": frozenset({0, 1}), "b": frozenset({1})}
    plan = pick(state(pieces=3, holders=holders, busy=frozenset({"a"}), per_peer_limit=4))
    assert plan.from_peers == ((1, "b"),)  # piece 0 waits for "a"; piece 2 (nobody has it) is claimed
    assert plan.from_registry == (2,)
