"""Which credentials a pull may use, found as kubelet finds them.

Sources, tried in this order (kubelet's): the pod's imagePullSecrets, in the order the pod
lists them, then the node's credentials file (`sigma agent --image-credentials`, a docker
config.json). Secret types:

    kubernetes.io/dockerconfigjson   data[".dockerconfigjson"] = {"auths": {KEY: ENTRY}}
    kubernetes.io/dockercfg          data[".dockercfg"]        = {KEY: ENTRY}

ENTRY holds `auth` (base64 "user:password") or `username` and `password`. KEY matching:
- `https://index.docker.io/v1/`, `index.docker.io`, `docker.io` and `registry-1.docker.io`
  are all Docker Hub;
- a scheme is ignored; the host must match the image's registry part for part, where a
  part may be a glob (`*.example.com`), and the port must be the same;
- a path in the key (`registry.local/team`) must be a prefix of the image's repository on
  component boundaries;
- the most specific key comes first (longest host, then path), and every matching
  credential is tried in turn: a pull stops at the first one the registry accepts.

Pure: decoded JSON in, credentials out. The agent reads the secrets (sigma.agent.pullsecrets).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sigma.agent.image_reference import DOCKER_HUB
from sigma.agent.registry_auth import Credential

DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"
_HUB = {"index.docker.io", "docker.io", "registry-1.docker.io"}


class BadCredentials(ValueError):
    """A pull secret or credentials file that does not hold docker config JSON."""


@dataclass(frozen=True)
class CredentialKey:
    host: str  # lowercase, maybe with globs and a port
    path: str  # "" or "team/app"

    @property
    def specificity(self) -> tuple[int, int]:
        return len(self.host), len(self.path)


def parse_key(key: str) -> CredentialKey:
    """ "https://index.docker.io/v1/" -> docker.io; "http://reg:5000/team/" -> reg:5000 + team."""
    rest = key.strip().split("://", 1)[-1]
    host, _, path = rest.partition("/")
    host = host.lower()
    path = path.strip("/")
    if host in _HUB:
        host = DOCKER_HUB
        if path in ("v1", "v2"):
            path = ""
    return CredentialKey(host, path)


def key_matches(key: CredentialKey, registry: str, repository: str) -> bool:
    """Does `key` cover REGISTRY/REPOSITORY (registry as host[:port], docker.io for the Hub)?"""
    reg = DOCKER_HUB if registry.lower() in _HUB else registry.lower()
    khost, _, kport = key.host.partition(":") if key.host.count(":") == 1 else (key.host, "", "")
    rhost, _, rport = reg.partition(":") if reg.count(":") == 1 else (reg, "", "")
    if kport != rport:
        return False
    kparts, rparts = khost.split("."), rhost.split(".")
    if len(kparts) != len(rparts) or not all(fnmatch.fnmatchcase(r, k) for k, r in zip(kparts, rparts, strict=True)):
        return False
    return not key.path or repository == key.path or repository.startswith(key.path + "/")


def _entry_credential(key: str, entry: Any) -> Credential:
    if not isinstance(entry, dict):
        raise BadCredentials(f"auths[{key!r}] is not an object")
    if entry.get("auth"):
        try:
            user, colon, password = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as err:
            raise BadCredentials(f"auths[{key!r}].auth is not base64 of user:password") from err
        if not colon:
            raise BadCredentials(f"auths[{key!r}].auth is not base64 of user:password")
        return Credential(user, password)
    if entry.get("username") is not None:
        return Credential(str(entry["username"]), str(entry.get("password") or ""))
    raise BadCredentials(f"auths[{key!r}] has neither auth nor username")


@dataclass
class Keyring:
    entries: list[tuple[CredentialKey, Credential]] = field(default_factory=list)

    def add_config(self, config: Mapping[str, Any]) -> Keyring:
        """Add a docker config: {"auths": {...}} (config.json, dockerconfigjson) or the legacy
        {KEY: ENTRY} (dockercfg). Entries without credentials (a credsStore's) are skipped."""
        auths = config.get("auths")
        for key, entry in (auths if isinstance(auths, dict) else config).items():
            if isinstance(entry, dict) and not entry.get("auth") and entry.get("username") is None:
                continue
            self.entries.append((parse_key(key), _entry_credential(key, entry)))
        return self

    def extend(self, other: Keyring) -> Keyring:
        return Keyring([*self.entries, *other.entries])

    def lookup(self, registry: str, repository: str) -> list[Credential]:
        """Every credential for REGISTRY/REPOSITORY, most specific key first; sources keep
        their order among keys equally specific (pod secrets before the node's file)."""
        hits = [(k, c) for k, c in self.entries if key_matches(k, registry, repository)]
        ordered = sorted(enumerate(hits), key=lambda ic: (-ic[1][0].specificity[0], -ic[1][0].specificity[1], ic[0]))
        return list(dict.fromkeys(c for _, (_, c) in ordered))


def keyring_from_secret(secret: Mapping[str, Any]) -> Keyring:
    """A Secret (as the API serves it, data base64) of either docker type -> its keyring."""
    kind = secret.get("type")
    data = secret.get("data") or {}
    field_name = {DOCKERCONFIGJSON: ".dockerconfigjson", DOCKERCFG: ".dockercfg"}.get(str(kind))
    if field_name is None:
        raise BadCredentials(f"type {kind!r} is not {DOCKERCONFIGJSON} or {DOCKERCFG}")
    if field_name not in data:
        raise BadCredentials(f"data[{field_name}] is missing")
    try:
        decoded = json.loads(base64.b64decode(str(data[field_name])))
    except (binascii.Error, ValueError) as err:
        raise BadCredentials(f"data[{field_name}] is not base64 of JSON: {err}") from err
    if not isinstance(decoded, dict):
        raise BadCredentials(f"data[{field_name}] is not a JSON object")
    return Keyring().add_config(decoded)


def keyring_from_file(path: str) -> Keyring:
    """The node's credentials file (docker config.json)."""
    with open(path) as f:
        try:
            config = json.load(f)
        except ValueError as err:
            raise BadCredentials(f"{path}: not JSON: {err}") from err
    if not isinstance(config, dict):
        raise BadCredentials(f"{path}: not a JSON object")
    return Keyring().add_config(config)


def merged(keyrings: Iterable[Keyring]) -> Keyring:
    out = Keyring()
    for k in keyrings:
        out = out.extend(k)
    return out
