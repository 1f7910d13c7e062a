"""What the master decides before it streams pods/exec, pods/attach and pods/portforward:
pure functions of the pod and the request's parameters (no I/O), shared by the WebSocket
path and the refusal of SPDY upgrades, so kubectl prints the same message either way (it
falls back to SPDY when the WebSocket upgrade fails, and prints the second answer).

Kubernetes' messages: a completed pod is 400 "cannot exec into a container in a completed
pod; current phase is Succeeded"; an unknown container 400 "container X is not valid for pod
Y"; a container that is not running is the kubelet's plain-text 404 `container not found
("X")`, which kubectl prints as "unable to upgrade connection: container not found (...)".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sigma.api import errors

EXEC, ATTACH, PORTFORWARD = "exec", "attach", "portforward"
STREAM_SUBRESOURCES = (EXEC, ATTACH, PORTFORWARD)
# Newest first: the first one the client also offers is chosen.
CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("SPDY/3.1+portforward.k8s.io",)
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
VERB_OF = {EXEC: "exec into", ATTACH: "attach to", PORTFORWARD: "port-forward to"}


class PlainError(Exception):
    """An answer in plain text (as the kubelet gives it), not a Status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class StreamPlan:
    sub: str
    node: str
    container: str  # "" for portforward
    agent_path: tuple[str, ...]  # the agent's path parts: exec/NS/POD/CONTAINER, portforward/NS/POD
    query: tuple[tuple[str, str], ...]  # what the agent needs, re-encoded (never the raw string)


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["false"])[-1].lower() in ("true", "1")


def choose_protocol(sub: str, offered: list[str]) -> str | None:
    ours = PORTFORWARD_PROTOCOLS if sub == PORTFORWARD else CHANNEL_PROTOCOLS
    return next((p for p in ours if p in offered), None)


def _container(pod: dict[str, Any], query: Mapping[str, list[str]]) -> str:
    name = pod["metadata"]["name"]
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    wanted = (query.get("container") or [""])[-1]
    if not wanted:
        default = ((pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION) or "")
        wanted = default if default in containers else (containers[0] if len(containers) == 1 else "")
    if not wanted:
        raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: {containers}")
    if wanted not in containers:
        raise errors.bad_request(f"container {wanted} is not valid for pod {name}")
    return str(wanted)


def _running(pod: dict[str, Any], container: str) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any(s.get("name") == container and "running" in (s.get("state") or {}) for s in statuses)


def plan(pod: dict[str, Any], sub: str, query: Mapping[str, list[str]]) -> StreamPlan:
    """The checks kube-apiserver and the kubelet make, in their order; raises ApiError (a
    Status) or PlainError (the kubelet's text)."""
    meta = pod["metadata"]
    namespace, name = str(meta.get("namespace") or ""), str(meta["name"])
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.bad_request(f"cannot {VERB_OF[sub]} a container in a completed pod; current phase is {phase}")
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    if sub == PORTFORWARD:
        ports = [p for v in query.get("ports") or [] for p in v.split(",") if p]
        for p in ports:
            if not p.isdigit() or not 1 <= int(p) <= 65535:
                raise errors.bad_request(f"invalid port {p!r}: it must be between 1 and 65535")
        if not node:
            raise PlainError(400, "pod not running: the pod is not scheduled yet")
        if phase != "Running":
            raise PlainError(400, f"unable to upgrade connection: pod not running (phase {phase or 'Pending'})")
        return StreamPlan(sub, node, "", (PORTFORWARD, namespace, name), tuple(("ports", p) for p in ports))
    container = _container(pod, query)
    stdin, tty = _flag(query, "stdin"), _flag(query, "tty")
    stdout = _flag(query, "stdout") if sub == ATTACH or "stdout" in query else True
    stderr = _flag(query, "stderr") if sub == ATTACH or "stderr" in query else not tty
    command = [c for c in query.get("command") or []]
    if sub == EXEC and not command:
        raise errors.bad_request("you must specify at least 1 command")
    if not (stdin or stdout or stderr):
        raise errors.bad_request("you must specify at least one of stdin, stdout, stderr")
    if tty and stderr:
        raise errors.bad_request("tty and stderr cannot both be true")
    if not node or not _running(pod, container):
        raise PlainError(404, f'container not found ("{container}")')
    flags = [("stdin", stdin), ("stdout", stdout), ("stderr", stderr), ("tty", tty)]
    encoded = tuple((k, "1" if v else "0") for k, v in flags) + tuple(("command", c) for c in command)
    return StreamPlan(sub, node, container, (sub, namespace, name, container), encoded)
