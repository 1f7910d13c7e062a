"""Objects of one cluster-scoped kind by name, kept current from a watch.

Admission reads PriorityClasses and RuntimeClasses on every pod create; listing them each
time would cost more than the rest of the write, so each is a dict that the watch's events
(drained when read) keep up to date."""

from __future__ import annotations

from typing import Any

from sigma.api.registry import Registry
from sigma.api.resources import ResourceType


class WatchedByName:
    def __init__(self, registry: Registry, rt: ResourceType) -> None:
        listed = registry.list(rt)
        self._objects = {o["metadata"]["name"]: o for o in listed["items"]}
        self._watch = registry.watch(rt, None, listed["metadata"]["resourceVersion"])

    def current(self) -> dict[str, dict[str, Any]]:
        for event in self._watch.drain():
            name = event.object["metadata"]["name"]
            if event.type == "DELETED":
                self._objects.pop(name, None)
            else:
                self._objects[name] = event.object
        return self._objects

    def close(self) -> None:
        self._watch.close()
