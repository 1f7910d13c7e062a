"""The tracker's state: canonical piece size, piece hashes only from those who fetched or
verified the bytes, claims with leases."""

from __future__ import annotations

import httpx
import pytest

from sigma.p2p.tracker import TrackerState

D = "sha256:" + "ab" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_first_registration_sets_the_piece_size_for_everyone() -> None:
    st = TrackerState()
    assert st.register(D, 10 << 20, 4 << 20).piece_size == 4 << 20
    assert st.register(D, 10 << 20, 1 << 20).piece_size == 4 << 20
    assert st.blobs[D].pieces == 3
    with pytest.raises(ValueError, match="disagrees"):
        st.register(D, 5, 4 << 20)


def test_announces_record_holders_and_hashes_only_from_the_claimer_of_the_piece() -> None:
    st = TrackerState()
    st.register(D, 100, 10)
    assert st.claim(D, "a", [0, 1]) == [0, 1]  # "a" fetches pieces 0 and 1 from the registry
    st.announce(D, "a", [0, 1], {0: "h0", 1: "h1"})
    st.announce(D, "b", [0, 2], {0: "other", 2: "h2"})  # "b" claimed neither: its word is not taken
    view = st.view(D, peer="c")
    assert view["holders"] == {"a": [0, 1], "b": [0, 2]} and view["hashes"] == {"0": "h0", "1": "h1"}
    # A peer is told only about the pieces it lacks.
    assert st.view(D, peer="b") == {**st.view(D, peer="b"), "holders": {"a": [1]}, "hashes": {"1": "h1"}}


def test_a_whole_blob_table_vouches_and_a_disagreement_disputes_the_piece_for_good() -> None:
    st = TrackerState()
    st.register(D, 30, 10)
    st.claim(D, "a", [0])
    st.announce(D, "a", [0], {0: "t0"})
    st.announce(D, "partial", [1], {1: "p1"})  # neither claimed nor whole: not taken
    st.announce(D, "seed", [0, 1, 2], {0: "t0", 1: "t1", 2: "t2"})  # verified the whole blob
    assert st.view(D, peer="c")["hashes"] == {"0": "t0", "1": "t1", "2": "t2"}
    st.announce(D, "liar", [0, 1, 2], {0: "t0", 1: "x1", 2: "t2"})
    assert st.view(D, peer="c")["hashes"] == {"0": "t0", "2": "t2"}  # piece 1 only from the registry now
    st.announce(D, "seed", [0, 1, 2], {0: "t0", 1: "t1", 2: "t2"})
    assert st.view(D, peer="c")["hashes"] == {"0": "t0", "2": "t2"}


def test_a_claim_is_exclusive_until_announced_or_its_lease_expires() -> None:
    clock = Clock()
    st = TrackerState(claim_lease=5.0, clock=clock)
    st.register(D, 100, 10)
    assert st.claim(D, "a", [0, 1]) == [0, 1]
    assert st.claim(D, "b", [0, 1, 2]) == [2]
    assert st.view(D, peer="b")["claims"] == {"0": "a", "1": "a"}
    st.announce(D, "a", [0], {0: "h"})
    assert st.view(D, peer="b")["claims"] == {"1": "a"}
    clock.now = 6.0  # "a" died holding the claim on piece 1
    assert st.claim(D, "b", [1]) == [1]


def test_a_peer_leaving_takes_its_pieces_and_claims_with_it() -> None:
    st = TrackerState()
    st.register(D, 100, 10)
    st.claim(D, "a", [0])
    st.announce(D, "a", [0], {0: "h"})
    st.claim(D, "a", [1])
    st.forget_peer("a")
    view = st.view(D)
    assert view["holders"] == {} and view["claims"] == {} and view["hashes"] == {"0": "h"}


def test_over_http_an_unknown_blob_is_a_404_status(tracker: tuple[str, TrackerState]) -> None:
    url, _ = tracker
    resp = httpx.get(f"{url}/blobs/{D}")
    assert resp.status_code == 404 and "not registered" in resp.json()["message"]
    answer = httpx.post(f"{url}/blobs/{D}", json={"size": 100, "piece_size": 10}).json()
    assert answer == {"size": 100, "piece_size": 10, "token": answer["token"]} and len(answer["token"]) >= 32
    assert httpx.post(f"{url}/blobs/{D}/claim", json={"peer": "http://a:1", "pieces": [3]}).json() == {
        "granted": [3]
    }
    assert httpx.get(f"{url}/blobs").json() == {D: {"pieces": 10, "peers": 0}}


def test_a_claimer_that_keeps_polling_keeps_its_claims() -> None:
    clock = Clock()
    st = TrackerState(claim_lease=2.0, clock=clock)
    st.register(D, 100, 10)
    st.claim(D, "slow", [0])
    for t in (1.5, 3.0, 4.5):  # a slow registry fetch, the claimer polling meanwhile
        clock.now = t
        st.view(D, peer="slow")
    assert st.claim(D, "other", [0]) == []
    clock.now = 7.0  # it stopped polling: dead
    assert st.claim(D, "other", [0]) == [0]


def test_a_peer_that_stops_calling_is_forgotten_after_its_ttl() -> None:
    clock = Clock()
    st = TrackerState(clock=clock, peer_ttl=10.0)
    st.register(D, 100, 10)
    st.claim(D, "crashed", [0, 1])
    st.announce(D, "crashed", [0, 1], {0: "h0", 1: "h1"})
    st.announce(D, "alive", [0], {})
    st.claim(D, "crashed", [2])
    for t in (4.0, 8.0, 12.0):  # "alive" keeps polling; "crashed" says nothing more
        clock.now = t
        st.view(D, peer="alive")
    view = st.view(D, peer="newcomer")
    assert view["holders"] == {"alive": [0]} and view["claims"] == {}
    assert view["hashes"] == {"0": "h0", "1": "h1"}  # hashes outlive their publisher
    assert "crashed" not in st.peers


def test_a_heartbeat_renews_the_lease_for_the_ttl_asked_and_says_if_the_peer_was_known() -> None:
    clock = Clock()
    st = TrackerState(clock=clock, peer_ttl=10.0)
    st.register(D, 100, 10)
    assert st.heartbeat("a", ttl=60.0) is False  # new to this tracker: it must announce
    st.announce(D, "a", [0], {0: "h0"})
    assert st.heartbeat("a", ttl=60.0) is True
    clock.now = 50.0  # past the default TTL, within the one it asked for
    assert st.view(D, peer="b")["holders"] == {"a": [0]}
    clock.now = 111.0  # silent for longer than its TTL: forgotten
    assert st.view(D, peer="b")["holders"] == {}
    assert st.heartbeat("a", ttl=60.0) is False  # back: told to announce again


def test_the_source_claim_cap_bounds_the_live_claims_of_a_blob() -> None:
    clock = Clock()
    st = TrackerState(claim_lease=5.0, clock=clock, max_claims=2)
    st.register(D, 100, 10)
    assert st.claim(D, "a", [0, 1, 2]) == [0, 1]
    assert st.claim(D, "b", [3]) == []
    assert st.claim(D, "a", [0, 1]) == [0, 1]  # renewing its own claims is always granted
    st.announce(D, "a", [0], {0: "h"})  # one claim done: room for one more
    assert st.claim(D, "b", [3, 4]) == [3]


def test_the_view_tells_how_many_claims_the_cap_still_grants() -> None:
    clock = Clock()
    capped = TrackerState(claim_lease=5.0, clock=clock, max_claims=2)
    capped.register(D, 100, 10)
    assert capped.view(D, "b")["claim_slots"] == 2
    capped.claim(D, "a", [0, 1])
    assert capped.view(D, "b")["claim_slots"] == 0  # b asks for no claim the cap would refuse
    clock.now = 6.0  # a's claims lapsed (a stopped polling)
    assert capped.view(D, "b")["claim_slots"] == 2
    uncapped = TrackerState()
    uncapped.register(D, 100, 10)
    assert uncapped.view(D, "b")["claim_slots"] is None


def test_over_http_a_heartbeat_answers_whether_the_peer_was_known(tracker: tuple[str, TrackerState]) -> None:
    url, _ = tracker
    assert httpx.post(f"{url}/peers/heartbeat", json={"peer": "http://p:1", "ttl": 5}).json() == {"known": False}
    assert httpx.post(f"{url}/peers/heartbeat", json={"peer": "http://p:1", "ttl": 5}).json() == {"known": True}
    resp = httpx.post(f"{url}/peers/heartbeat", json={"ttl": 5})
    assert resp.status_code == 400 and "bad heartbeat" in resp.json()["message"]
