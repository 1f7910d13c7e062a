"""The agent's streaming sessions are capped per node: each holds a thread and a process."""

from __future__ import annotations

from typing import Any

import pytest

from sigma.agent import streaming


class Handler:
    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = []

    def _text(self, code: int, body: str) -> None:
        self.answers.append((code, body))


def test_a_session_over_the_cap_gets_429_and_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    streams = streaming.Streams(node=None, find_pod=lambda ns, name: None, netns_of=lambda uid: None)
    streams.sessions = streaming.MAX_SESSIONS
    ran: list[Any] = []
    monkeypatch.setattr(streaming, "handshake", lambda handler, protocols: pytest.fail("no handshake over the cap"))
    handler = Handler()
    streams._session(handler, streaming.CHANNEL_PROTOCOLS, lambda conn, protocol: ran.append(protocol))
    assert ran == [] and handler.answers[0][0] == 429 and "too many" in handler.answers[0][1]
    assert streams.sessions == streaming.MAX_SESSIONS  # nothing counted for the refused one


def test_a_refused_handshake_gives_its_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    streams = streaming.Streams(node=None, find_pod=lambda ns, name: None, netns_of=lambda uid: None)
    monkeypatch.setattr(streaming, "handshake", lambda handler, protocols: None)
    streams._session(Handler(), streaming.CHANNEL_PROTOCOLS, lambda conn, protocol: None)
    assert streams.sessions == 0
