"""The proxy loop: the cache's Services and EndpointSlices -> ``nft -f`` on every change.

Changes are coalesced: a sync runs at most every ``min_sync_period`` (a rolling update
that touches many slices at once is one transaction, not hundreds). The first sync, and any
sync after nft refused a partial one, writes the whole table; the others write only what
the Services whose object or slices changed need (``patch``), rebuilding only their
fragments. After an agent restart the first
sync is a full write from a fresh list, so whatever the table held is replaced.

A plain agent stop leaves the table in place (pods keep reaching Services while the agent
restarts, as with kube-proxy); ``remove()`` (the agent's drain) deletes it.
"""

from __future__ import annotations

import json
import logging
import operator
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from sigma.agent.svcproxy.libnft import LibNft, default_nft
from sigma.agent.svcproxy.model import service_ports, slices_by_service
from sigma.agent.svcproxy.nft import Nft, NftError
from sigma.agent.svcproxy.patch import Applied, patch
from sigma.agent.svcproxy.rules import (
    Fragment,
    NodeConfig,
    Ruleset,
    merge,
    render_delete,
    render_full,
    service_fragment,
)

log = logging.getLogger("sigma.agent.svcproxy")

MIN_SYNC_PERIOD_S = 0.1
RETRY_S = 5.0  # after nft refused a full write
INCREMENTAL_MAX_CHANGES = 500  # objects changed since the last sync beyond which all are looked at


class Source(Protocol):
    synced: threading.Event

    def subscribe(self) -> threading.Event: ...

    def snapshot(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]: ...


@dataclass
class SyncStats:
    full: bool = False
    seconds: float = 0.0
    script_bytes: int = 0
    syncs: int = 0


def _version(obj: dict[str, Any]) -> str:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    # Objects from the API always carry one; objects made by hand (tests) are compared whole.
    return str(rv) if rv else json.dumps(obj, sort_keys=True)


@dataclass(frozen=True)
class _Cached:
    """One Service's fragment and what it was made from. The objects themselves are held:
    the cache hands out the same dict until the API changes the object, so an unchanged
    Service is recognised by identity (a sync's cost follows the change, not the cluster;
    holding them also keeps their ids from being reused)."""

    signature: tuple[str, ...]
    fragment: Fragment
    service: dict[str, Any]
    slices: tuple[dict[str, Any], ...]
    by_identity: bool  # every object carries a resourceVersion
    problem: str = ""  # why the Service is left out, if it is


def _same_objects(cached: _Cached, svc: dict[str, Any], slices: list[dict[str, Any]]) -> bool:
    """The very objects the fragment was made from (only for objects that carry a
    resourceVersion: one made by hand, without, may be changed in place)."""
    if not cached.by_identity or cached.service is not svc:
        return False
    mine = cached.slices
    if len(mine) != len(slices):
        return False
    return all(map(operator.is_, mine, slices))  # C-level: no Python frame per object


def _versioned(svc: dict[str, Any], slices: list[dict[str, Any]]) -> bool:
    return all((o.get("metadata") or {}).get("resourceVersion") for o in (svc, *slices))


def _has_version(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("resourceVersion"))


@dataclass
class _Seen:
    """A snapshot's objects by id (held, so no id is reused while it is compared)."""

    svcs: dict[int, dict[str, Any]]
    slices: dict[int, dict[str, Any]]


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "default", meta.get("name") or ""


class ServiceProxy:
    def __init__(self, source: Source, cfg: NodeConfig, nft: Nft | LibNft | None = None,
                 min_sync_period: float = MIN_SYNC_PERIOD_S) -> None:
        self.source, self.cfg = source, cfg
        self.nft: Nft | LibNft = nft or default_nft()
        self.min_sync_period = min_sync_period
        self.changed = source.subscribe()
        self._applied: Applied | None = None  # what the kernel holds, as far as we know
        self._pending_problems: set[str] = set()
        self.last = SyncStats()
        self._fragments: dict[tuple[str, str], _Cached] = {}
        self._fragment_of: dict[tuple[str, str], Fragment] = {}  # the same fragments, as sync reads them
        self._problem_of: dict[tuple[str, str], str] = {}
        self._svc_by_key: dict[tuple[str, str], dict[str, Any]] = {}
        self._slices_by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._seen: _Seen | None = None  # the last snapshot's objects by id, when all are versioned
        self._problems: set[str] = set()

    def _current(self) -> tuple[dict[tuple[str, str], Fragment], set[tuple[str, str]]]:
        """Every Service's fragment and the keys whose fragment was made anew (Services
        unchanged since the last call reuse theirs).

        The cache hands out the same dict for an object until the API changes it, so the
        objects that changed are the ones whose identity is new (or gone): set operations
        in C find them, and only their Services are looked at. The whole scan runs the first
        time, when much changed at once, and while an object lacks a resourceVersion (made
        by hand: it may be changed in place)."""
        services, slices = self.source.snapshot()
        svc_ids = dict(zip(map(id, services), services, strict=True))
        slice_ids = dict(zip(map(id, slices), slices, strict=True))
        seen = self._seen
        if seen is not None:
            new_svcs = [svc_ids[i] for i in svc_ids.keys() - seen.svcs.keys()]
            gone_svcs = [seen.svcs[i] for i in seen.svcs.keys() - svc_ids.keys()]
            new_slices = [slice_ids[i] for i in slice_ids.keys() - seen.slices.keys()]
            gone_slices = [seen.slices[i] for i in seen.slices.keys() - slice_ids.keys()]
            changed = len(new_svcs) + len(gone_svcs) + len(new_slices) + len(gone_slices)
            if changed <= INCREMENTAL_MAX_CHANGES and all(map(_has_version, new_svcs + new_slices)):
                self._seen = _Seen(svc_ids, slice_ids)
                return self._apply_changes(new_svcs, gone_svcs, new_slices, gone_slices)
        fragments, fresh = self._scan(services, slices)
        versioned = all(map(_has_version, services)) and all(map(_has_version, slices))
        self._seen = _Seen(svc_ids, slice_ids) if versioned else None
        return fragments, fresh

    def _apply_changes(self, new_svcs: list[dict[str, Any]], gone_svcs: list[dict[str, Any]],
                       new_slices: list[dict[str, Any]], gone_slices: list[dict[str, Any]],
                       ) -> tuple[dict[tuple[str, str], Fragment], set[tuple[str, str]]]:
        dirty: set[tuple[str, str]] = set()
        for svc in gone_svcs:
            key = _key(svc)
            dirty.add(key)
            if self._svc_by_key.get(key) is svc:
                del self._svc_by_key[key]
        for new_svc in new_svcs:
            key = _key(new_svc)
            dirty.add(key)
            self._svc_by_key[key] = new_svc
        for key, gone in slices_by_service(gone_slices).items():
            dirty.add(key)
            kept = [s for s in self._slices_by_key.get(key, []) if all(s is not g for g in gone)]
            if kept:
                self._slices_by_key[key] = kept
            else:
                self._slices_by_key.pop(key, None)
        for key, new in slices_by_service(new_slices).items():
            dirty.add(key)
            self._slices_by_key.setdefault(key, []).extend(new)
        fresh = set()
        for key in dirty:
            current = self._svc_by_key.get(key)
            if current is None:
                if self._fragments.pop(key, None) is not None:
                    fresh.add(key)
                self._fragment_of.pop(key, None)
                self._problem_of.pop(key, None)
                continue
            if self._rebuild(key, current, self._slices_by_key.get(key, [])):
                fresh.add(key)
        self._pending_problems = set(self._problem_of.values())
        return self._fragment_of, fresh

    def _rebuild(self, key: tuple[str, str], svc: dict[str, Any], mine: list[dict[str, Any]]) -> bool:
        """Service ``key``'s fragment from these objects; whether it was made anew."""
        cached = self._fragments.get(key)
        if cached is not None and _same_objects(cached, svc, mine):
            return False
        signature = (_version(svc), *sorted(map(_version, mine))) if len(mine) > 1 else (
            _version(svc), *map(_version, mine))
        made = cached is None or cached.signature != signature
        if not made:
            assert cached is not None
            fragment, problem = cached.fragment, cached.problem
        else:
            problem = ""
            try:
                fragment = service_fragment(service_ports(svc, list(mine), self.cfg.node_name), self.cfg)
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                problem = f"service {key[0]}/{key[1]}: {err}"
                fragment = Fragment()
        self._fragments[key] = _Cached(signature, fragment, svc, tuple(mine), _versioned(svc, mine), problem)
        self._fragment_of[key] = fragment
        if problem:
            self._problem_of[key] = problem
        else:
            self._problem_of.pop(key, None)
        return made

    def _scan(self, services: list[dict[str, Any]], slices: list[dict[str, Any]],
              ) -> tuple[dict[tuple[str, str], Fragment], set[tuple[str, str]]]:
        """Every Service looked at (each reusing its fragment when its objects are the same)."""
        by_service = slices_by_service(slices)
        old = self._fragments
        self._fragments, self._fragment_of, self._problem_of = {}, {}, {}
        self._svc_by_key, self._slices_by_key = {}, {}
        fresh: set[tuple[str, str]] = set()
        for svc in services:
            key = _key(svc)
            mine = by_service.get(key, [])
            self._svc_by_key[key] = svc
            if mine:
                self._slices_by_key[key] = list(mine)
            cached = old.get(key)
            if cached is not None:
                self._fragments[key] = cached
            if self._rebuild(key, svc, mine):
                fresh.add(key)
        for key, mine in by_service.items():  # slices of Services not (yet) listed
            self._slices_by_key.setdefault(key, list(mine))
        fresh |= set(old) - set(self._fragments)  # Services gone
        self._pending_problems = set(self._problem_of.values())
        return self._fragment_of, fresh

    def _merge(self, fragments: dict[tuple[str, str], Fragment]) -> tuple[Ruleset, dict[tuple[str, str], Fragment]]:
        """The whole table and the fragments it kept."""
        # Key order: which of two clashing Services wins is the same on every node and sync.
        rs = merge([fragments[key] for key in sorted(fragments)], self.cfg)
        merged = {k: f for k, f in fragments.items() if f.service not in rs.left_out}
        self._report(self._pending_problems | set(rs.skipped))
        return rs, merged

    def _write_full(self, fragments: dict[tuple[str, str], Fragment]) -> str:
        """Replace the kernel's table with the whole one; the script written."""
        rs, merged = self._merge(fragments)
        script = render_full(rs)
        self._applied = None
        if isinstance(self.nft, LibNft):
            # The indexes the next partial sync reads are built while libnftables loads the
            # table on its own thread: on a full sync of thousands of Services both take long.
            wait = self.nft.submit(script)
            try:
                applied = Applied.of(rs, merged)
            finally:
                wait()
        else:
            self.nft.apply(script)
            applied = Applied.of(rs, merged)
        self._applied = applied
        return script

    def _report(self, problems: set[str]) -> None:
        for problem in sorted(problems - self._problems):  # each once, not every sync
            log.warning("service proxy skips %s", problem)
        self._problems = problems

    def ruleset(self) -> Ruleset:
        """The whole table the current Services call for."""
        fragments, _ = self._current()
        return self._merge(fragments)[0]

    def sync(self) -> SyncStats:
        """One sync: only the changed Services' part when possible, the whole table otherwise
        (the first sync, after a refused partial one, and while a clash keeps a Service out)."""
        started = time.perf_counter()
        fragments, fresh = self._current()
        script: str | None = None
        if self._applied is not None and not self._applied.ruleset.skipped:
            changes = {key: fragments.get(key) for key in fresh}
            script = patch(self._applied, changes) if changes else ""
            if script is not None:
                self._report(self._pending_problems)
        full = script is None
        try:
            if script is None:
                script = self._write_full(fragments)
            elif script:
                self.nft.apply(script)
        except NftError as err:
            self._applied = None
            if full:
                raise
            log.warning("partial nft update refused (%s); writing the whole table", err)
            script, full = self._write_full(fragments), True
        self.last = SyncStats(full, time.perf_counter() - started, len(script), self.last.syncs + 1)
        return self.last

    @property
    def applied(self) -> Ruleset | None:
        """The table the kernel holds, as far as the proxy knows."""
        return self._applied.ruleset if self._applied is not None else None

    def remove(self) -> None:
        """Delete Sigma's table (the agent's drain)."""
        self.nft.apply(render_delete())
        self._applied = None

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self.source.synced.wait(0.5):
            pass  # never write the table from half a picture
        last = 0.0
        while not stop.is_set():
            if not self.changed.wait(1.0):
                continue
            wait = last + self.min_sync_period - time.monotonic()
            if wait > 0 and stop.wait(wait):
                return  # coalesce: what changes meanwhile goes into this same sync
            self.changed.clear()
            last = time.monotonic()
            try:
                stats = self.sync()
                log.debug("service proxy synced (%s, %.3fs, %d bytes)", "full" if stats.full else "partial",
                          stats.seconds, stats.script_bytes)
            except Exception as err:
                log.error("service proxy sync failed: %s; retrying in %.0fs", err, RETRY_S)
                if stop.wait(RETRY_S):
                    return
                self.changed.set()
