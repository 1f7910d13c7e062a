"""The agent's stop: a signal relayed without taking a lock in its handler, and the deadline
that ends a stop that hangs (stacks to the log, last resort, exit 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigma.agent.stopping import EXIT_STUCK, SignalStop, StopDeadline, stop_on_signals


class Exits:
    """A stand-in for os._exit: records the code instead of ending pytest."""

    def __init__(self) -> None:
        self.codes: list[int] = []

    def __call__(self, code: int) -> None:
        self.codes.append(code)


def stuck_in_drain(release: threading.Event) -> None:
    """A stop that never ends by itself (a lock never released, a peer that never answers)."""
    release.wait()


def test_a_stop_blocked_past_its_deadline_dumps_every_thread_and_exits_1(tmp_path: Path) -> None:
    release = threading.Event()
    stopping = threading.Thread(target=stuck_in_drain, args=(release,), name="stuck-stop", daemon=True)
    last_resort: list[str] = []
    exits = Exits()
    with open(tmp_path / "agent.log", "w+") as out:
        deadline = StopDeadline(0.2, last_resort=lambda: last_resort.append("pods killed"), out=out, exit=exits,
                                fallback_after_s=None)
        try:
            stopping.start()
            deadline.begin()
            deadline.join(timeout=30)
        finally:
            release.set()
        out.seek(0)
        dump = out.read()
    assert exits.codes == [EXIT_STUCK]
    assert last_resort == ["pods killed"]
    # The dump names where the stuck stop waits, so the log says what hung.
    assert "stuck_in_drain" in dump, dump
    assert dump.count("Thread 0x") >= 2, dump  # every thread, not only the watchdog's


def test_a_stop_that_ends_within_its_deadline_never_exits(tmp_path: Path) -> None:
    exits = Exits()
    last_resort: list[str] = []
    with open(tmp_path / "agent.log", "w+") as out:
        deadline = StopDeadline(30.0, last_resort=lambda: last_resort.append("pods killed"), out=out, exit=exits,
                                fallback_after_s=None)
        deadline.begin()
        deadline.finished()
        deadline.join(timeout=30)
        out.seek(0)
        assert out.read() == ""
    assert exits.codes == [] and last_resort == []


def test_a_deadline_never_begun_does_nothing_when_finished() -> None:
    exits = Exits()
    deadline = StopDeadline(0.01, exit=exits, fallback_after_s=None)
    deadline.finished()
    deadline.join(timeout=30)
    assert exits.codes == []


@pytest.mark.parametrize("grace", [0.0, -1.0, float("nan")])
def test_a_deadline_must_be_positive(grace: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        StopDeadline(grace, fallback_after_s=None)


@pytest.fixture
def relayed() -> Iterator[tuple[SignalStop, list[int], threading.Event]]:
    """SIGUSR1 relayed to a list, and an Event set on each signal, as Agent.stop() sets its own."""
    got: list[int] = []
    stop = threading.Event()

    def on_signal(signum: int) -> None:
        got.append(signum)
        stop.set()

    relay = SignalStop(on_signal, signals=(signal.SIGUSR1,))
    relay.install()
    try:
        yield relay, got, stop
    finally:
        relay.close()


class SyncLoopAgent:
    """Agent.stop() as it is: two Events set, the second the one the sync loop (the main
    thread) waits on and clears on every turn."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.changed = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()
        self.changed.set()


@pytest.mark.timeout(30)  # a handler that waited for the lock would wait for ever: fail, do not hang
def test_a_signal_while_the_sync_loop_holds_its_events_lock_still_stops_the_agent(tmp_path: Path) -> None:
    agent = SyncLoopAgent()
    exits = Exits()
    with open(tmp_path / "agent.log", "w+") as out:
        deadline = StopDeadline(30.0, out=out, exit=exits, fallback_after_s=None)
        relay = stop_on_signals(agent.stop, deadline, signals=(signal.SIGUSR1,))
        try:
            # Held by the main thread as a first SIGTERM's handler runs Event.set() (a killed
            # `sigma up` sends a burst of them), or as the sync loop waits or clears: a handler
            # that set the Event itself, in this very thread, waited for the lock for ever.
            with agent.changed._cond:  # type: ignore[attr-defined]
                os.kill(os.getpid(), signal.SIGUSR1)
                for _ in range(100):  # the handler runs between these bytecodes, the lock held
                    pass
                assert not agent.changed.is_set()  # the stopper thread waits for the lock
            assert agent.changed.wait(10) and agent.stop_event.is_set()
        finally:
            deadline.finished()
            relay.close()
    assert exits.codes == []


@pytest.mark.timeout(30)
def test_a_burst_of_signals_stops_the_agent_once(tmp_path: Path) -> None:
    # A `sigma up` killed with -9 may send its agent several SIGTERMs (PR_SET_PDEATHSIG
    # fires for each of its threads the agent is passed to as they end).
    stops: list[str] = []
    agent = SyncLoopAgent()

    def stop() -> None:
        stops.append("stop")
        agent.stop()

    with open(tmp_path / "agent.log", "w+") as out:
        deadline = StopDeadline(30.0, out=out, exit=Exits(), fallback_after_s=None)
        relay = stop_on_signals(stop, deadline, signals=(signal.SIGUSR1,))
        try:
            for _ in range(4):
                os.kill(os.getpid(), signal.SIGUSR1)
            assert agent.stop_event.wait(10)
        finally:
            deadline.finished()
            relay.close()  # what was received is relayed before the relay ends
    assert stops == ["stop"]


@pytest.mark.timeout(30)
def test_every_signal_is_relayed_in_order(relayed: tuple[SignalStop, list[int], threading.Event]) -> None:
    _, got, stop = relayed
    os.kill(os.getpid(), signal.SIGUSR1)
    assert stop.wait(10)
    stop.clear()
    os.kill(os.getpid(), signal.SIGUSR1)
    assert stop.wait(10)
    assert got == [signal.SIGUSR1, signal.SIGUSR1]


def test_close_gives_the_previous_handler_back() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    relay = SignalStop(lambda _signum: None, signals=(signal.SIGUSR1,))
    relay.install()
    assert signal.getsignal(signal.SIGUSR1) != before
    relay.close()
    assert signal.getsignal(signal.SIGUSR1) == before


STUCK_AGENT = """
import sys, threading
from sigma.agent.stopping import StopDeadline, stop_on_signals

def stop_that_never_returns():
    threading.Event().wait()

stop_on_signals(stop_that_never_returns, StopDeadline(float(sys.argv[1]), fallback_after_s=30))
print("ready", flush=True)
threading.Event().wait()
"""


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_process_whose_stop_hangs_dumps_its_stacks_and_exits_1_on_its_own(tmp_path: Path) -> None:
    # The real exit (os._exit) and faulthandler's real dump to stderr, in a process of its own.
    process = subprocess.Popen([sys.executable, "-c", STUCK_AGENT, "0.5"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == EXIT_STUCK, err
    assert "stop_that_never_returns" in err  # the stuck thread's stack, in the log
