"""How a signal stops the agent, and the bound on how long that stop may take.

    SIGTERM/SIGINT ─► handler: the signal's number into a pipe (nothing else)
                      └► the stopper thread: log, StopDeadline.begin(), Agent.stop()

A Python signal handler runs in the main thread between two bytecodes of whatever that
thread was doing, so it must take no lock the main thread may hold at that moment. Agent.stop()
sets threading.Events, and an Event's set() holds the Event's lock (not reentrant) while it
runs Python code. Signals come in bursts: PR_SET_PDEATHSIG fires each time the agent's parent
*thread* ends, and a `sigma up` killed with -9 ends thread after thread, the agent passed from
one to the next, so its agent may get several SIGTERMs within milliseconds. A second handler
run nested inside the first one's set() then waits for the lock its own thread holds, for
ever (the same goes for a signal handled while the sync loop holds the lock in a wait() or
clear()). So the handler only writes to a pipe, which takes no lock, and an ordinary thread,
free to wait for a lock, does the stopping.

StopDeadline bounds the stop: once begun, a stop that has not ended the process within its
grace dumps every thread's stack to the log (faulthandler), runs the caller's last resort
(the draining agent's: kill its pods) and exits 1, so a stuck stop is seen and never hangs
for ever. faulthandler's own timer backs it up a little later: it needs neither the GIL nor
the logging lock, so a thread that never gives either back cannot stop the exit either.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TextIO

log = logging.getLogger("sigma.agent")

DEFAULT_STOP_TIMEOUT_S = 20.0  # pods get at most drain_grace (10 s) of it; `sigma up` waits 25 s
FALLBACK_AFTER_S = 10.0  # faulthandler's GIL-free exit, this long after the deadline (the last resort's time)
EXIT_STUCK = 1


class StopDeadline:
    """``begin()`` starts the clock; the process must have ended ``grace_s`` seconds later,
    else: stacks to ``out``, ``last_resort()``, ``exit(1)``. ``finished()`` stops the clock
    (for a caller that stops without ending the process)."""

    def __init__(self, grace_s: float, last_resort: Callable[[], None] | None = None, out: TextIO | None = None,
                 exit: Callable[[int], object] = os._exit, fallback_after_s: float | None = FALLBACK_AFTER_S) -> None:
        if not grace_s > 0:  # NaN too
            raise ValueError(f"the stop timeout must be a positive number of seconds, not {grace_s}")
        self.grace_s = grace_s
        self.last_resort = last_resort
        self.out = out or sys.stderr
        self.exit = exit
        self.fallback_after_s = fallback_after_s
        self._begun = threading.Event()
        self._finished = threading.Event()
        # Started now, not when the stop begins: starting a thread takes locks of its own.
        self._thread = threading.Thread(target=self._watch, name="agent-stop-deadline", daemon=True)
        self._thread.start()

    def begin(self) -> None:
        if self._begun.is_set():
            return
        if self.fallback_after_s is not None:
            faulthandler.dump_traceback_later(self.grace_s + self.fallback_after_s, exit=True, file=self.out)
        self._begun.set()

    def finished(self) -> None:
        self._finished.set()
        self._begun.set()  # a watch never begun ends too
        if self.fallback_after_s is not None:
            faulthandler.cancel_dump_traceback_later()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _watch(self) -> None:
        self._begun.wait()
        if self._finished.wait(self.grace_s):
            return
        log.error("the agent did not stop within %.0fs: the stack of every thread follows; exiting with %d",
                  self.grace_s, EXIT_STUCK)
        with contextlib.suppress(Exception):  # the dump is best effort: the exit is what counts
            self.out.flush()
            faulthandler.dump_traceback(file=self.out, all_threads=True)
            self.out.flush()
        if self.last_resort is not None:
            try:
                self.last_resort()
            except Exception:
                log.exception("the stop's last resort failed")
        self.exit(EXIT_STUCK)


class SignalStop:
    """Calls ``on_signal(signum)`` from a thread of its own for each of ``signals`` received,
    the handler itself taking no lock (see the module's docstring). ``install()`` must run
    in the main thread, as signal.signal must."""

    def __init__(self, on_signal: Callable[[int], None],
                 signals: Iterable[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.on_signal = on_signal
        self.signals = tuple(signals)
        self._read_end, self._write_end = os.pipe()  # both close-on-exec: no shim inherits them
        os.set_blocking(self._write_end, False)  # a full pipe already holds a stop request
        self._thread = threading.Thread(target=self._relay, name="agent-signals", daemon=True)
        self._previous: dict[signal.Signals, Any] = {}

    def install(self) -> None:
        self._thread.start()
        self._previous = {signum: signal.signal(signum, self._handler) for signum in self.signals}

    def close(self) -> None:
        """The previous handlers back; the relay ends once it has relayed what was received."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        os.close(self._write_end)
        self._thread.join(timeout=5)

    def _handler(self, signum: int, _frame: object) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_end, bytes([signum]))

    def _relay(self) -> None:
        while received := os.read(self._read_end, 64):
            for signum in received:
                try:
                    self.on_signal(signum)
                except Exception:  # the next signal must still be relayed
                    log.exception("handling signal %d failed", signum)
        os.close(self._read_end)


def stop_on_signals(stop: Callable[[], None], deadline: StopDeadline,
                    signals: Iterable[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> SignalStop:
    """What `sigma agent` does on SIGTERM and SIGINT: the first begins the deadline, then
    calls ``stop`` (Agent.stop); those that follow are only logged. Call it in the main thread."""
    stopping: list[int] = []

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stopping:
            log.info("%s: already stopping", name)
            return
        stopping.append(signum)
        log.info("%s: stopping (at most %.0fs)", name, deadline.grace_s)
        deadline.begin()  # first: a stop() that blocks is bounded too
        stop()

    relay = SignalStop(on_signal, signals)
    relay.install()
    return relay
