"""A container's environment as kubelet makes it (pure): envFrom first, in order (a prefix
before each key, keys that are no valid name skipped with an Event), then env, each value
expanded with ``$(VAR)`` against what is defined before it, valueFrom from ConfigMaps,
Secrets and the downward API; then command and args expanded with the result.

A missing ConfigMap, Secret or key that is not optional stops the container from starting
(CreateContainerConfigError) until it appears.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.agent.volumes.downward import DownwardError, field_value, resource_value
from sigma.agent.volumes.sources import Sources, config_map_data, secret_data

CONFIG_ERROR = "CreateContainerConfigError"


class ConfigError(Exception):
    """The container cannot be configured yet: reason and message for its Event."""

    def __init__(self, message: str, reason: str = CONFIG_ERROR) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class ContainerEnv:
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (reason, message) Events


def valid_env_name(name: str) -> bool:
    """Kubernetes' relaxed rule (GA in 1.34): printable ASCII, not empty, no '='."""
    return bool(name) and all(" " <= ch <= "~" for ch in name) and "=" not in name


def expand(text: str, mapping: Mapping[str, str]) -> str:
    """Kubernetes' expansion: $(VAR) is replaced when VAR is defined and left as is when
    not, $$ is an escaped $, a $ before anything else stays."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2:end]
            out.append(mapping[name] if name in mapping else text[i:end + 1])
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def container_env(pod: dict[str, Any], container: dict[str, Any], sources: Sources,
                  base: Mapping[str, str] | None = None) -> ContainerEnv:
    """``base``: variables every container gets first (the kubernetes Service's), which
    envFrom and env override and $(VAR) may name."""
    meta = pod.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    out = ContainerEnv(env=dict(base or {}))
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        data_of: Callable[[dict[str, Any]], dict[str, str]]
        if isinstance(source.get("configMapRef"), dict):
            ref, kind, objects, data_of = source["configMapRef"], "configMap", sources.config_maps, config_map_text
        elif isinstance(source.get("secretRef"), dict):
            ref, kind, objects, data_of = source["secretRef"], "secret", sources.secrets, secret_text
        else:
            continue
        name = str(ref.get("name") or "")
        obj = objects.get(name)
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind.lower()} "{name}" not found')
        invalid = []
        for key, value in data_of(obj).items():
            if valid_env_name(prefix + key):
                out.env[prefix + key] = value
            else:
                invalid.append(prefix + key)
        if invalid:
            out.warnings.append(("InvalidEnvironmentVariableNames",
                                 f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {kind} {namespace}/{name} "
                                 "were skipped since they are considered invalid environment variable names."))
    for var in container.get("env") or []:
        name = str(var.get("name") or "")
        if not name:
            continue
        if "valueFrom" in var and isinstance(var["valueFrom"], dict):
            found = _value_from(pod, container, var["valueFrom"], sources, namespace)
            if found is None:
                continue  # an optional reference that is absent: no variable at all
            out.env[name] = found
        else:
            out.env[name] = expand(str(var.get("value") or ""), out.env)
    out.command = [expand(str(a), out.env) for a in container.get("command") or []]
    out.args = [expand(str(a), out.env) for a in container.get("args") or []]
    return out


def config_map_text(cm: dict[str, Any]) -> dict[str, str]:
    # env reads data only (binaryData is for volumes), as kubelet does.
    return {k: str(v) for k, v in (cm.get("data") or {}).items()}


def secret_text(secret: dict[str, Any]) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in secret_data(secret).items()}


def _value_from(pod: dict[str, Any], container: dict[str, Any], source: dict[str, Any], sources: Sources,
                namespace: str) -> str | None:
    try:
        if isinstance(source.get("fieldRef"), dict):
            return field_value(pod, str(source["fieldRef"].get("fieldPath") or ""), sources)
        if isinstance(source.get("resourceFieldRef"), dict):
            return resource_value(pod, str(container.get("name") or ""), source["resourceFieldRef"], sources)
    except (DownwardError, ValueError) as err:
        raise ConfigError(str(err)) from err
    for key_ref, kind, objects in (("configMapKeyRef", "ConfigMap", sources.config_maps),
                                   ("secretKeyRef", "Secret", sources.secrets)):
        ref = source.get(key_ref)
        if not isinstance(ref, dict):
            continue
        name, key = str(ref.get("name") or ""), str(ref.get("key") or "")
        obj = objects.get(name)
        if obj is None:
            if ref.get("optional"):
                return None
            raise ConfigError(f'{kind.lower()} "{name}" not found')
        data = config_map_data(obj) if kind == "ConfigMap" else secret_data(obj)
        if key not in data:
            if ref.get("optional"):
                return None
            raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
        return data[key].decode(errors="replace")
    return None
