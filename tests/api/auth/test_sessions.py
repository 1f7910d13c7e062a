"""The dashboard's session store and one-time login tokens, on a fake clock."""

from __future__ import annotations

from sigma.api.auth.identity import User
from sigma.api.auth.sessions import SessionStore

ALICE = User("alice", "", ("system:masters", "system:authenticated"))
BOB = User("bob", "", ("devs", "system:authenticated"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock, max_sessions: int = 100, max_once: int = 100) -> SessionStore:
    return SessionStore(session_ttl_s=3600, once_ttl_s=600, max_sessions=max_sessions, max_once=max_once,
                        clock=clock)


def test_a_session_is_its_user_until_it_expires() -> None:
    clock = Clock()
    sessions = store(clock)
    sid = sessions.create(ALICE)
    assert sessions.user_of(sid) == ALICE
    clock.now += 3599
    assert sessions.user_of(sid) == ALICE
    clock.now += 1
    assert sessions.user_of(sid) is None
    assert len(sessions) == 0  # the expired entry is gone, not just refused


def test_every_login_gets_a_new_random_id_not_derived_from_the_user() -> None:
    sessions = store(Clock())
    ids = {sessions.create(ALICE) for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) >= 40 and "alice" not in i for i in ids)


def test_unknown_and_empty_ids_are_nobody() -> None:
    sessions = store(Clock())
    sessions.create(ALICE)
    assert sessions.user_of("") is None
    assert sessions.user_of("not-a-session") is None
    assert sessions.end("") is False


def test_ending_a_session_stops_it_at_once_and_only_it() -> None:
    sessions = store(Clock())
    a, b = sessions.create(ALICE), sessions.create(BOB)
    assert sessions.end(a) is True
    assert sessions.user_of(a) is None
    assert sessions.user_of(b) == BOB
    assert sessions.end(a) is False


def test_the_store_is_bounded_and_drops_the_oldest() -> None:
    sessions = store(Clock(), max_sessions=3)
    ids = [sessions.create(BOB) for _ in range(5)]
    assert len(sessions) == 3
    assert [sessions.user_of(i) for i in ids] == [None, None, BOB, BOB, BOB]


def test_only_hashes_are_kept() -> None:
    sessions = store(Clock())
    sid, once = sessions.create(ALICE), sessions.issue_once(ALICE)
    held = repr(sessions._sessions) + repr(sessions._once)
    assert sid not in held and once not in held


def test_a_once_token_works_once() -> None:
    sessions = store(Clock())
    token = sessions.issue_once(ALICE)
    assert sessions.redeem_once(token) == ALICE
    assert sessions.redeem_once(token) is None


def test_a_once_token_expires_and_is_consumed_even_then() -> None:
    clock = Clock()
    sessions = store(clock)
    token = sessions.issue_once(ALICE)
    clock.now += 600
    assert sessions.redeem_once(token) is None
    clock.now -= 600  # even back in time it is gone
    assert sessions.redeem_once(token) is None


def test_unknown_once_tokens_and_session_ids_do_not_mix() -> None:
    sessions = store(Clock())
    sid = sessions.create(ALICE)
    token = sessions.issue_once(BOB)
    assert sessions.redeem_once(sid) is None
    assert sessions.redeem_once("") is None
    assert sessions.user_of(token) is None


def test_once_tokens_are_bounded_too() -> None:
    sessions = store(Clock(), max_once=2)
    tokens = [sessions.issue_once(ALICE) for _ in range(3)]
    assert [sessions.redeem_once(t) for t in tokens] == [None, ALICE, ALICE]


def test_a_session_whose_credential_is_revoked_ends() -> None:
    sessions = store(Clock())
    valid = [True]
    sid = sessions.create(BOB, lambda: valid[0])
    assert sessions.user_of(sid) == BOB
    valid[0] = False
    assert sessions.user_of(sid) is None
    valid[0] = True  # gone for good: a restored token needs a new login
    assert sessions.user_of(sid) is None
