"""kubectl exec, attach, port-forward and cp against a real master and agent (real processes,
real HTTP and TLS, kubectl 1.37 speaking WebSocket), and their faults."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as kube
from kubernetes.stream import stream

from sigma.agent import execstream, spdy
from sigma.agent.agent import Agent, AgentOptions
from sigma.agent.podmanager import BackOff
from sigma.api import websocket as ws
from sigma.cli.master import write_kubeconfig
from sigma.client.http import HttpClient
from sigma.lab.netutil import free_port
from tests.agent.conftest import needs_root, wait_for
from tests.api.auth_fixtures import start_auth_master
from tests.harness import MasterProcess

pytestmark = [pytest.mark.e2e, *needs_root]

NODE = "stream-node"
KUBECTL = "kubectl"


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.master = MasterProcess(tmp).start()
        self.client = HttpClient(self.master.url, timeout=10)
        self.kubeconfig = tmp / "kubeconfig"
        write_kubeconfig(self.kubeconfig, self.master.url)
        options = AgentOptions(host="127.0.0.1", port=0, cgroup_root=f"sigma-test-{uuid.uuid4().hex[:8]}",
                               image_dir=str(tmp / "images"), resync_interval=0.3, metrics_interval=0.5,
                               lease_interval=1, node_status_interval=2, backoff=BackOff(base=0.5, cap=2),
                               drain_grace=3)
        self.agent = Agent(self.client, NODE, str(tmp / "agent"), options)
        self.thread = self.agent.start_in_thread()

    def stop(self) -> None:
        try:
            self.agent.stop()
            self.thread.join(timeout=20)
            self.agent.drain()
        finally:
            self.client.close()
            self.master.stop()

    def run_pod(self, name: str, command: list[str], **spec: Any) -> dict[str, Any]:
        self.client.create("pods", {"metadata": {"name": name},
                                    "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1,
                                             "containers": [{"name": "main", "command": command}], **spec}},
                           "default")

        def running() -> dict[str, Any] | None:
            pod = self.client.get("pods", name, "default")
            return pod if (pod.get("status") or {}).get("phase") == "Running" else None

        result: dict[str, Any] = wait_for(running, timeout=30)
        return result

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], capture_output=True, text=True,
                              input=input, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("streaming"))
    try:
        c.run_pod("web", ["sh", "-c", "exec python3 -m http.server 18081 --bind 127.0.0.1"])
        wait_for(lambda: _listening(18081), timeout=30)  # the pod shares the host's network
        yield c
    finally:
        c.stop()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    return proc.communicate(timeout=20)


# -- exec -------------------------------------------------------------------------------------


def test_exec_prints_the_output_of_a_command_in_the_container(cluster: Cluster) -> None:
    done = cluster.kubectl("exec", "web", "--", "cat", "/etc/hostname")
    assert done.returncode == 0, done.stderr
    # A sandboxed process container sees the host's files, read-only.
    assert done.stdout == Path("/etc/hostname").read_text()


def test_exec_exits_with_the_commands_code_and_keeps_stderr_apart(cluster: Cluster) -> None:
    done = cluster.kubectl("exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3
    assert done.stdout == "out\n"
    assert done.stderr == "err\ncommand terminated with exit code 3\n"


def test_a_large_output_arrives_whole_to_its_last_byte(cluster: Cluster) -> None:
    # The session ends with a close handshake on both hops: closing at once would reset the
    # connection and drop what kubectl had received but not yet read.
    done = subprocess.run([KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "exec", "web", "--", "seq", "1",
                           "1000000"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"".join(b"%d\n" % i for i in range(1, 1000001))


def test_the_kubernetes_python_client_execs_too(cluster: Cluster) -> None:
    config = kube.Configuration()
    config.host = cluster.master.url
    with kube.ApiClient(config) as api:
        core = kube.CoreV1Api(api)
        out = stream(core.connect_get_namespaced_pod_exec, "web", "default", command=["sh", "-c", "echo hi"],
                     stderr=True, stdin=False, stdout=True, tty=False)
        assert out == "hi\n"
        failing = stream(core.connect_get_namespaced_pod_exec, "web", "default", command=["sh", "-c", "exit 4"],
                         stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
        failing.run_forever(timeout=30)
        assert failing.returncode == 4


def test_exec_with_stdin_reaches_its_end_of_file(cluster: Cluster) -> None:
    # `tr` ends only when stdin does: v5's close signal carries kubectl's end of file.
    done = cluster.kubectl("exec", "-i", "web", "--", "tr", "a-z", "A-Z", input="hello\nworld\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "HELLO\nWORLD\n"


def test_exec_with_a_terminal_has_its_size_and_passes_keys(cluster: Cluster) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: kubectl on a terminal of 40 rows and 100 columns
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        os.execvp(KUBECTL, [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "exec", "-it", "web", "--",
                            "sh", "-c", "stty size; tty; read x; echo got $x; exit 5"])
    output = bytearray()

    def seen(text: bytes) -> Any:
        def check() -> bool:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    output.extend(os.read(fd, 4096))
            return text in output
        return check

    try:
        wait_for(seen(b"/dev/pts/"), timeout=30)  # the shell waits in `read`
        os.write(fd, b"abc\r")
        wait_for(seen(b"exit code 5"), timeout=30)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert "40 100\r\n" in text and "got abc" in text, text
    assert os.waitstatus_to_exitcode(status) == 5


def test_a_terminal_resized_during_the_session_is_resized_in_the_container(cluster: Cluster) -> None:
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        os.execvp(KUBECTL, [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "exec", "-it", "web", "--",
                            "sh", "-c", "stty size; while read x; do stty size; done"])
    output = bytearray()

    def shows(text: bytes, poke: bool = False) -> Any:
        def check() -> bool:
            if poke:
                os.write(fd, b"\r")  # another `stty size`, until the new size shows
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    output.extend(os.read(fd, 4096))
            return text in output
        return check

    try:
        wait_for(shows(b"40 100\r\n"), timeout=30)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))  # kubectl gets SIGWINCH
        wait_for(shows(b"50 120\r\n", poke=True), timeout=30)
        os.write(fd, b"\x04")  # end of file: the loop ends, and the shell with it
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, output.decode(errors="replace")


def test_a_client_that_goes_away_leaves_no_process_behind(cluster: Cluster) -> None:
    marker = str(4000 + os.getpid() % 1000)
    proc = cluster.popen("exec", "web", "--", "sleep", marker)
    try:
        wait_for(lambda: _processes(["sleep", marker]), timeout=30)
        wait_for(lambda: cluster.agent.streams.sessions == 1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no goodbye: the connection just drops
        proc.wait(timeout=10)
    wait_for(lambda: not _processes(["sleep", marker]), timeout=30)
    wait_for(lambda: cluster.agent.streams.sessions == 0, timeout=30)
    wait_for(lambda: not _threads_in(execstream.serve), timeout=30)  # no session thread left either


def _threads_in(function: Any) -> list[int]:
    """The threads whose stack runs ``function`` now."""
    return [ident for ident, frame in sys._current_frames().items()
            if any(f.f_code is function.__code__ for f, _ in traceback.walk_stack(frame))]


def test_exec_into_a_privileged_process_container_runs_through_nsenter(cluster: Cluster) -> None:
    cluster.client.create("namespaces", {"metadata": {"name": "priv", "labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}})
    cluster.client.create("pods", {"metadata": {"name": "host"}, "spec": {
        "nodeName": NODE, "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "command": ["sleep", "600"], "securityContext": {"privileged": True}}]}},
        "priv")
    wait_for(lambda: (cluster.client.get("pods", "host", "priv").get("status") or {}).get("phase") == "Running",
             timeout=30)
    done = cluster.kubectl("exec", "-n", "priv", "-i", "host", "--", "sh", "-c", "cat; exit 7", input="through\n")
    assert (done.returncode, done.stdout) == (7, "through\n"), done.stderr


def _processes(argv: list[str]) -> list[int]:
    wanted = ("\0".join(argv) + "\0").encode()
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == wanted:
                    found.append(int(pid))
            except OSError:
                continue
    return found


# -- cp ---------------------------------------------------------------------------------------


def test_cp_both_ways(cluster: Cluster, tmp_path: Path) -> None:
    up = tmp_path / "up.bin"
    content = os.urandom(4 << 20)  # binary, and larger than any buffer on the way
    up.write_bytes(content)
    done = cluster.kubectl("cp", str(up), "web:/tmp/sigma-cp-up.bin")
    assert done.returncode == 0, done.stderr
    listed = cluster.kubectl("exec", "web", "--", "wc", "-c", "/tmp/sigma-cp-up.bin")
    assert listed.stdout.split()[0] == str(len(content))
    down = tmp_path / "down.bin"
    done = cluster.kubectl("cp", "web:/tmp/sigma-cp-up.bin", str(down))
    assert done.returncode == 0, done.stderr
    assert down.read_bytes() == content
    cluster.kubectl("exec", "web", "--", "rm", "-f", "/tmp/sigma-cp-up.bin")


def test_cp_of_a_path_the_container_does_not_have_fails(cluster: Cluster, tmp_path: Path) -> None:
    done = cluster.kubectl("cp", "web:/no/such/sigma/file", str(tmp_path / "x"))
    # kubectl cp stops reading once the (empty) archive has ended, racing tar's complaint and
    # exit code (with Kubernetes too): what is certain is that nothing is written here...
    assert not (tmp_path / "x").exists()
    # What it prints, if anything, is tar's own complaint, cut short at any line.
    said = (done.stdout + done.stderr).splitlines()
    assert all(line.startswith("tar: ") for line in said), said
    # ...and what kubectl cp runs fails in the container, with the reason on stderr.
    tar = cluster.kubectl("exec", "web", "--", "tar", "cf", "-", "/no/such/sigma/file")
    assert tar.returncode == 2
    assert "/no/such/sigma/file: Cannot stat: No such file or directory" in tar.stderr


# -- port-forward -----------------------------------------------------------------------------


def test_port_forward_carries_http_to_the_pods_port(cluster: Cluster) -> None:
    local = free_port()
    proc = cluster.popen("port-forward", "pod/web", f"{local}:18081")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"Forwarding from 127.0.0.1:{local} -> 18081")
        for _ in range(3):  # one connection after the other through the same session
            response = httpx.get(f"http://127.0.0.1:{local}/", timeout=10)
            assert response.status_code == 200 and "Directory listing" in response.text
    finally:
        stop(proc)


def test_port_forward_to_a_service_reaches_a_pod_it_selects(cluster: Cluster) -> None:
    # kubectl picks a pod of the Service's selector and the port its targetPort names.
    cluster.client.patch("pods", "web", {"metadata": {"labels": {"app": "web-pf"}}}, "default")
    cluster.client.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-pf"},
                                       "spec": {"selector": {"app": "web-pf"},
                                                "ports": [{"port": 80, "targetPort": 18081}]}}, "default")
    local = free_port()
    proc = cluster.popen("port-forward", "svc/web-pf", f"{local}:80")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"Forwarding from 127.0.0.1:{local} -> 18081")
        response = httpx.get(f"http://127.0.0.1:{local}/", timeout=10)
        assert response.status_code == 200 and "Directory listing" in response.text
    finally:
        stop(proc)


def test_port_forward_to_a_closed_port_reports_the_error(cluster: Cluster) -> None:
    local = free_port()
    proc = cluster.popen("port-forward", "pod/web", f"{local}:18099")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"Forwarding from 127.0.0.1:{local}")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{local}/", timeout=10)
        proc.wait(timeout=30)  # kubectl 1.37 ends a forward on a stream error (with Kubernetes too)
    finally:
        _, err = stop(proc)
    assert "error forwarding port 18099 to pod web" in err and "Connection refused" in err, err
    assert "lost connection to pod" in err


# -- attach -----------------------------------------------------------------------------------


def test_attach_streams_the_containers_output_from_now_on(cluster: Cluster) -> None:
    cluster.run_pod("ticker", ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"])
    proc = cluster.popen("attach", "ticker")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("tick "), line
    finally:
        stop(proc)
    wait_for(lambda: cluster.agent.streams.sessions == 0, timeout=30)


# -- faults -----------------------------------------------------------------------------------


def test_exec_into_a_pod_that_does_not_run_says_container_not_found(cluster: Cluster) -> None:
    cluster.client.create("pods", {"metadata": {"name": "nowhere"},
                                   "spec": {"nodeName": "no-such-node",
                                            "containers": [{"name": "main", "command": ["true"]}]}}, "default")
    done = cluster.kubectl("exec", "nowhere", "--", "true")
    assert done.returncode == 1
    assert 'unable to upgrade connection: container not found ("main")' in done.stderr, done.stderr


def test_exec_on_a_node_whose_agent_cannot_be_reached_says_so(cluster: Cluster) -> None:
    cluster.client.create("nodes", {"metadata": {"name": "ghost", "annotations": {
        "sigma.io/serving-cert-sha256": "0" * 64}}})
    cluster.client.patch("nodes", "ghost", {"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": free_port()}}}}, subresource="status")
    cluster.client.create("pods", {"metadata": {"name": "ghosted"}, "spec": {
        "nodeName": "ghost", "containers": [{"name": "main", "command": ["true"]}]}}, "default")
    cluster.client.patch("pods", "ghosted", {"status": {"phase": "Running", "containerStatuses": [
        {"name": "main", "ready": True, "restartCount": 0, "image": "", "imageID": "",
         "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}}, "default", subresource="status")
    done = cluster.kubectl("exec", "ghosted", "--", "true")
    assert done.returncode == 1
    assert "node ghost has an unreachable agent" in done.stderr, done.stderr


def test_plain_requests_get_kubernetes_answers(cluster: Cluster) -> None:
    base = f"{cluster.master.url}/api/v1/namespaces/default/pods/web"
    headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
    unknown = httpx.post(f"{base}/exec?container=nope&command=true&stdout=true", headers=headers, timeout=10)
    assert unknown.status_code == 400
    assert unknown.json()["message"] == "container nope is not valid for pod web"
    spdy = httpx.post(f"{base}/exec?command=true&stdout=true", headers=headers, timeout=10)
    assert spdy.status_code == 400 and "WebSocket" in spdy.json()["message"]
    no_command = httpx.post(f"{base}/exec?stdout=true", headers=headers, timeout=10)
    assert no_command.json()["message"] == "you must specify at least 1 command"
    missing = httpx.post(f"{cluster.master.url}/api/v1/namespaces/default/pods/absent/exec?command=true",
                         headers=headers, timeout=10)
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"


# -- authorisation ----------------------------------------------------------------------------


def test_a_viewer_may_not_exec_and_an_editor_is_audited(tmp_path: Path) -> None:
    with contextlib.contextmanager(start_auth_master)(tmp_path / "auth", "--tls", "on", scheme="https") as master:
        admin = master.client("admin", verify=False)
        admin.post("/api/v1/namespaces", json={"metadata": {"name": "team-a"}})
        r = admin.post("/api/v1/namespaces/team-a/pods", json={"metadata": {"name": "p"}, "spec": {
            "nodeName": "absent", "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "60"]}]}})
        assert r.status_code == 201, r.text
        viewer = _kubectl_as(master.url, "viewer", tmp_path, "exec", "p", "--", "true")
        assert viewer.returncode == 1
        assert 'User "bob" cannot create resource "pods/exec" in API group "" in the namespace "team-a"' \
            in viewer.stderr, viewer.stderr
        editor = _kubectl_as(master.url, "editor", tmp_path, "exec", "p", "--", "true")
        assert editor.returncode == 1  # allowed; refused only because no agent runs the pod
        assert 'container not found ("main")' in editor.stderr, editor.stderr
    audit = tmp_path / "auth" / "audit.log"
    entries = [e for e in map(json.loads, audit.read_text().splitlines()) if e["subresource"] == "exec"]
    # The WebSocket attempt (GET) and kubectl's SPDY fallback (POST), both authorised as create.
    assert {(e["user"], e["verb"], e["code"]) for e in entries} == {("bob", "create", 403), ("carol", "create", 404)}


def _kubectl_as(url: str, who: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # (kubectl sends a bearer token only over TLS)
    return subprocess.run([KUBECTL, "--server", url, "--token", f"{who}-token", "--insecure-skip-tls-verify",
                           "-n", "team-a", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KUBECONFIG": str(tmp / "none")})


def test_a_port_forward_session_outlives_a_port_that_refuses(cluster: Cluster) -> None:
    """kubectl ends itself on the first stream error; the session it leaves is still good, as
    a SPDY client of our own shows: a refused port, then a working one, on one connection."""
    port = int(cluster.master.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        key = ws.new_key()
        sock.sendall((f"GET /api/v1/namespaces/default/pods/web/portforward HTTP/1.1\r\nHost: x\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n\r\n"
                      ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101") and b"SPDY/3.1+portforward.k8s.io" in head, head
        writer, reader, frames = spdy.Writer(), spdy.Reader(), ws.FrameReader(expect_masked=False)
        got: list[spdy.Frame] = []

        def send(frame: bytes) -> None:
            sock.sendall(ws.encode(ws.BINARY, frame, mask=True))

        def until(check: Any) -> list[spdy.Frame]:
            while not check(got):
                for message in frames.feed(sock.recv(65536)):
                    got.extend(reader.feed(message.data))
            return got

        for request, remote in (("0", 18099), ("1", 18081)):
            error_sid, data_sid = 1 + 4 * int(request), 3 + 4 * int(request)
            send(writer.syn_stream(error_sid, {"streamType": "error", "port": str(remote), "requestID": request}))
            send(writer.syn_stream(data_sid, {"streamType": "data", "port": str(remote), "requestID": request}))
            if remote == 18081:
                send(writer.data(data_sid, b"GET / HTTP/1.0\r\n\r\n", fin=True))

            def done(frames: list[spdy.Frame], sid: int = data_sid) -> bool:
                return any(f.kind == 0 and f.stream_id == sid and f.fin for f in frames)

            until(done)
        replies = {f.stream_id for f in got if f.kind == spdy.SYN_REPLY}
        assert replies == {1, 3, 5, 7}
        refused = b"".join(f.data for f in got if f.kind == 0 and f.stream_id == 1)
        assert b"error forwarding port 18099 to pod web" in refused and b"Connection refused" in refused
        answer = b"".join(f.data for f in got if f.kind == 0 and f.stream_id == 7)
        assert answer.startswith(b"HTTP/1.0 200") and b"Directory listing" in answer
    finally:
        sock.close()
    wait_for(lambda: cluster.agent.streams.sessions == 0, timeout=30)
