"""The dashboard's live feed: one set of registry watches shared by every open browser.

The hub holds one RegistryWatch per kind the dashboard shows, keeps the current view of
every object (sigma.ui.views) and fans changes out to subscribers. Like the API server's
watch streams, it runs on the event loop: the store's thread only schedules a wake-up
(`add_listener`), so a hundred open dashboards cost one set of watches and no threads.

Each subscriber gets a snapshot first, then coalesced changes: a change to an object
replaces the one still waiting for that object, so a slow browser receives the latest
state rather than an ever longer backlog. Bursts are grouped by waiting `interval_s`
after each wake-up (a few updates a second is what a person can read anyway).

The watches are opened when the first subscriber arrives and closed after the last one
leaves, so a master nobody looks at spends nothing on the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.watch import RegistryWatch
from sigma.store.contract import StoreClosed
from sigma.ui.views import View, view_of

log = logging.getLogger("sigma.ui")

KINDS = ("nodes", "nodemetrics", "pods", "deployments", "batchjobs", "predictivescalers", "events")
MAX_EVENTS = 300  # Events pile up; the page shows the most recent ones
IDLE_CHECK_S = 5.0
RETRY_S = 1.0

Change = dict[str, Any]  # {"kind", "key", "item"}; item None means deleted


@dataclass(eq=False)  # compared and hashed by identity: subscribers live in a set
class Subscriber:
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    needs_snapshot: bool = True
    snapshot: dict[str, list[View]] | None = None
    pending: dict[tuple[str, str], Change] = field(default_factory=dict)

    def take(self) -> tuple[dict[str, list[View]] | None, list[Change]]:
        snapshot, changes = self.snapshot, list(self.pending.values())
        self.snapshot, self.pending = None, {}
        return snapshot, changes


class Hub:
    def __init__(self, registry: Registry, interval_s: float = 0.25) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self.state: dict[str, dict[str, View]] = {k: {} for k in KINDS}
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._synced = False

    # -- subscribers ----------------------------------------------------------------------
    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        self.subscribers.add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif self._synced:
            self._deliver({})  # the hub is live: hand the newcomer its snapshot at once
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        if not self.subscribers and self._wake is not None:
            self._wake.set()  # let the loop notice and close the watches

    def snapshot(self) -> dict[str, list[View]]:
        out = {kind: list(items.values()) for kind, items in self.state.items()}
        out["events"] = sorted(out["events"], key=lambda e: e["time"])[-MAX_EVENTS:]
        return out

    # -- the loop -------------------------------------------------------------------------
    async def _run(self) -> None:
        while self.subscribers:
            try:
                await self._watch_all()
            except StoreClosed:
                return
            except Exception:  # a compacted or failed watch: start over from a fresh list
                log.exception("dashboard feed failed; relisting in %.0fs", RETRY_S)
                await asyncio.sleep(RETRY_S)
            finally:
                self._synced = False
                self.state = {k: {} for k in KINDS}
                for sub in self.subscribers:
                    sub.needs_snapshot = True

    async def _watch_all(self) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()
        wake_pending = [False]

        def wake_up() -> None:  # the store's thread: one loop wake-up per drain, not per event
            if not wake_pending[0]:
                wake_pending[0] = True
                loop.call_soon_threadsafe(wake.set)

        watches: dict[str, RegistryWatch] = {}
        try:
            for kind in KINDS:
                watches[kind] = self.registry.watch(resource(kind), None, "")
                watches[kind].add_listener(wake_up)
            while self.subscribers:
                wake.clear()
                wake_pending[0] = False
                changes: dict[tuple[str, str], Change] = {}
                for kind, watch in watches.items():
                    for event in watch.drain():
                        key, view = view_of(kind, event.object)
                        item = None if event.type == "DELETED" else view
                        self._apply(kind, key, item)
                        changes[(kind, key)] = {"kind": kind, "key": key, "item": item}
                self._synced = True
                self._deliver(changes)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), IDLE_CHECK_S)
                await asyncio.sleep(self.interval_s)
        finally:
            for watch in watches.values():
                watch.close()

    def _apply(self, kind: str, key: str, item: View | None) -> None:
        items = self.state[kind]
        if item is None:
            items.pop(key, None)
            return
        items[key] = item
        if kind == "events" and len(items) > MAX_EVENTS * 2:
            # Keep memory bounded: drop the older half (the page keeps its own latest few).
            for old in sorted(items, key=lambda k: items[k]["time"])[:len(items) - MAX_EVENTS]:
                del items[old]

    def _deliver(self, changes: dict[tuple[str, str], Change]) -> None:
        snapshot: dict[str, list[View]] | None = None
        for sub in self.subscribers:
            if sub.needs_snapshot:
                snapshot = snapshot or self.snapshot()
                sub.snapshot, sub.pending, sub.needs_snapshot = snapshot, {}, False
            elif changes:
                sub.pending.update(changes)
            else:
                continue
            sub.wake.set()
