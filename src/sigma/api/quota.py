"""ResourceQuota: a namespace's ceiling on pod count and requested resources.

A pod is admitted only if, with it, every quota of its namespace stays within ``spec.hard``;
otherwise the create is refused with Kubernetes' message ("exceeded quota: NAME, requested:
..., used: ..., limited: ..."). Tracked names:

- ``pods``: the number of pods that are not Succeeded or Failed;
- ``cpu``, ``memory``, ``sigma.io/batch-cpu``, ``sigma.io/batch-memory``, also spelt with a
  ``requests.`` prefix: the sum of the containers' requests (a limit alone counts as the
  request, as Kubernetes defaults it); ``limits.cpu``, ``limits.memory``: the sum of limits.

Admission charges the pod to ``status.used`` with a compare-and-swap on the quota object, so
two pods created at once cannot both take the last slot; the quota controller
(sigma.master.controllers.quota) recounts ``status.used`` from the pods, which is what gives
capacity back when pods end or are deleted.
"""

from __future__ import annotations

from typing import Any

from sigma.api.errors import ApiError, Cause
from sigma.api.registry import Registry
from sigma.api.registry_core import in_dry_run
from sigma.api.resources import resource
from sigma.api.tables import age, register_printer
from sigma.api.validation import register_validator
from sigma.quantity import MAX_INT64, QuantityError, format_bytes, format_cpu, memory_bytes, resource_units

QUOTAS = resource("resourcequotas")
PODS = resource("pods")
COMPUTE = ("cpu", "memory", "sigma.io/batch-cpu", "sigma.io/batch-memory")
TRACKED = frozenset({"pods", *COMPUTE, *(f"requests.{r}" for r in COMPUTE), "limits.cpu", "limits.memory"})
TERMINAL = ("Succeeded", "Failed")
CAS_ATTEMPTS = 5


def _base(name: str) -> tuple[str, str]:
    """("requests" | "limits" | "count", resource) for a tracked name."""
    if name == "pods":
        return "count", "pods"
    if name.startswith("limits."):
        return "limits", name[len("limits."):]
    return "requests", name.removeprefix("requests.")


def units(name: str, value: Any) -> int:
    if name == "pods":
        return memory_bytes(value)  # a count is a quantity too ("1k"), a whole one
    return resource_units("cpu" if _base(name)[1] == "cpu" else "bytes", value)


def stored_units(name: str, value: Any) -> int:
    """units() of a quantity already stored. One that no longer parses was written before the
    API bounded quantities to int64, so it stands for more than int64 holds: it counts as that
    much, rather than failing every pod create in the namespace."""
    try:
        return units(name, value)
    except QuantityError:
        return MAX_INT64


def format_units(name: str, value: int) -> str:
    base = _base(name)[1]
    if base == "cpu":
        return format_cpu(value)
    return str(value) if base in ("pods", "sigma.io/batch-cpu") else format_bytes(value)


def pod_usage(pod: dict[str, Any]) -> dict[str, int]:
    """What one pod counts against every tracked name (0 for a terminal pod)."""
    if (pod.get("status") or {}).get("phase") in TERMINAL:
        return {}
    out = {"pods": 1}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        for name in TRACKED - {"pods"}:
            kind, base = _base(name)
            value = (limits if kind == "limits" else requests).get(base)
            if value is None and kind == "requests":
                value = limits.get(base)
            if value is not None:
                out[name] = out.get(name, 0) + stored_units(name, value)
    _add_overhead(out, (pod.get("spec") or {}).get("overhead") or {})
    return out


def _add_overhead(out: dict[str, int], overhead: dict[str, Any]) -> None:
    """The RuntimeClass overhead counts with the requests, and with the limits where the
    pod has one for that resource (Kubernetes' PodRequests and PodLimits)."""
    for name in TRACKED - {"pods"}:
        kind, base = _base(name)
        if base in overhead and (kind == "requests" or name in out):
            out[name] = out.get(name, 0) + stored_units(name, overhead[base])


def namespace_usage(pods: list[dict[str, Any]], names: list[str]) -> dict[str, int]:
    used = dict.fromkeys(names, 0)
    for pod in pods:
        for name, amount in pod_usage(pod).items():
            if name in used:
                used[name] += amount
    return used


def _exceeded(quota: dict[str, Any], used: dict[str, int], request: dict[str, int]) -> str | None:
    hard = (quota.get("spec") or {}).get("hard") or {}
    over = [n for n in sorted(hard) if request.get(n, 0) and used.get(n, 0) + request[n] > stored_units(n, hard[n])]
    if not over:
        return None

    def fmt(values: dict[str, int]) -> str:
        return ",".join(f"{n}={format_units(n, values.get(n, 0))}" for n in over)

    limited = ",".join(f"{n}={hard[n]}" for n in over)
    return (f"exceeded quota: {quota['metadata']['name']}, requested: {fmt(request)}, used: {fmt(used)}, "
            f"limited: {limited}")


def admit_pod(registry: Registry) -> Any:
    def hook(pod: dict[str, Any], old: dict[str, Any] | None) -> None:
        if old is not None:
            return  # requests are fixed once the pod exists
        namespace = pod["metadata"].get("namespace") or ""
        request: dict[str, int] | None = None  # only worked out where a quota applies
        for _ in range(CAS_ATTEMPTS):
            if registry.recently_empty(QUOTAS, namespace):
                return
            quotas = registry.list(QUOTAS, namespace)["items"]
            if not quotas:
                registry.note_empty(QUOTAS, namespace)
                return
            request = request or pod_usage(pod)
            pods = registry.list(PODS, namespace)["items"]
            if _charge_all(registry, pod, quotas, pods, request):
                return
        raise ApiError(409, "Conflict", f'pods "{pod["metadata"].get("name", "")}": the quota of namespace '
                       f"{namespace} changed concurrently; try again", kind="pods")

    return hook


def _charge_all(registry: Registry, pod: dict[str, Any], quotas: list[dict[str, Any]],
                pods: list[dict[str, Any]], request: dict[str, int]) -> bool:
    """Check every quota, then charge each; False when one changed under us (re-read)."""
    charges = []
    for quota in quotas:
        hard = (quota.get("spec") or {}).get("hard") or {}
        recount = namespace_usage(pods, list(hard))
        recorded = (quota.get("status") or {}).get("used") or {}
        # status.used also holds pods admitted but not written yet: the larger of both counts.
        used = {n: max(recount[n], _recorded(n, recorded.get(n))) for n in hard}
        reason = _exceeded(quota, used, request)
        if reason is not None:
            raise ApiError(403, "Forbidden", f'pods "{pod["metadata"].get("name", "")}" is forbidden: {reason}',
                           kind="pods", name=pod["metadata"].get("name", ""))
        charges.append((quota, {n: used[n] + request.get(n, 0) for n in hard}))
    if in_dry_run():
        return True  # a dry run is refused exactly as the real create would be, and charges nothing
    for quota, used in charges:
        try:
            write_status(registry, quota, used)
        except ApiError as err:
            if err.code == 409:
                return False
            raise
    return True


def _recorded(name: str, value: Any) -> int:
    """A count from status.used; one that does not parse (a recount past int64) counts as
    nothing recorded, and the recount from the pods decides."""
    try:
        return units(name, value) if value is not None else 0
    except QuantityError:
        return 0


def write_status(registry: Registry, quota: dict[str, Any], used: dict[str, int]) -> dict[str, Any]:
    """Replace status (hard and used) with a compare-and-swap on the quota's resourceVersion."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    body = {**quota, "status": {"hard": dict(hard), "used": {n: format_units(n, v) for n, v in used.items()}}}
    m = quota["metadata"]
    return registry.update(QUOTAS, m.get("namespace"), m["name"], body, "status")


def validate_quota(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = []
    for name, value in ((obj.get("spec") or {}).get("hard") or {}).items():
        path = f"spec.hard[{name}]"
        if name not in TRACKED:
            causes.append(Cause(path, f'Unsupported value: "{name}": supported values: {", ".join(sorted(TRACKED))}',
                                "FieldValueNotSupported"))
            continue
        try:
            if units(name, value) < 0:
                causes.append(Cause(path, f"Invalid value: {value!r}: must be greater than or equal to 0"))
        except QuantityError as err:
            causes.append(Cause(path, f"Invalid value: {err}"))
    return causes


def _row(q: dict[str, Any], now: float) -> list[Any]:
    hard = (q.get("status") or {}).get("hard") or (q.get("spec") or {}).get("hard") or {}
    used = (q.get("status") or {}).get("used") or {}
    text = ", ".join(f"{n}: {used.get(n, '0')}/{hard[n]}" for n in sorted(hard))
    return [q["metadata"]["name"], age(q, now), text]


def install(registry: Registry) -> None:
    register_validator("ResourceQuota", validate_quota)
    register_printer("ResourceQuota", [("Name", "string", 0), ("Age", "string", 0), ("Used/Hard", "string", 0)],
                     _row)
    registry.add_admission("Pod", admit_pod(registry))
