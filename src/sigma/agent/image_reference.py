"""Image references as Docker reads them, and where a registry's content is fetched from.

    busybox:1.36            -> docker.io/library/busybox:1.36
    user/app                -> docker.io/user/app:latest
    localhost:5000/x        -> localhost:5000/x:latest   (a first component with "." or ":",
                                                         or "localhost", names a registry)
    quay.io/a/b@sha256:...  -> pinned by digest (a tag beside it is kept but not used)

`docker.io` is served from `registry-1.docker.io`. An agent may set another default
registry (short names then resolve there, as podman's unqualified-search-registries: no
`library/` is added) and mirrors per registry (containerd's hosts.toml): the mirrors are
tried first, in order, and the registry itself last.

Pure: strings in, values out. The grammar is distribution's reference grammar (lowercase
path components separated by `.`, `_`, `__` or dashes; tags `[\\w][\\w.-]{0,127}`;
digests `sha256:` and 64 hex digits).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(
    r"^(?:localhost|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
MAX_NAME = 255


class InvalidReference(ValueError):
    """The reference does not parse; the message names it and says why."""


@dataclass(frozen=True)
class ImageName:
    registry: str  # host[:port] as the user means it ("docker.io", "localhost:5000")
    repository: str  # "library/busybox"
    tag: str | None
    digest: str | None

    @property
    def ref(self) -> str:
        """What the manifest is fetched by: the digest, else the tag, else latest."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        at = f"@{self.digest}" if self.digest else f":{self.tag or 'latest'}"
        return f"{self.registry}/{self.repository}{at}"


def parse_image(image: str, default_registry: str | None = None) -> ImageName:
    """The fully qualified name of `image`; InvalidReference when it is not one."""

    def bad(why: str) -> InvalidReference:
        return InvalidReference(f'couldn\'t parse image reference "{image}": {why}')

    if not image or image != image.strip():
        raise bad("invalid reference format")
    name, at, digest = image.partition("@")
    if at and not _DIGEST.match(digest):
        raise bad(f'invalid digest "{digest}" (want sha256: and 64 lowercase hex digits)')
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.match(first):
            raise bad(f'invalid registry "{first}"')
        registry, path = first, rest
    else:
        registry, path = "", name
    tag = ""
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not _TAG.match(tag):
            raise bad(f'invalid tag "{tag}"')
    if not path:
        raise bad("invalid reference format")
    for component in path.split("/"):
        if not _COMPONENT.match(component):
            why = "repository name must be lowercase" if component.lower() != component else "invalid reference format"
            raise bad(why)
    if len(path) + len(registry) + 1 > MAX_NAME:
        raise bad(f"repository name must not be more than {MAX_NAME} characters")
    if not registry:
        registry = default_registry or DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
    elif registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return ImageName(registry, path, tag or None, digest or None)


def api_host(registry: str) -> str:
    """Where a registry's API is served: docker.io is registry-1.docker.io."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


def is_loopback(host_port: str) -> bool:
    host = host_port.rsplit(":", 1)[0] if host_port.count(":") == 1 else host_port
    return host in ("localhost", "[::1]", "::1") or host.startswith("127.")


def endpoints(registry: str, mirrors: Mapping[str, Sequence[str]], plain_http: bool | None = None) -> list[str]:
    """Base URLs to try for `registry`, in order: its mirrors (URLs as configured, or
    host[:port] taken as https unless loopback), then the registry itself."""
    out = [_base(m, plain_http) for m in mirrors.get(registry, ())]
    host = api_host(registry)
    plain = is_loopback(host) if plain_http is None else plain_http
    out.append(f"{'http' if plain else 'https'}://{host}")
    return list(dict.fromkeys(out))


def _base(mirror: str, plain_http: bool | None) -> str:
    if "://" in mirror:
        return mirror.rstrip("/")
    plain = is_loopback(mirror) if plain_http is None else plain_http
    return f"{'http' if plain else 'https'}://{mirror.rstrip('/')}"


def parse_mirrors(specs: Sequence[str]) -> dict[str, list[str]]:
    """ "docker.io=http://127.0.0.1:5000" (repeatable, in order) -> {registry: [mirror URLs]}."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        registry, eq, mirror = spec.partition("=")
        if not eq or not registry.strip() or not mirror.strip():
            raise ValueError(f"registry mirror {spec!r}: want REGISTRY=MIRROR (docker.io=https://mirror.local)")
        key = DOCKER_HUB if registry.strip() in _HUB_ALIASES else registry.strip()
        out.setdefault(key, []).append(mirror.strip())
    return out
