"""`sigma describe`: a readable page per object, in kubectl's layout.

Pods get kubectl's sections (containers with their state and restarts, conditions, events);
Sigma's QoS class is the `sigma.io/qos` label, since Sigma's QoS axis (LSE/LSR/LS/BE) is not
Kubernetes' Guaranteed/Burstable/BestEffort. Every other kind is rendered generically: its
spec and status as indented key/value lines, then its events.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from sigma.api.errors import ApiError
from sigma.api.resources import ResourceType
from sigma.client.http import HttpClient

QOS_LABEL = "sigma.io/qos"


class Page:
    """Lines of "Key:   value", aligned per indentation level like kubectl's tabwriter."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def item(self, key: str, value: Any = "", indent: int = 0, width: int = 22) -> None:
        pad = max(width - 2 * indent, len(key) + 2)
        text = _text(value)
        self.lines.append(f"{'  ' * indent}{key + ':':<{pad}}{text}".rstrip())

    def mapping(self, key: str, values: dict[str, str] | None, indent: int = 0) -> None:
        """Labels/annotations: one k=v per line, continuation lines aligned under the first."""
        pairs = [f"{k}={v}" for k, v in sorted((values or {}).items())] or ["<none>"]
        self.item(key, pairs[0], indent)
        pad = max(22 - 2 * indent, len(key) + 2)
        self.lines += [f"{'  ' * indent}{'':<{pad}}{p}" for p in pairs[1:]]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _text(value: Any) -> str:
    if value is None or value == "":
        return "<none>" if value is None else ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "<none>"
    return str(value)


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's short human durations: 45s, 3m20s, 5h, 2d3h, 40d."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d" if days < 730 else f"{days // 365}y"


def render(client: HttpClient, rt: ResourceType, obj: dict[str, Any]) -> str:
    page = Page()
    if rt.kind == "Pod":
        describe_pod(page, obj)
    else:
        describe_generic(page, obj)
    describe_events(page, client, rt, obj)
    return page.text()


def _header(page: Page, obj: dict[str, Any]) -> None:
    meta = obj.get("metadata", {})
    page.item("Name", meta.get("name"))
    if "namespace" in meta:
        page.item("Namespace", meta["namespace"])
    page.mapping("Labels", meta.get("labels"))
    page.mapping("Annotations", meta.get("annotations"))


def describe_pod(page: Page, pod: dict[str, Any]) -> None:
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    page.item("Name", meta.get("name"))
    page.item("Namespace", meta.get("namespace"))
    page.item("Priority", spec.get("priority", 0))
    if spec.get("priorityClassName"):
        page.item("Priority Class Name", spec["priorityClassName"])
    node = spec.get("nodeName")
    page.item("Node", f"{node}/{status['hostIP']}" if node and status.get("hostIP") else node or "<none>")
    if status.get("startTime"):
        page.item("Start Time", status["startTime"])
    page.mapping("Labels", meta.get("labels"))
    page.mapping("Annotations", meta.get("annotations"))
    phase = status.get("phase", "Pending")
    page.item("Status", f"Terminating (lasts {age(meta['deletionTimestamp'])})"
              if meta.get("deletionTimestamp") else phase)
    for key in ("reason", "message"):
        if status.get(key):
            page.item(key.capitalize(), status[key])
    page.item("IP", status.get("podIP") or "")
    page.item("QoS Class", (meta.get("labels") or {}).get(QOS_LABEL) or status.get("qosClass") or "<none>")
    statuses = {s.get("name"): s for s in status.get("containerStatuses") or []}
    page.lines.append("Containers:")
    for container in spec.get("containers") or []:
        _container(page, container, statuses.get(container.get("name"), {}))
    conditions = status.get("conditions") or []
    if conditions:
        page.lines.append("Conditions:")
        page.lines.append(f"  {'Type':<28}{'Status':<8}Reason")
        page.lines += [f"  {c.get('type', ''):<28}{c.get('status', ''):<8}{c.get('reason', '')}".rstrip()
                       for c in conditions]
    page.mapping("Node-Selectors", spec.get("nodeSelector"))
    tolerations = [f"{t.get('key', '')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect', '')}"
                   for t in spec.get("tolerations") or []]
    page.item("Tolerations", tolerations or None)


def _container(page: Page, container: dict[str, Any], status: dict[str, Any]) -> None:
    page.lines.append(f"  {container.get('name', '')}:")
    page.item("Image", container.get("image"), 2)
    for key, label in (("command", "Command"), ("args", "Args")):
        if container.get(key):
            page.item(label, " ".join(str(a) for a in container[key]), 2)
    _state(page, "State", status.get("state") or {"waiting": {}})
    if status.get("lastState"):
        _state(page, "Last State", status["lastState"])
    page.item("Ready", bool(status.get("ready", False)), 2)
    page.item("Restart Count", status.get("restartCount", 0), 2)
    resources = container.get("resources") or {}
    for key in ("limits", "requests"):
        if resources.get(key):
            page.lines.append(f"    {key.capitalize()}:")
            for name, value in resources[key].items():
                page.item(name, value, 3)
    env = [f"{e.get('name')}={e.get('value', '')}" for e in container.get("env") or []]
    page.item("Environment", env or None, 2)


def _state(page: Page, label: str, state: dict[str, Any]) -> None:
    for name, detail in state.items():
        page.item(label, name.capitalize(), 2)
        detail = detail or {}
        for key, title in (("reason", "Reason"), ("message", "Message"), ("exitCode", "Exit Code"),
                           ("signal", "Signal"), ("startedAt", "Started"), ("finishedAt", "Finished")):
            if key in detail:
                page.item(title, detail[key], 3)


def describe_generic(page: Page, obj: dict[str, Any]) -> None:
    _header(page, obj)
    page.item("API Version", obj.get("apiVersion"))
    page.item("Kind", obj.get("kind"))
    for section in ("spec", "status"):
        if section in obj:
            page.lines.append(f"{section.capitalize()}:")
            _tree(page, obj[section], 1)
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            page.lines.append(f"{key[:1].upper()}{key[1:]}:")
            _tree(page, value, 1)


def _tree(page: Page, value: Any, indent: int) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, (dict, list)) and child:
                page.lines.append(f"{pad}{key}:")
                _tree(page, child, indent + 1)
            else:
                page.item(key, child if child != {} and child != [] else None, indent)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                page.lines.append(f"{pad}-")
                _tree(page, item, indent + 1)
            else:
                page.lines.append(f"{pad}- {_text(item)}")
    else:
        page.lines.append(f"{pad}{_text(value)}")


def describe_events(page: Page, client: HttpClient, rt: ResourceType, obj: dict[str, Any]) -> None:
    meta = obj.get("metadata", {})
    selector = f"involvedObject.name={meta.get('name', '')}"
    if rt.namespaced:
        selector += f",involvedObject.namespace={meta.get('namespace', '')}"
    else:  # events about cluster-scoped objects may live in any namespace; the kind narrows them
        selector += f",involvedObject.kind={rt.kind}"
    try:
        events = client.list("events", None, field_selector=selector).get("items", [])
    except ApiError as err:
        print(f"warning: cannot list events: {err.message}", file=sys.stderr)
        events = []
    if not events:
        page.item("Events", None)
        return

    def when(e: dict[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp")
                   or e.get("metadata", {}).get("creationTimestamp") or "")

    rows = [["Type", "Reason", "Age", "From", "Message"], ["----", "------", "----", "----", "-------"]]
    for e in sorted(events, key=when):
        count = e.get("count") or 1
        seen = age(when(e))
        if count > 1 and e.get("firstTimestamp"):
            seen = f"{seen} (x{count} over {age(e['firstTimestamp'])})"
        source = e.get("source", {}).get("component") or e.get("reportingComponent") or ""
        rows.append([e.get("type", ""), e.get("reason", ""), seen, source, e.get("message", "")])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    page.lines.append("Events:")
    page.lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4]
                   for r in rows]
