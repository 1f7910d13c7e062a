"""One bad object must never stop a loop.

Every scheduler, controller and agent loop works through many objects per pass. An object
that makes the code fail (a quantity that overflows, a field of the wrong type written
before validation existed, a bug met by one shape of object) is caught here, logged, and
recorded on that object as a Warning Event, and the loop goes on with the others. The
Event is aggregated (sigma.client.events): a loop that fails on the same object every pass
bumps one Event's count instead of writing a new one each time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.client.events import record_event

log = logging.getLogger("sigma.guard")

T = TypeVar("T")

MESSAGE_LIMIT = 400  # an Event's message stays readable in `kubectl describe`


def failure_message(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}" if not isinstance(err, ApiError) else str(err)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 3] + "..."


def report_failure(client: ApiClient, obj: dict[str, Any], component: str, reason: str,
                   err: BaseException, what: str = "") -> None:
    """Log the failure and leave a Warning Event on the object (best effort)."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    ident = f"{obj.get('kind', 'object')} {meta.get('namespace') or ''}/{meta.get('name') or '?'}"
    if isinstance(err, ApiError):
        log.warning("%s: %s %s: %s", component, what or "processing", ident, err)
    else:
        log.error("%s: %s %s failed", component, what or "processing", ident, exc_info=err)
    try:
        record_event(client, obj, "Warning", reason, failure_message(err), component)
    except Exception:  # a malformed object may not even make an Event; the log has it
        log.exception("%s: could not record %s on %s", component, reason, ident)


def guarded(client: ApiClient, obj: dict[str, Any], component: str, reason: str,
            step: Callable[[], T], what: str = "") -> T | None:
    """``step()``, or None after reporting its failure on ``obj``. A Conflict (someone wrote
    in between) is not a failure of the object: it is logged quietly, and the next pass
    reads the object again."""
    try:
        return step()
    except ApiError as err:
        if err.reason == "Conflict" or err.code == 404:
            log.debug("%s: %s: %s", component, what or "processing", err)
            return None
        report_failure(client, obj, component, reason, err, what)
        return None
    except Exception as err:
        report_failure(client, obj, component, reason, err, what)
        return None
