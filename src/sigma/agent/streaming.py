"""The agent's streaming endpoints, behind the master's pods/exec, pods/attach and
pods/portforward (sigma.api.streaming), on its TLS server (sigma.agent.server: only the
master's client certificate gets here):

    GET /exec/NS/POD/CONTAINER?command=..&stdin=&stdout=&stderr=&tty=   v5/v4.channel.k8s.io
    GET /attach/NS/POD/CONTAINER?stdin=&stdout=&stderr=&tty=            v5/v4.channel.k8s.io
    GET /portforward/NS/POD?ports=..                                   SPDY/3.1+portforward.k8s.io

Each is a WebSocket upgrade served to its end in the request's thread. A pod that is not on
this node, or a container that is not running, is a plain-text 404 the master relays (the
kubelet's `container not found ("NAME")`).

Attach: Sigma's containers do not keep a stdin open, so attach is what the kubelet gives for
a container without `stdin: true`: its output from now on, until it stops or the client
leaves.
"""

from __future__ import annotations

import json
import logging
import os
import select
import threading
from collections.abc import Callable
from typing import Any

from sigma.agent import execstream, logs, portforward
from sigma.agent.runtime.base import RUNNING, ContainerStatus
from sigma.agent.wsconn import WsConn, handshake
from sigma.api import websocket as ws

log = logging.getLogger("sigma.agent.streaming")

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("SPDY/3.1+portforward.k8s.io",)
MAX_SESSIONS = 64  # open exec, attach and port-forward sessions per node
# A session with no byte either way for this long is closed, as kubelet's
# --streaming-connection-idle-timeout (same default) does: a forgotten port-forward or a
# client that went away without a FIN must not hold one of the MAX_SESSIONS for ever.
IDLE_TIMEOUT_S = 4 * 3600.0

PodLookup = Callable[[str, str], "dict[str, Any] | None"]


class Streams:
    def __init__(self, node: Any, find_pod: PodLookup, netns_of: Callable[[str], str | None],
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.node, self.find_pod, self.netns_of = node, find_pod, netns_of
        self.idle_timeout_s = idle_timeout_s
        self.stopping = threading.Event()
        self.sessions = 0  # open now (tests check nothing is left behind)
        self._lock = threading.Lock()

    def stop(self) -> None:
        self.stopping.set()

    def ended(self, conn: WsConn) -> Callable[[], bool]:
        """When a session on ``conn`` must stop: the agent stops, or the session went idle."""
        def check() -> bool:
            if self.stopping.is_set():
                return True
            if conn.idle_for() > self.idle_timeout_s:
                log.info("closing a streaming session idle for %.0fs", conn.idle_for())
                return True
            return False
        return check

    def serve(self, handler: Any, parts: list[str], query: dict[str, list[str]]) -> None:
        kind = parts[0]
        if kind == "portforward" and len(parts) == 3:
            found = self._pod(handler, parts[1], parts[2])
            if found is not None:
                netns, name = self._netns(found), str(found["metadata"]["name"])
                self._session(handler, PORTFORWARD_PROTOCOLS,
                              lambda conn, _: portforward.serve(conn, netns, name, self.ended(conn)))
            return
        if kind not in ("exec", "attach") or len(parts) != 4:
            handler._text(404, f"no such endpoint: /{'/'.join(parts)}\n")
            return
        pod = self._pod(handler, parts[1], parts[2])
        if pod is None:
            return
        container = self._running(pod, parts[3])
        if container is None:
            handler._text(404, f'container not found ("{parts[3]}")\n')
            return
        if kind == "attach":
            self._session(handler, CHANNEL_PROTOCOLS, lambda conn, _: self._attach(conn, pod, parts[3]))
            return
        req = execstream.request_of(query)
        if not req.argv:
            handler._text(400, "you must specify at least 1 command\n")
            return
        runtime = self.node.runtimes.get(container.runtime)
        cdir = os.path.join(getattr(runtime, "dir", ""), container.id)
        try:
            with open(os.path.join(cdir, "spec.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            handler._text(404, f'container not found ("{parts[3]}")\n')
            return
        pid = container.pid or 0

        def run(conn: WsConn, protocol: str) -> None:
            size, early = execstream.first_size(conn) if req.tty else (None, [])
            try:
                running = execstream.start(meta, pid, req, size)
            except OSError as err:
                conn.send(ws.BINARY, bytes([execstream.ERROR]) + json.dumps(execstream.failure(
                    f"failed to exec in container: {err}")).encode())
                conn.close()
                conn.drain()
                return
            execstream.serve(conn, running, req, protocol.startswith("v5."), self.ended(conn), early)

        self._session(handler, CHANNEL_PROTOCOLS, run)

    # -- helpers ------------------------------------------------------------------------------
    def _pod(self, handler: Any, namespace: str, name: str) -> dict[str, Any] | None:
        pod = self.find_pod(namespace, name)
        if pod is None:
            handler._text(404, f'pod "{name}" in namespace "{namespace}" is not on this node\n')
        return pod

    def _running(self, pod: dict[str, Any], name: str) -> ContainerStatus | None:
        uid = pod["metadata"].get("uid", "")
        return next((c for c in self.node.observed() if c.pod_uid == uid and c.name == name and c.state == RUNNING),
                    None)

    def _netns(self, pod: dict[str, Any]) -> str | None:
        return self.netns_of(str(pod["metadata"].get("uid", "")))

    def _session(self, handler: Any, protocols: tuple[str, ...], body: Callable[[WsConn, str], None]) -> None:
        with self._lock:
            full = self.sessions >= MAX_SESSIONS
            if not full:
                self.sessions += 1  # counted before the handshake, so a burst cannot pass the cap
        if full:
            # Each session holds a thread and a process here: a client opening them without
            # end must not exhaust the node. kubectl prints the message.
            handler._text(429, f"too many exec, attach and port-forward sessions on this node ({MAX_SESSIONS})\n")
            return
        try:
            protocol = handshake(handler, protocols)
        except BaseException:
            with self._lock:
                self.sessions -= 1
            raise
        if protocol is None:
            with self._lock:
                self.sessions -= 1
            return
        conn = WsConn(handler.connection)
        try:
            body(conn, protocol)
            conn.finish()
        except Exception:
            log.exception("streaming session failed")
        finally:
            with self._lock:
                self.sessions -= 1

    def _attach(self, conn: WsConn, pod: dict[str, Any], container: str) -> None:
        """The container's output from now on, on the stdout channel."""
        done = threading.Event()
        read_end, write_end = os.pipe()
        uid = pod["metadata"].get("uid", "")

        def running() -> bool:
            return not done.is_set() and any(c.pod_uid == uid and c.name == container and c.state == RUNNING
                                             for c in self.node.observed())

        def pump() -> None:
            try:
                log_dir = self.node._container_log_dir(pod, container)
                for chunk in logs.read_log(log_dir, is_running=running, follow=True, tail_lines=0):
                    os.write(write_end, chunk)
            except OSError:
                pass
            finally:
                os.close(write_end)

        thread = threading.Thread(target=pump, name="agent-attach", daemon=True)
        thread.start()
        try:
            ended = self.ended(conn)
            while not conn.closed and not ended():
                readers: list[Any] = [conn, read_end] if conn.backlog < execstream.MAX_BACKLOG else [conn]
                ready, _, _ = select.select(readers, [conn] if conn.wants_write() else [], [], 0.2)
                if conn in ready and any(m.opcode == ws.CLOSE for m in conn.read()):
                    break
                if read_end in ready:
                    chunk = os.read(read_end, 65536)
                    if not chunk:
                        conn.send(ws.BINARY, bytes([execstream.ERROR]) + json.dumps(
                            execstream.exit_status(0, [])).encode())
                        conn.close()
                        conn.drain()
                        break
                    conn.send(ws.BINARY, bytes([execstream.STDOUT]) + chunk)
                if conn.wants_write():
                    conn.flush()
        finally:
            done.set()
            os.close(read_end)  # the pump's next write fails: it ends with the session
            thread.join(timeout=2)
