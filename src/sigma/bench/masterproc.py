"""A real `sigma master` subprocess on a free loopback port: used by the benchmarks and, via
tests/harness.py, by the end-to-end tests (benchmarks ship with the package and must not
import from tests, so the launcher lives here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sigma.lab.netutil import free_port

__all__ = ["BenchMaster", "MasterProcess", "free_port"]


class MasterProcess:
    def __init__(self, workdir: Path, *, port: int | None = None, extra_args: tuple[str, ...] = (),
                 store: str | None = None, anonymous: bool = True, scheme: str = "http") -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.db = workdir / "state.db"
        self.log = workdir / "master.log"
        self.extra_args = extra_args
        self.store = store or f"sqlite://{self.db}"  # e.g. etcd://127.0.0.1:PORT for several masters
        # Anonymous requests act as cluster-admin (loopback only): what benchmarks and most
        # tests want. The tests of authentication itself turn it off.
        self.anonymous = anonymous
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MasterProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> MasterProcess:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sigma", "master", "--listen", f"127.0.0.1:{self.port}",
                 *(["--allow-anonymous-loopback"] if self.anonymous else []),
                 "--store", self.store, *self.extra_args],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        try:
            self.wait_ready(timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sigma master exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0, verify=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"sigma master at {self.url} not ready after {timeout}s:\n{self.log.read_text()}")

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill9()


BenchMaster = MasterProcess
