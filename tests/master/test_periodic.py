"""The periodic loop the controllers share: a failing pass is logged, the loop goes on."""

from __future__ import annotations

import logging
import threading

import pytest

from sigma.api.errors import ApiError
from sigma.master.controllers.periodic import run_periodic

log = logging.getLogger("sigma.test.periodic")


def test_failing_passes_are_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    outcomes: list[Exception | None] = [ApiError(503, "ServiceUnavailable", "busy"), RuntimeError("bug"), None]
    calls = []

    def tick() -> None:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if outcome is None:
            stop.set()
            return
        raise outcome

    with caplog.at_level(logging.WARNING, logger=log.name):
        run_periodic(stop, tick, 0.0, "test pass", log)
    assert len(calls) == 3
    records = [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert records == [(logging.WARNING, "test pass: busy", False), (logging.ERROR, "test pass failed", True)]


def test_the_period_may_be_asked_after_each_pass() -> None:
    stop = threading.Event()
    asked: list[int] = []

    def period() -> float:
        asked.append(1)
        if len(asked) == 2:
            stop.set()
        return 0.0

    passes: list[int] = []
    run_periodic(stop, lambda: passes.append(1), period, "test pass", log)
    assert (len(passes), len(asked)) == (2, 2)


def test_a_stopped_loop_makes_no_pass() -> None:
    stop = threading.Event()
    stop.set()
    passes: list[int] = []
    run_periodic(stop, lambda: passes.append(1), 60.0, "test pass", log)
    assert passes == []
