"""The Events a node agent records about its pods, in kubelet's words.

Pure: derived from the pod status the agent reports, the one it reported before, and the
pod. `kubectl describe pod` then reads, as on Kubernetes:

    Normal   Pulling    Pulling image "busybox"
    Normal   Pulled     Successfully pulled image "busybox"
    Normal   Created    Created container main
    Normal   Started    Started container main
    Warning  BackOff    Back-off restarting failed container main in pod web_default(uid)
    Normal   Killing    Stopping container main

Repeats (a crash loop) are aggregated by the recorder into one Event with a count.
"""

from __future__ import annotations

from typing import Any

PodEvent = tuple[str, str, str]  # (type, reason, message)


def _by_name(status: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c.get("name", ""): c for c in (status or {}).get("containerStatuses") or []}


def status_events(pod: dict[str, Any], old: dict[str, Any] | None, new: dict[str, Any]) -> list[PodEvent]:
    """Events for the change from ``old`` to ``new`` (the pod's reported statuses)."""
    meta = pod.get("metadata") or {}
    before = _by_name(old)
    out: list[PodEvent] = []
    for name, now in _by_name(new).items():
        was = before.get(name, {})
        state, was_state = now.get("state") or {}, was.get("state") or {}
        if "running" in state and (now.get("containerID") != was.get("containerID") or "running" not in was_state):
            out.append(("Normal", "Created", f"Created container {name}"))
            out.append(("Normal", "Started", f"Started container {name}"))
        waiting = (state.get("waiting") or {}).get("reason")
        was_waiting = (was_state.get("waiting") or {}).get("reason")
        restarted = now.get("restartCount") != was.get("restartCount")
        if waiting == "CrashLoopBackOff" and (was_waiting != waiting or restarted):
            out.append(("Warning", "BackOff", f"Back-off restarting failed container {name} in pod "
                                              f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"))
        elif waiting == "ImagePullBackOff" and was_waiting != waiting:
            out.append(("Normal", "BackOff", f'Back-off pulling image "{now.get("image", "")}"'))
        elif waiting in ("ErrImagePull", "ErrImageNeverPull") and was_waiting != waiting:
            message = (state.get("waiting") or {}).get("message") or ""
            out.append(("Warning", "Failed", f'Failed to pull image "{now.get("image", "")}": {message}'.rstrip(": ")))
        elif waiting == "InvalidImageName" and was_waiting != waiting:  # kubelet's InspectFailed
            out.append(("Warning", "InspectFailed", (state.get("waiting") or {}).get("message") or ""))
    return out


def killing_events(pod: dict[str, Any]) -> list[PodEvent]:
    """Stopping each running container of a pod being deleted."""
    return [("Normal", "Killing", f"Stopping container {c.get('name', '')}")
            for c in (pod.get("status") or {}).get("containerStatuses") or [] if "running" in (c.get("state") or {})]


def pulled_message(image: str, seconds: float, size: int) -> str:
    """kubelet's Pulled message: how long the pull took and how large the image is."""
    took = f"{seconds:.3f}s" if seconds < 1 else f"{seconds:.1f}s"
    tail = f" Image size: {size} bytes." if size else ""
    return f'Successfully pulled image "{image}" in {took} ({took} including waiting).{tail}'
