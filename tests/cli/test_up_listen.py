"""`sigma up`, `sigma master` and `sigma agent` at start: a port asked for that is taken is
refused with the port and the flag to change (never a traceback), a taken default gives way
to a free port, a state directory in use is refused, and `--listen` serves where it says,
with a certificate that names the address."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from sigma.cli.master import DEFAULT_API_PORT, _listener, split_address
from sigma.ports import port_free
from sigma.statelock import lock_master_state

SIGMA = [sys.executable, "-m", "sigma"]


@pytest.fixture
def taken() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SIGMA_")}
    return subprocess.run([*SIGMA, *args], capture_output=True, text=True, timeout=timeout, env=environ)


def refused(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in out.stderr, out.stderr


def test_split_address() -> None:
    assert split_address("127.0.0.2") == ("127.0.0.2", None)
    assert split_address("0.0.0.0:7443") == ("0.0.0.0", 7443)
    assert split_address("::1") == ("::1", None)
    assert split_address("[::1]:7443") == ("::1", 7443)
    for bad in ("", "host:port", "[::1"):
        with pytest.raises(SystemExit):
            split_address(bad)


def test_a_taken_default_api_port_gives_way(taken: int) -> None:
    holder = None
    if port_free("127.0.0.1", DEFAULT_API_PORT):  # else something holds it already: same case
        holder = socket.socket()
        holder.bind(("127.0.0.1", DEFAULT_API_PORT))
        holder.listen()
    try:
        sock, note = _listener("127.0.0.1", None)
        with sock:
            assert sock.getsockname()[1] != DEFAULT_API_PORT
            assert f"port {DEFAULT_API_PORT} is taken" in note and "--port" in note
        with pytest.raises(SystemExit, match=f"port {taken} is already in use.*--port"):
            _listener("127.0.0.1", taken)  # asked for: refused, not moved
    finally:
        if holder is not None:
            holder.close()


@pytest.mark.e2e
def test_ports_asked_for_and_taken_are_refused_at_start(taken: int, tmp_path: Path) -> None:
    up = run("up", "--no-agent", "--no-demo", "--state-dir", str(tmp_path / "up"), "--port", str(taken))
    refused(up, f"port {taken} is already in use", "--port")
    assert not (tmp_path / "up" / "kubeconfig").exists()
    master = run("master", "--listen", f"127.0.0.1:{taken}", "--store", f"sqlite:///{tmp_path / 'm' / 'state.db'}")
    refused(master, f"port {taken} is already in use", "--listen")
    agent = ["agent", "--master", "http://127.0.0.1:9", "--state-dir", str(tmp_path / "agent"), "--node-name", "n"]
    refused(run(*agent, "--listen", f"127.0.0.1:{taken}"), f"port {taken} is already in use", "--listen")
    refused(run(*agent, "--listen", "127.0.0.1:0", "--p2p-port", str(taken)), f"port {taken}", "--p2p-port")


@pytest.mark.e2e
def test_a_second_sigma_up_on_one_state_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    lock = lock_master_state(state, "sigma up", "--state-dir DIR")  # what a running `sigma up` holds
    try:
        out = run("up", "--no-agent", "--no-demo", "--state-dir", str(state), "--port", "0")
        refused(out, f"{state} is in use by another Sigma (pid {os.getpid()}, sigma up)", "--state-dir")
        master = run("master", "--listen", "127.0.0.1:0", "--store", f"sqlite:///{state / 'state.db'}")
        refused(master, "is in use by another Sigma")
    finally:
        os.close(lock)


def loopback_alias_works(host: str) -> bool:
    try:
        with socket.socket() as sock:
            sock.bind((host, 0))
        return True
    except OSError:
        return False


@pytest.mark.e2e
@pytest.mark.skipif(not loopback_alias_works("127.0.0.2"), reason="127.0.0.2 is not bindable here")
def test_listen_serves_on_the_address_with_a_certificate_naming_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*SIGMA, "up", "--no-agent", "--no-demo", "--state-dir", str(state),
                                 "--listen", "127.0.0.2", "--port", "0"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while "Sigma is up" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        banner = log.read_text()
        assert "Sigma is up on https://127.0.0.2:" in banner, banner
        port = int(banner.split("https://127.0.0.2:", 1)[1].split()[0])
        server = yaml.safe_load((state / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"]
        assert server == f"https://127.0.0.2:{port}"
        # The address it was told, not every address: loopback's 127.0.0.1 has nothing there.
        assert port_free("127.0.0.1", port)
        pem = ssl.get_server_certificate(("127.0.0.2", port))
        san = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.2") in san.get_values_for_type(x509.IPAddress)
        got = run("get", "namespaces", "--kubeconfig", str(state / "kubeconfig"), timeout=60)
        assert got.returncode == 0 and "default" in got.stdout, got.stdout + got.stderr  # TLS verified
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
