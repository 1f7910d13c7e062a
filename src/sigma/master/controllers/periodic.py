"""The loop shared by the controllers that look at everything every few seconds (garbage
collection, node lifecycle, quota recount, Level-0, predictive scaling).

A pass that fails is logged and the next one comes a period later: the controller never
dies of one bad pass (the objects' own failures are reported on them inside the pass). An
ApiError is the API answering, expected now and then, so it is one warning line; anything
else is a bug in the pass and is logged with its traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sigma.api.errors import ApiError

Period = float | Callable[[], float]  # seconds, or asked after each pass (a due time may come sooner)


def run_periodic(stop: threading.Event, tick: Callable[[], object], period: Period, what: str,
                 log: logging.Logger) -> None:
    """Call ``tick`` until ``stop`` is set, waiting ``period`` seconds on ``stop`` after each
    pass (so a stop is noticed at once, not after the wait)."""
    while not stop.is_set():
        try:
            tick()
        except ApiError as err:
            log.warning("%s: %s", what, err)
        except Exception:
            log.exception("%s failed", what)
        stop.wait(period() if callable(period) else period)
