"""Start and stop a single-member etcd (Debian's etcd-server) for `sigma up --store etcd`,
the tests and the benchmarks. Loopback only by default; the data lives in ``data_dir``, so
a stopped server started again on the same directory and ports has every key back.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from sigma.lab.netutil import free_port

ETCD_BINARY = "/usr/bin/etcd"
# etcd sends an idle watch stream a progress notification this often, so that the watch's
# idle timeout (etcd_watch.IDLE_TIMEOUT_S, three of these) only fires on a dead stream.
PROGRESS_NOTIFY_S = 5
GOGC = "400"


def etcd_binary() -> str | None:
    """The etcd executable, or None when it is not installed."""
    if os.access(ETCD_BINARY, os.X_OK):
        return ETCD_BINARY
    return shutil.which("etcd")


def _etcd_env() -> dict[str, str]:
    # etcd allocates a lot per request; with Go's default GOGC=100 the collector took about
    # a tenth of its CPU under Sigma's load (measured when Sigma still spoke etcd's JSON
    # gateway). A larger heap target (tens of MB here) trades memory for that. A GOGC
    # already set wins.
    return {**os.environ, "GOGC": os.environ.get("GOGC", GOGC)}


class EtcdServer:
    def __init__(self, data_dir: Path, host: str = "127.0.0.1", client_port: int | None = None,
                 peer_port: int | None = None, netns: str | None = None) -> None:
        self.data_dir = data_dir
        self.host = host
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.netns = netns  # run inside `ip netns exec NAME` (the multi-host test harness)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def url(self) -> str:
        return f"etcd://{self.endpoint}"

    def start(self, timeout: float = 20.0) -> EtcdServer:
        binary = etcd_binary()
        if binary is None:
            raise RuntimeError("etcd is not installed (apt-get install etcd-server)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        client = f"http://{self.host}:{self.client_port}"
        peer = f"http://{self.host}:{self.peer_port}"
        cmd = [binary, "--name", "sigma", "--data-dir", str(self.data_dir / "data"),
               "--listen-client-urls", client, "--advertise-client-urls", client,
               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
               "--initial-cluster", f"sigma={peer}",
               # One member on one machine: a short election timeout makes start-up quick.
               "--heartbeat-interval", "50", "--election-timeout", "250",
               "--experimental-watch-progress-notify-interval", f"{PROGRESS_NOTIFY_S}s"]
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        with open(self.data_dir / "etcd.log", "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_etcd_env(),
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready(client, timeout)
        return self

    def _wait_ready(self, client: str, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.data_dir / "etcd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"etcd exited with {self.process.returncode}:\n{log}")
            if self._answers(client):
                return
            time.sleep(0.03)
        raise RuntimeError(f"etcd at {client} not ready after {timeout}s")

    def _answers(self, client: str) -> bool:
        if self.netns is not None:
            # Our own process lives outside the namespace: ask from inside it.
            probe = ["ip", "netns", "exec", self.netns, "curl", "-sf", "-m", "1", "-XPOST",
                     f"{client}/v3/kv/range", "-d", '{"key":"AA=="}']
            return subprocess.run(probe, capture_output=True).returncode == 0
        try:
            return httpx.post(f"{client}/v3/kv/range", json={"key": "AA=="}, timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> EtcdServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
