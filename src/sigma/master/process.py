"""The master process: store, registry, API server and the controllers, wired together.

``Master`` is what `sigma master` and `sigma up` run. The controllers and schedulers it
starts are listed in sigma.master.wiring; each runs in its own thread and stops with the
master.

On SQLite the master is alone and always runs its controllers. On etcd several masters
serve the API and only the elected leader runs controllers (sigma.master.leader): the
elector starts them when this master wins and stops them when it loses, and their writes go
through a store fenced by the term of leadership, so a deposed leader's writes are refused.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.routing import Mount

from sigma.api import admission, runtimeclass_kinds, service_kinds
from sigma.api.auth import AuthOptions, build_auth
from sigma.api.encrypted_store import EncryptedStore, reencrypt
from sigma.api.encryption import master_keyring, master_state_dir
from sigma.api.errors import ApiError
from sigma.api.limits import LimitedHttpToolsProtocol
from sigma.api.registry import Registry
from sigma.api.registry_bulk import owner_index
from sigma.api.satoken_auth import attach as attach_token_signer
from sigma.api.satokens import Signer
from sigma.api.server import create_app
from sigma.api.service_network import ServiceNetwork
from sigma.api.ws_asgi import WebSocketProtocol
from sigma.client.local import LocalClient
from sigma.master import nodelease, wiring
from sigma.master.wiring import Controller
from sigma.p2p.tracker import DEFAULT_SOURCE_CLAIMS, TrackerState, tracker_router
from sigma.store.contract import Store, StoreError, open_store
from sigma.store.etcd import EtcdStore, Fenced
from sigma.ui import routes as ui_routes

log = logging.getLogger("sigma.master")

COMPACT_EVERY_S = 60.0
# The watch history kept by default (revisions): a watch resuming from further back gets
# 410 Gone and re-lists. `sigma master --watch-history N` changes it.
KEEP_REVISIONS = 50_000


STORE_THREADS = 8  # registry calls a master on etcd keeps in flight at once


class _Server(uvicorn.Server):
    """uvicorn's server, ending the API's watch streams as shutdown begins: otherwise the
    graceful shutdown waits for streams that only end at their timeout."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: Any = None) -> None:
        self._on_shutdown()
        await super().shutdown(sockets)


@dataclass
class Master:
    store_url: str
    host: str = "127.0.0.1"
    port: int = 6443
    controllers: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    # Authentication, authorisation, TLS and audit (sigma.api.auth); None: no checks at all,
    # for masters embedded in tests that only talk to themselves.
    auth: AuthOptions | None = None
    # How many revisions of history the compactor keeps for watches to resume from.
    watch_history: int = KEEP_REVISIONS

    def __post_init__(self) -> None:
        if self.watch_history < 1:
            raise ValueError(f"the watch history must keep at least 1 revision, not {self.watch_history}")
        self.store: Store = open_store(self.store_url)
        # Secrets are encrypted below the registry (sigma.api.encrypted_store); a rotated key
        # takes effect here, every Secret under an older key rewritten with the new one.
        self.key_dir = master_state_dir(self.store_url, self.auth.state_dir if self.auth is not None else None)
        self.keyring = master_keyring(self.key_dir)
        reencrypt(self.store, self.keyring)
        self.registry = Registry(EncryptedStore(self.store, self.keyring))
        admission.install(self.registry, self.options)
        nodelease.install(self.registry)  # one live agent per node
        admission.bootstrap(self.registry)
        runtimeclass_kinds.bootstrap(self.registry)  # runc, crun, runsc, lxc, process
        service_kinds.bootstrap(self.registry, ServiceNetwork.from_options(self.options), self.host, self.port)
        owner_index(self.registry.store)  # dependents by lookup: a delete never reads every stored object
        attach_token_signer(self.registry, Signer.load(self.key_dir))  # ServiceAccount tokens
        self.auth_setup = build_auth(self.auth, self.registry) if self.auth is not None else None
        if self.auth_setup is not None:  # the kube-root-ca.crt ConfigMap of every namespace
            self.options.setdefault("root_ca_pem", self.auth_setup.ca.cert.read_text())
        remote_store = isinstance(self.store, EtcdStore)
        policy = self.auth_setup.policy if self.auth_setup is not None else None
        self.app = create_app(self.registry, f"{self.host}:{self.port}", self.auth_setup,
                              store_threads=STORE_THREADS if remote_store else 0,
                              extra_routes=ui_routes(self.registry, policy))
        # The P2P tracker for the agents' image pulls, ahead of the API's catch-all route.
        # Its state is in memory only: after a restart agents re-announce as they pull.
        tracker = TrackerState(max_claims=int(self.options.get("p2p_source_claims", DEFAULT_SOURCE_CLAIMS)))
        # With authentication on, only node identities (each for its own peers) and
        # system:masters may use it.
        p2p = tracker_router(tracker, require_identity=self.auth is not None, node_addresses=self._node_addresses)
        self.app.router.routes.insert(0, Mount("/p2p", app=p2p))
        self.stop = threading.Event()
        # Set when the controllers of the current term must stop (master stop or lost leadership).
        self._term_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None
        self.elector: Any = None  # sigma.master.leader.Elector on etcd

    def _node_addresses(self, node: str) -> list[str]:
        """The addresses in a Node's status (where the P2P tracker lets its peer be)."""
        try:
            obj = LocalClient(self.registry).get("nodes", node)
        except ApiError:
            return []
        return [str(a.get("address")) for a in (obj.get("status") or {}).get("addresses") or [] if a.get("address")]

    def start_controllers(self, store: Store | None = None) -> None:
        """Start the controllers; with ``store`` (a fenced view of self.store), they write
        through it, while sharing the API registry's admission hooks."""
        registry = self.registry
        if store is not None:
            registry = copy.copy(self.registry)  # shallow: same hooks and lock, other store
            registry.store = EncryptedStore(store, self.keyring)
        self._term_stop = threading.Event()
        client = LocalClient(registry)
        for ctrl in wiring.controllers(client, self.options) if self.controllers else []:
            thread = threading.Thread(target=self._run_controller, args=(ctrl, self._term_stop), name=ctrl.name,
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        compactor = threading.Thread(target=self._compact_loop, args=(self._term_stop,), name="compactor",
                                     daemon=True)
        compactor.start()
        self._threads.append(compactor)

    def stop_controllers(self, timeout: float = 3.0) -> None:
        """Stop every controller; one deadline for all of them (they stop together, and the
        threads are daemons: one stuck in a long call must not hold the master's exit)."""
        self._term_stop.set()
        threads, self._threads = self._threads, []
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            log.warning("controllers still busy at shutdown (left to exit with the process): %s", ", ".join(stuck))

    def _run_controller(self, ctrl: Controller, stop: threading.Event) -> None:
        # A controller that crashes is restarted after a pause: one bug must not stop the rest.
        while not stop.is_set():
            try:
                ctrl.run(stop)
            except Fenced as err:
                log.warning("controller %s: %s; waiting for the elector to stop it", ctrl.name, err)
                stop.wait(1.0)
            except Exception:
                log.exception("controller %s failed; restarting in 1s", ctrl.name)
                stop.wait(1.0)

    def _compact_loop(self, stop: threading.Event) -> None:
        # Option compact_every_s: how often history beyond watch_history is dropped.
        while not stop.wait(float(self.options.get("compact_every_s", COMPACT_EVERY_S))):
            try:
                target = self.store.current_revision() - self.watch_history
                if target > self.store.compacted_revision():
                    self.store.compact(target)
            except StoreError as err:  # a full disk, etcd away: try again next round
                log.warning("compaction failed: %s", err)

    def serve(self, on_ready: Callable[[], None] | None = None,
              on_stopping: Callable[[], None] | None = None, sockets: list[socket.socket] | None = None) -> None:
        """Run the API server in this thread until stopped (Ctrl-C or shutdown()).
        ``on_stopping`` is called as soon as the server begins to stop (`sigma up` tells its
        agent then, so the pods' grace periods run while the master winds down). ``sockets``:
        listeners bound already (sigma.ports.bind_tcp), so a taken port was refused before
        anything started; default: uvicorn binds host:port itself."""
        if self.controllers and isinstance(self.store, EtcdStore):
            from sigma.master.leader import Elector

            self.elector = Elector(self.store, f"http://{self.host}:{self.port}",
                                   on_elected=self.start_controllers, on_deposed=self.stop_controllers)
            self.elector.start()
        else:
            self.start_controllers()
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                                access_log=False, lifespan="off", timeout_graceful_shutdown=1,
                                # Clients connect directly: no proxy may rewrite the source
                                # address the audit log and rate limits key on.
                                proxy_headers=False,
                                # kubectl exec/attach/port-forward (sigma.api.ws_asgi: no websockets package).
                                ws=WebSocketProtocol,
                                # TLS brings its own protocol class (a LimitedHttpToolsProtocol too).
                                **{"http": LimitedHttpToolsProtocol,
                                   **(self.auth_setup.uvicorn_options() if self.auth_setup is not None else {})})
        def stopping() -> None:
            self.app.state.api.close_streams()
            if on_stopping is not None:
                on_stopping()

        self._server = _Server(config, on_shutdown=stopping)
        if on_ready is not None:
            threading.Thread(target=self._notify_ready, args=(on_ready,), daemon=True).start()
        try:
            self._server.run(sockets=sockets)
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
        if self.elector is not None:
            self.elector.stop()  # revokes the lease: another master takes over at once
        self.stop_controllers()
        self.store.close()
        if self.auth_setup is not None and self.auth_setup.policy.audit is not None:
            self.auth_setup.policy.audit.close()  # the lines of the last flush interval
