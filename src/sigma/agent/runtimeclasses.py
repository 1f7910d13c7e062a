"""The handler of a pod's RuntimeClass, as the agent looks it up (kubelet does the same).

A pod names a class (spec.runtimeClassName); the class's ``handler`` is the runtime the agent
runs it with. Handlers never change (the API refuses it), so a class once read is cached for
good. The built-in classes are named after their handlers, so a class that cannot be read
(the master unreachable, or a name that is no class, as the process runtime's "process")
stands for the handler of its own name; admission already refused pods of unknown classes.
"""

from __future__ import annotations

import logging
from typing import Any

from sigma.api.errors import ApiError
from sigma.client.http import ServerUnavailable

log = logging.getLogger(__name__)


class HandlerLookup:
    def __init__(self, client: Any) -> None:
        self.client = client
        self._handlers: dict[str, str] = {}

    def handler(self, class_name: str) -> str:
        known = self._handlers.get(class_name)
        if known is not None:
            return known
        try:
            rc = self.client.get("runtimeclasses", class_name)
        except (ApiError, ServerUnavailable) as err:
            log.debug("RuntimeClass %s unread (%s): its own name stands for its handler", class_name, err)
            return class_name
        handler = str(rc.get("handler") or class_name)
        self._handlers[class_name] = handler
        return handler
