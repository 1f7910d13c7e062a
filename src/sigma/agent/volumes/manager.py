"""The agent's volumes and env references: fetch what a pod references (its ConfigMaps and
Secrets, of its own namespace only, and its ServiceAccount token), plan (plan.py, env.py),
write the files (atomic.py) under STATE/pods/UID/volumes, and hand the container spec its
env, command, args and bind mounts.

Nothing here is decided twice: the pure modules decide, this one reads the master and the
disk. ``resync`` runs beside the pod sync: it rewrites the volumes of running pods whose
ConfigMaps, Secrets or labels changed (never an immutable one), renews tokens at 80% of
their lifetime as kubelet does, and evicts a pod whose disk emptyDir outgrew its sizeLimit.
Secret bytes and tokens are never logged: errors name objects, not their contents.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.agent.podspec import pod_resources
from sigma.agent.runtime.base import ContainerSpec
from sigma.agent.runtime.hardening import NOBODY, USERNS_HOST_BASE
from sigma.agent.volumes import atomic
from sigma.agent.volumes.env import ConfigError, container_env
from sigma.agent.volumes.plan import FILE_KINDS, VolumeError, VolumePlan, plan_volumes
from sigma.agent.volumes.sources import Sources
from sigma.api.errors import ApiError
from sigma.api.podrefs import pod_references
from sigma.client.base import ApiClient

log = logging.getLogger("sigma.agent.volumes")
# A pod whose volumes or env cannot be made yet is retried after 1 s, 2 s, 4 s... at most
# MAX_RETRY_S, as kubelet backs off a failing mount: a pod waiting for a ConfigMap costs the
# master a few reads a minute, not one per sync.
FIRST_RETRY_S, MAX_RETRY_S = 1.0, 8.0
CACHE_S = 2.0  # objects read once serve every container of a pod starting together
TOKEN_REFRESH_FRACTION = 0.8  # kubelet renews a projected token at 80% of its lifetime
DEFAULT_TOKEN_SECONDS = 3607
Mount = tuple[str, str, bool]  # (path in the container, path on the host, read-only)
Evict = Callable[[dict[str, Any], str], None]  # (pod, message): the agent evicts it


@dataclass
class _Token:
    value: str
    issued: float
    expires: float


@dataclass(frozen=True)
class Target:
    """Who reads the files: the container's user on the host (a user namespace shifts root's
    ids), and the pod's fsGroup."""

    uid: int
    gid: int
    fs_group: int | None


class VolumeManager:
    def __init__(self, client: ApiClient, state_dir: str, address: str = "",
                 node_allocatable: Callable[[], tuple[int, int]] = lambda: (0, 0),
                 process_uid: int | None = NOBODY, clock: Callable[[], float] = time.time) -> None:
        self.client, self.address, self.clock = client, address, clock
        self.node_allocatable, self.process_uid = node_allocatable, process_uid
        self.root = os.path.join(state_dir, "pods")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()  # the sync loop and the resync may meet on one pod
        self._retry: dict[str, tuple[float, float]] = {}  # pod uid -> (next try, delay)
        self._cache: dict[tuple[str, str, str], tuple[float, dict[str, Any] | None]] = {}
        # pod uid -> container -> (reason, message): env that cannot be made (status.py shows it).
        self.config_errors: dict[str, dict[str, tuple[str, str]]] = {}

    def waiting(self, pod_uid: str) -> bool:
        """True while the pod is backing off after a failure: do not try it now."""
        retry = self._retry.get(pod_uid)
        return retry is not None and self.clock() < retry[0]

    # -- the container start -------------------------------------------------------------
    def apply(self, pod: dict[str, Any], container: dict[str, Any], spec: ContainerSpec, runtime: str,
              pod_ip: str) -> tuple[ContainerSpec, list[tuple[str, str]]]:
        """``spec`` with the container's env, command and args resolved and its volumes
        mounted, and the (reason, message) of Warning Events to record (env names skipped).
        Raises ConfigError or VolumeError (reason and message for an Event) while something
        it needs is missing: the container then waits."""
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        try:
            sources = self._sources(pod, pod_ip)
            # The kubernetes Service's variables come first: the pod's own names override them.
            resolved = container_env(pod, container, sources, base=self._service_env())
            with self._lock:
                plans = self._write_volumes(pod, sources, self._target(pod, spec, runtime))
            mounts = self._mounts(pod, container, plans)
        except (ConfigError, VolumeError) as err:
            delay = min(MAX_RETRY_S, self._retry[uid][1] * 2) if uid in self._retry else FIRST_RETRY_S
            self._retry[uid] = (self.clock() + delay, delay)
            if isinstance(err, ConfigError):
                self.config_errors.setdefault(uid, {})[str(container.get("name"))] = (err.reason, str(err))
            raise
        self._retry.pop(uid, None)
        self.config_errors.get(uid, {}).pop(str(container.get("name")), None)
        return dataclasses.replace(spec, env=resolved.env, command=resolved.command, args=resolved.args,
                                   volume_mounts=tuple(mounts)), resolved.warnings

    def _service_env(self) -> dict[str, str]:
        """KUBERNETES_SERVICE_HOST/PORT from the default/kubernetes Service, as kubelet sets
        them in every container (what load_incluster_config reads)."""
        try:
            svc = self._get("services", "kubernetes", "default", cache_s=30.0)
        except (ConfigError, ConnectionError):
            return {}
        if svc is None:
            return {}
        spec = svc.get("spec") or {}
        ip = str(spec.get("clusterIP") or "")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            return {}
        port = str(ports[0].get("port") or "")
        return {"KUBERNETES_SERVICE_HOST": ip, "KUBERNETES_SERVICE_PORT": port,
                "KUBERNETES_SERVICE_PORT_HTTPS": port,
                "KUBERNETES_PORT": f"tcp://{ip}:{port}", f"KUBERNETES_PORT_{port}_TCP": f"tcp://{ip}:{port}",
                f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp", f"KUBERNETES_PORT_{port}_TCP_PORT": port,
                f"KUBERNETES_PORT_{port}_TCP_ADDR": ip}

    def _target(self, pod: dict[str, Any], spec: ContainerSpec, runtime: str) -> Target:
        default = (self.process_uid if runtime == "process" else 0) or 0
        uid = spec.run_as_user if spec.run_as_user is not None else default
        gid = spec.run_as_group if spec.run_as_group is not None else uid
        # Root's ids in a process pod, or a pod that asks (hostUsers: false), are shifted.
        shifted = spec.user_namespace or (runtime == "process" and (uid == 0 or gid == 0))
        base = USERNS_HOST_BASE if shifted else 0
        fs_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        return Target(uid + base, gid + base, fs_group + base if isinstance(fs_group, int) else None)

    def _mounts(self, pod: dict[str, Any], container: dict[str, Any], plans: list[VolumePlan]) -> list[Mount]:
        by_name = {p.name: p for p in plans}
        out: list[Mount] = []
        for mount in container.get("volumeMounts") or []:
            name, path = str(mount.get("name") or ""), str(mount.get("mountPath") or "")
            plan = by_name.get(name)
            if plan is None or not path:
                raise VolumeError(name, f'unable to find volume "{name}" for the mount at "{path}"')
            source = self.volume_dir(pod, plan)
            sub = str(mount.get("subPath") or "")
            if sub:
                source = self._sub_path(source, sub, plan)
            # configMap, secret, downwardAPI and projected volumes are always read-only.
            out.append((path, source, plan.kind in FILE_KINDS or bool(mount.get("readOnly"))))
        return out

    @staticmethod
    def _sub_path(volume_dir: str, sub: str, plan: VolumePlan) -> str:
        """The real file or directory under the volume (kubelet resolves ..data links: a
        subPath mount of a ConfigMap key is not updated, as in Kubernetes)."""
        if sub.startswith("/") or ".." in sub.split("/"):
            raise VolumeError(plan.name, f'invalid subPath "{sub}": must be relative and may not contain ".."')
        full = os.path.join(volume_dir, sub)
        if plan.kind == "emptyDir" and not os.path.lexists(full):
            os.makedirs(full, mode=0o777, exist_ok=True)
            os.chmod(full, 0o777)
        real = os.path.realpath(full)
        if not (real == os.path.realpath(volume_dir) or real.startswith(os.path.realpath(volume_dir) + "/")):
            raise VolumeError(plan.name, f'subPath "{sub}" leaves the volume')
        if not os.path.exists(real):
            raise VolumeError(plan.name, f'subPath "{sub}" does not exist in the volume')
        return real

    # -- files ---------------------------------------------------------------------------
    def volume_dir(self, pod: dict[str, Any], plan: VolumePlan) -> str:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        return os.path.join(self.root, uid, "volumes", plan.kind, plan.name)

    def _write_volumes(self, pod: dict[str, Any], sources: Sources, target: Target | None) -> list[VolumePlan]:
        """Write every volume; ``target`` None (a resync) keeps the owner of what is there."""
        plans = plan_volumes(pod, sources)
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        for part in (uid, f"{uid}/volumes", *{f"{uid}/volumes/{p.kind}" for p in plans}):
            _private_dir(os.path.join(self.root, part))
        for plan in plans:
            directory = self.volume_dir(pod, plan)
            if plan.kind == "emptyDir":
                self._empty_dir(pod, plan, directory)
                continue
            if plan.immutable and os.path.islink(os.path.join(directory, atomic.DATA)):
                continue  # an immutable ConfigMap or Secret: what was written stays
            owner = self._owner_of(directory) if target is None else atomic.Owner(
                target.uid, target.gid, target.fs_group)
            if owner is None:
                continue  # never written for a container: nothing to refresh yet
            atomic.write(directory, plan.files, owner)
        return plans

    @staticmethod
    def _owner_of(directory: str) -> atomic.Owner | None:
        try:
            info = os.stat(directory)
        except OSError:
            return None
        fs_group = info.st_gid if info.st_mode & 0o050 == 0o050 else None
        return atomic.Owner(info.st_uid, info.st_gid, fs_group)

    def _empty_dir(self, pod: dict[str, Any], plan: VolumePlan, directory: str) -> None:
        if os.path.isdir(directory):
            return
        os.makedirs(directory, mode=0o777)
        os.chmod(directory, 0o777)  # every container of the pod, whatever its user, shares it
        if plan.medium != "Memory":
            return
        size = plan.size_limit or pod_resources(pod).memory_limit_bytes or self.node_allocatable()[1]
        options = "nosuid,nodev,mode=0777" + (f",size={size}" if size else "")
        # Pages of a tmpfs are charged to the memory cgroup of whoever writes them: the pod.
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", directory],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            raise VolumeError(plan.name, f"cannot mount a tmpfs: {done.stderr.strip()}")

    def release(self, pod_uid: str) -> None:
        """The pod is gone: unmount its memory emptyDirs, remove its files, forget its token."""
        with self._lock:
            self._tokens.pop(pod_uid, None)
            self._retry.pop(pod_uid, None)
            self.config_errors.pop(pod_uid, None)
            empty = os.path.join(self.root, pod_uid, "volumes", "emptyDir")
            if os.path.isdir(empty):
                for name in os.listdir(empty):
                    if os.path.ismount(os.path.join(empty, name)):
                        subprocess.run(["umount", os.path.join(empty, name)], capture_output=True, check=False)
            shutil.rmtree(os.path.join(self.root, pod_uid), ignore_errors=True)

    def gc(self, keep: set[str]) -> None:
        """Release the files of pods neither wanted nor running any more."""
        try:
            found = os.listdir(self.root)
        except OSError:
            return
        for uid in found:
            if uid not in keep:
                self.release(uid)

    # -- the master ----------------------------------------------------------------------
    def _sources(self, pod: dict[str, Any], pod_ip: str) -> Sources:
        meta = pod.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        refs = pod_references(pod)
        cpu, memory = self.node_allocatable()
        return Sources(config_maps={n: self._get("configmaps", n, namespace) for n in sorted(refs.config_maps)},
                       secrets={n: self._get("secrets", n, namespace) for n in sorted(refs.secrets)},
                       token=self._token(pod) if refs.wants_token else None,
                       pod_ip=pod_ip, host_ip=self.address, node_cpu_millis=cpu, node_memory_bytes=memory)

    def _get(self, resource: str, name: str, namespace: str, cache_s: float = CACHE_S) -> dict[str, Any] | None:
        """The object of the pod's own namespace (never another's), None when absent; read
        again once ``cache_s`` has passed."""
        key, now = (resource, namespace, name), self.clock()
        held = self._cache.get(key)
        if held is not None and now - held[0] < cache_s:
            return held[1]
        try:
            found: dict[str, Any] | None = self.client.get(resource, name, namespace)
        except ApiError as err:
            if err.code != 404:
                raise ConfigError(f'{resource[:-1]} "{name}": {err.code} {err.reason}') from None
            found = None
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = (now, found)
        return found

    def _token(self, pod: dict[str, Any]) -> str | None:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        uid = str(meta.get("uid") or "")
        now = self.clock()
        held = self._tokens.get(uid)
        if held is not None and not token_due(held.issued, held.expires, now):
            return held.value
        source = _token_source(pod)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": [source["audience"]] if source.get("audience") else None,
            "expirationSeconds": int(source.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS),
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta.get("name"), "uid": uid}}}
        account = str(spec.get("serviceAccountName") or "default")
        try:
            answer = request_token(self.client, str(meta.get("namespace") or "default"), account, body)
        except (ApiError, ConnectionError) as err:
            if held is not None and now < held.expires:
                return held.value  # renewal failed: the old token still works, try again later
            log.warning("token for pod %s/%s not issued: %s", meta.get("namespace"), meta.get("name"),
                        getattr(err, "message", type(err).__name__))
            return None
        status = answer.get("status") or {}
        lifetime = float(body["spec"]["expirationSeconds"])  # type: ignore[index]
        self._tokens[uid] = _Token(str(status.get("token") or ""), now, now + lifetime)
        return self._tokens[uid].value

    # -- the periodic resync -------------------------------------------------------------
    def resync(self, pods: list[dict[str, Any]], pod_ips: Callable[[str], str], evict: Evict) -> None:
        """Keep the volumes of pods already started current; one pod's failure is logged
        and the others carry on (the next start of a container reports it as an Event)."""
        for pod in pods:
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid") or "")
            # What is on disk, not what this agent wrote: a restarted agent keeps the volumes
            # (and tokens) of the pods it adopted current too.
            if not os.path.isdir(os.path.join(self.root, uid, "volumes")) or meta.get("deletionTimestamp") or \
                    (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            try:
                with self._lock:
                    plans = self._write_volumes(pod, self._sources(pod, pod_ips(uid)), None)
                over = self._empty_dir_over_limit(pod, plans)
            except (ConfigError, VolumeError, OSError) as err:
                log.info("volumes of pod %s/%s not refreshed: %s", meta.get("namespace"), meta.get("name"), err)
                continue
            if over:
                evict(pod, over)

    def _empty_dir_over_limit(self, pod: dict[str, Any], plans: list[VolumePlan]) -> str:
        """kubelet's message when a disk emptyDir uses more than its sizeLimit, else ""."""
        for plan in plans:
            if plan.kind != "emptyDir" or plan.medium == "Memory" or plan.size_limit is None:
                continue
            if disk_usage(self.volume_dir(pod, plan)) > plan.size_limit:
                limit = (((next(v for v in pod["spec"]["volumes"] if v.get("name") == plan.name))
                          .get("emptyDir") or {}).get("sizeLimit"))
                return f'Usage of EmptyDir volume "{plan.name}" exceeds the limit "{limit}". '
        return ""


def token_due(issued: float, expires: float, now: float) -> bool:
    """kubelet renews a projected token once 80% of its lifetime has passed."""
    return now >= issued + TOKEN_REFRESH_FRACTION * (expires - issued)


def _private_dir(path: str) -> None:
    """A directory only root may enter: a pod's volumes are reached through its mounts."""
    if not os.path.isdir(path):
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)


def _token_source(pod: dict[str, Any]) -> dict[str, Any]:
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        for source in ((volume.get("projected") or {}).get("sources") or []):
            if isinstance(source.get("serviceAccountToken"), dict):
                return dict(source["serviceAccountToken"])
    return {}


def request_token(client: ApiClient, namespace: str, account: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST serviceaccounts/NAME/token: over HTTP, or straight to the token service of an
    in-process master (tests)."""
    request_json = getattr(client, "request_json", None)
    if request_json is not None:
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
        return dict(request_json("POST", path, json=body))
    from sigma.api.satoken_auth import tokens_of

    return tokens_of(client.registry).request(namespace, account, body)  # type: ignore[attr-defined]


def disk_usage(path: str) -> int:
    """Bytes allocated under ``path`` (what du counts), not following links."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total
