"""The probe handlers: httpGet, tcpSocket and exec, as kubelet runs them (pkg/probe).

Each returns a Result: success, a message for the Unhealthy Event, and a warning (a
redirect to another host). Network probes run in the pod's network namespace when it has
one (netns.py): never from the host's then.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sigma.agent.probes.netns import in_netns
from sigma.agent.probes.policy import Probe

USER_AGENT = "kube-probe/1.30"  # what servers see from kubelet; some answer probes by it
MAX_BODY = 10 * 1024  # kubelet reads at most 10 KiB of a probe's answer
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class Result:
    ok: bool
    message: str = ""  # why it failed (the Event's text after "<Kind> probe failed: ")
    warning: str = ""  # succeeded, but worth an Event (a redirect kubelet did not follow)


@dataclass(frozen=True)
class Target:
    """Where a container's network probes go: its pod IP (or 127.0.0.1), its named ports
    and its network namespace (None: the host's)."""

    host: str
    ports: Mapping[str, int]
    netns_path: str | None = None


# exec runs through the runtime: (argv, timeout seconds) -> (exit code, output).
Exec = Callable[[list[str], float], tuple[int, str]]


def resolve_port(port: Any, ports: Mapping[str, int]) -> int:
    """A probe's port: a number, a numeric string, or the name of a container port."""
    if isinstance(port, int) and not isinstance(port, bool):
        value = port
    elif isinstance(port, str) and port.isdigit():
        value = int(port)
    elif isinstance(port, str) and port in ports:
        value = ports[port]
    else:
        raise ValueError(f"port {port!r} is not a container port of this container")
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is out of range 1-65535")
    return value


def run(probe: Probe, target: Target, exec_in: Exec | None = None) -> Result:
    """Run one probe; every failure, including a bad spec, is a failed Result."""
    try:
        if probe.handler == "exec":
            if exec_in is None:
                return Result(False, "exec probes are not supported by this runtime")
            return exec_probe(probe, exec_in)
        if probe.handler == "grpc":
            return Result(False, "grpc probes are not supported by Sigma")
        port = resolve_port(probe.action.get("port"), target.ports)
        host = str(probe.action.get("host") or target.host)
        if probe.handler == "tcpSocket":
            return in_netns(target.netns_path, lambda: tcp_probe(host, port, probe.timeout), probe.timeout + 1)
        return in_netns(target.netns_path, lambda: http_probe(probe.action, host, port, probe.timeout),
                        probe.timeout + 1)
    except (OSError, ValueError) as err:
        return Result(False, str(err))


def tcp_probe(host: str, port: int, timeout: float) -> Result:
    """Success when a TCP connection opens within the timeout; it is closed at once."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return Result(True)
    except TimeoutError:
        return Result(False, f"dial tcp {_join(host, port)}: i/o timeout")
    except OSError as err:
        return Result(False, f"dial tcp {_join(host, port)}: connect: {err.strerror or err}")


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def http_probe(action: Mapping[str, Any], host: str, port: int, timeout: float) -> Result:
    """GET scheme://host:port/path with the probe's headers. 200 <= code < 400 succeeds.
    Redirects to the same host are followed; one to another host is not, and counts as a
    success with a warning (kubelet's rule). HTTPS certificates are not verified (kubelet
    does not either: the pod's certificate is for its clients, not for the node)."""
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in action.get("httpHeaders") or []:
        if isinstance(h, Mapping) and h.get("name"):
            headers[str(h["name"])] = str(h.get("value", ""))
    if "Host" not in headers and "host" not in {k.lower() for k in headers}:
        headers["Host"] = _join(host, port) if port not in (80, 443) else host
    url = f"{scheme}://{_join(host, port)}{path}"
    for _ in range(MAX_REDIRECTS + 1):
        try:
            code, location, body = _get(scheme, host, port, path, headers, timeout)
        except TimeoutError:
            return Result(False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
                                 "headers)")
        except (OSError, http.client.HTTPException) as err:
            return Result(False, f'Get "{url}": {err}')
        if code in (301, 302, 303, 307, 308) and location:
            nxt = urllib.parse.urlsplit(urllib.parse.urljoin(url, location))
            if (nxt.hostname or host) != host or (nxt.port or port) != port or (nxt.scheme or scheme) != scheme:
                return Result(True, warning=f"Probe terminated redirects, Response body: {body[:200]}")
            path = nxt.path + (f"?{nxt.query}" if nxt.query else "") or "/"
            url = f"{scheme}://{_join(host, port)}{path}"
            continue
        if 200 <= code < 400:
            return Result(True)
        return Result(False, f"HTTP probe failed with statuscode: {code}")
    return Result(False, f'Get "{url}": stopped after {MAX_REDIRECTS} redirects')


def _get(scheme: str, host: str, port: int, path: str, headers: Mapping[str, str],
         timeout: float) -> tuple[int, str, str]:
    conn: http.client.HTTPConnection
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers))
        response = conn.getresponse()
        body = response.read(MAX_BODY).decode("utf-8", "replace")
        return response.status, response.getheader("Location") or "", body
    finally:
        conn.close()


def exec_probe(probe: Probe, exec_in: Exec) -> Result:
    """The command inside the container: exit 0 succeeds; past the timeout it is killed
    and fails."""
    command = [str(c) for c in probe.action.get("command") or []]
    if not command:
        return Result(False, "exec probe without a command")
    try:
        code, output = exec_in(command, probe.timeout)
    except TimeoutError:
        return Result(False, f"command {command!r} timed out")
    if code == 0:
        return Result(True)
    output = output.strip()
    return Result(False, output if output else f"command {command!r} exited with {code}")
