"""What each volume of a pod holds (pure): the files of configMap, secret, downwardAPI and
projected volumes with their modes, and the medium and size of an emptyDir, from the
objects fetched for the pod (sources.Sources). A missing ConfigMap, Secret or key that is
not optional raises VolumeError with kubelet's FailedMount message: the pod waits.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from sigma.agent.volumes.downward import DownwardError, field_value, resource_value
from sigma.agent.volumes.sources import Sources, config_map_data, secret_data
from sigma.quantity import memory_bytes

DEFAULT_MODE = 0o644  # kubelet's default for configMap, secret, downwardAPI and projected files
FAILED_MOUNT = "FailedMount"
FILE_KINDS = ("configMap", "secret", "downwardAPI", "projected")


class VolumeError(Exception):
    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.reason = FAILED_MOUNT


@dataclass(frozen=True)
class FileSpec:
    path: str  # relative to the volume, checked: no absolute path, no ".."
    data: bytes
    mode: int


@dataclass(frozen=True)
class VolumePlan:
    name: str
    kind: str  # one of FILE_KINDS, or "emptyDir"
    files: tuple[FileSpec, ...] = ()
    medium: str = ""  # emptyDir: "" (the node's disk) or "Memory" (tmpfs)
    size_limit: int | None = None  # emptyDir sizeLimit in bytes
    # Every object the files come from is immutable: once written, never rewritten.
    immutable: bool = False
    secret: bool = False  # holds Secret data or a token: never logged


@dataclass
class _Files:
    files: dict[str, FileSpec] = field(default_factory=dict)
    immutable: bool = True
    secret: bool = False

    def add(self, volume: str, path: str, data: bytes, mode: int) -> None:
        self.files[checked_path(volume, path)] = FileSpec(checked_path(volume, path), data, mode)


def checked_path(volume: str, path: str) -> str:
    norm = posixpath.normpath(path)
    if not path or path.startswith("/") or norm.startswith("..") or "/../" in f"/{path}/" or norm == ".":
        raise VolumeError(volume, f'invalid path "{path}": must be relative and may not contain ".."')
    if norm.split("/")[0].startswith(".."):
        raise VolumeError(volume, f'invalid path "{path}": may not start with ".."')
    return norm


def plan_volumes(pod: dict[str, Any], sources: Sources) -> list[VolumePlan]:
    return [plan_volume(pod, v, sources) for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v, dict)]


def plan_volume(pod: dict[str, Any], volume: dict[str, Any], sources: Sources) -> VolumePlan:
    name = str(volume.get("name") or "")
    if isinstance(volume.get("emptyDir"), dict):
        spec = volume["emptyDir"]
        limit = spec.get("sizeLimit")
        return VolumePlan(name, "emptyDir", medium=str(spec.get("medium") or ""),
                          size_limit=memory_bytes(limit) if limit not in (None, "") else None)
    out = _Files()
    kind = next((k for k in FILE_KINDS if isinstance(volume.get(k), dict)), "")
    if not kind:
        other = next((k for k in volume if k != "name"), "unknown")
        raise VolumeError(name, f"volume type {other} is not supported by this node")
    spec = volume[kind]
    default_mode = _mode(spec.get("defaultMode"), DEFAULT_MODE)
    if kind == "configMap":
        _config_map(pod, name, spec, sources, default_mode, out)
    elif kind == "secret":
        _secret(pod, name, {**spec, "name": spec.get("secretName")}, sources, default_mode, out)
    elif kind == "downwardAPI":
        _downward(pod, name, spec, sources, default_mode, out)
    else:
        for source in spec.get("sources") or []:
            if isinstance(source.get("configMap"), dict):
                _config_map(pod, name, source["configMap"], sources, default_mode, out)
            elif isinstance(source.get("secret"), dict):
                _secret(pod, name, source["secret"], sources, default_mode, out)
            elif isinstance(source.get("downwardAPI"), dict):
                _downward(pod, name, source["downwardAPI"], sources, default_mode, out)
            elif isinstance(source.get("serviceAccountToken"), dict):
                if sources.token is None:
                    raise VolumeError(name, "failed to fetch token: the ServiceAccount token is not issued yet")
                out.immutable, out.secret = False, True
                out.add(name, str(source["serviceAccountToken"].get("path") or "token"), sources.token.encode(),
                        default_mode)
    return VolumePlan(name, kind, tuple(sorted(out.files.values(), key=lambda f: f.path)),
                      immutable=out.immutable, secret=out.secret)


def _mode(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777 else default


def _keyed(volume: str, what: str, ref: dict[str, Any], obj: dict[str, Any] | None, data_of: Any,
           default_mode: int, out: _Files) -> None:
    if obj is None:
        if ref.get("optional"):
            return
        raise VolumeError(volume, f'{what} "{ref.get("name") or ""}" not found')
    out.immutable = out.immutable and obj.get("immutable") is True
    data: dict[str, bytes] = data_of(obj)
    items = ref.get("items")
    if not items:
        for key, value in data.items():
            out.add(volume, key, value, default_mode)
        return
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if ref.get("optional"):
                continue
            raise VolumeError(volume, f"{what} references non-existent {what} key: {key}")
        out.add(volume, str(item.get("path") or key), data[key], _mode(item.get("mode"), default_mode))


def _config_map(pod: dict[str, Any], volume: str, ref: dict[str, Any], sources: Sources, default_mode: int,
                out: _Files) -> None:
    name = str(ref.get("name") or "")
    _keyed(volume, "configmap", ref, sources.config_maps.get(name), config_map_data, default_mode, out)


def _secret(pod: dict[str, Any], volume: str, ref: dict[str, Any], sources: Sources, default_mode: int,
            out: _Files) -> None:
    name = str(ref.get("name") or "")
    out.secret = True
    _keyed(volume, "secret", ref, sources.secrets.get(name), secret_data, default_mode, out)


def _downward(pod: dict[str, Any], volume: str, spec: dict[str, Any], sources: Sources, default_mode: int,
              out: _Files) -> None:
    out.immutable = False  # labels and annotations change
    for item in spec.get("items") or []:
        try:
            if isinstance(item.get("fieldRef"), dict):
                value = field_value(pod, str(item["fieldRef"].get("fieldPath") or ""), sources)
            elif isinstance(item.get("resourceFieldRef"), dict):
                value = resource_value(pod, "", item["resourceFieldRef"], sources)
            else:
                continue
        except (DownwardError, ValueError) as err:
            raise VolumeError(volume, str(err)) from err
        out.add(volume, str(item.get("path") or ""), value.encode(), _mode(item.get("mode"), default_mode))
