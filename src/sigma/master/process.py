"""The master process: store, registry, API server and the controllers, wired together.

``Master`` is what `sigma master` and `sigma up` run. Controllers are registered as
factories taking a LocalClient; each runs in its own thread and stops with the master.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import uvicorn

from sigma.api import admission
from sigma.api.registry import Registry
from sigma.api.server import create_app
from sigma.client.local import LocalClient
from sigma.store.contract import Store, open_store

log = logging.getLogger("sigma.master")

COMPACT_EVERY_S = 60.0
KEEP_REVISIONS = 50_000


class Controller(Protocol):
    name: str

    def run(self, stop: threading.Event) -> None: ...


ControllerFactory = Callable[[LocalClient], Controller]
# Every factory is kept as one taking (client, Master.options).
CONTROLLER_FACTORIES: list[Callable[[LocalClient, dict[str, Any]], Controller]] = []


def register_controller(factory: ControllerFactory) -> None:
    CONTROLLER_FACTORIES.append(lambda client, _options: factory(client))


def register_configurable_controller(factory: Callable[[LocalClient, dict[str, Any]], Controller]) -> None:
    """A controller whose factory also reads Master.options (timeouts and periods, e.g.
    ``Master(url, options={"node_grace_s": 2, "pod_eviction_timeout_s": 3})``)."""
    CONTROLLER_FACTORIES.append(factory)


@dataclass
class Master:
    store_url: str
    host: str = "127.0.0.1"
    port: int = 6443
    controllers: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store: Store = open_store(self.store_url)
        self.registry = Registry(self.store)
        admission.install(self.registry)
        admission.bootstrap(self.registry)
        self.app = create_app(self.registry, f"{self.host}:{self.port}")
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None

    def start_controllers(self) -> None:
        from sigma.master import controllers  # noqa: F401  (registers the built-in controllers)

        client = LocalClient(self.registry)
        for factory in CONTROLLER_FACTORIES if self.controllers else []:
            ctrl = factory(client, self.options)
            thread = threading.Thread(target=self._run_controller, args=(ctrl,), name=ctrl.name, daemon=True)
            thread.start()
            self._threads.append(thread)
        compactor = threading.Thread(target=self._compact_loop, name="compactor", daemon=True)
        compactor.start()
        self._threads.append(compactor)

    def _run_controller(self, ctrl: Controller) -> None:
        # A controller that crashes is restarted after a pause: one bug must not stop the rest.
        while not self.stop.is_set():
            try:
                ctrl.run(self.stop)
            except Exception:
                log.exception("controller %s failed; restarting in 1s", ctrl.name)
                self.stop.wait(1.0)

    def _compact_loop(self) -> None:
        while not self.stop.wait(COMPACT_EVERY_S):
            target = self.store.current_revision() - KEEP_REVISIONS
            if target > self.store.compacted_revision():
                self.store.compact(target)

    def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run the API server in this thread until stopped (Ctrl-C or shutdown())."""
        self.start_controllers()
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                access_log=False, lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        if on_ready is not None:
            threading.Thread(target=self._notify_ready, args=(on_ready,), daemon=True).start()
        try:
            self._server.run()
        finally:
            self.shutdown()

    def _notify_ready(self, on_ready: Callable[[], None]) -> None:
        while self._server is not None and not self._server.started and not self.stop.is_set():
            time.sleep(0.02)
        if not self.stop.is_set():
            on_ready()

    def shutdown(self) -> None:
        if self.stop.is_set():
            return
        self.stop.set()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=3)
        self.store.close()
