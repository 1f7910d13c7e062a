"""Finding a pull's credentials in docker configs as kubelet does (pure)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sigma.agent.pull_credentials import (
    BadCredentials,
    Keyring,
    key_matches,
    keyring_from_file,
    keyring_from_secret,
    parse_key,
)
from sigma.agent.registry_auth import Credential


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _secret(kind: str, field: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "data": {field: base64.b64encode(json.dumps(config).encode()).decode()}}


@pytest.mark.parametrize(("key", "registry", "repository", "match"), [
    ("https://index.docker.io/v1/", "docker.io", "library/busybox", True),
    ("index.docker.io", "docker.io", "user/app", True),
    ("docker.io", "docker.io", "user/app", True),
    ("reg.local:5000", "reg.local:5000", "a/b", True),
    ("reg.local:5000", "reg.local", "a/b", False),  # the port must be the same
    ("reg.local", "reg.local:5000", "a/b", False),
    ("http://reg.local/team", "reg.local", "team/app", True),
    ("reg.local/team", "reg.local", "teamx/app", False),  # a path prefix on component boundaries
    ("reg.local/team/app", "reg.local", "team/app", True),
    ("*.example.com", "eu.example.com", "a", True),
    ("*.example.com", "example.com", "a", False),  # a glob is one part, as kubelet's
    ("*.example.com", "a.b.example.com", "a", False),
    ("REG.local", "reg.LOCAL", "a", True),
])
def test_keys_match_as_kubelet_matches_them(key: str, registry: str, repository: str, match: bool) -> None:
    assert key_matches(parse_key(key), registry, repository) is match


def test_the_most_specific_key_comes_first_and_sources_keep_their_order() -> None:
    pod = Keyring().add_config({"auths": {
        "reg.local": {"auth": _auth("host", "1")},
        "reg.local/team/app": {"username": "app", "password": "2"},
        "other.local": {"auth": _auth("other", "3")},
    }})
    node = Keyring().add_config({"reg.local": {"auth": _auth("node", "4")}})  # legacy dockercfg layout
    found = pod.extend(node).lookup("reg.local", "team/app")
    assert found == [Credential("app", "2"), Credential("host", "1"), Credential("node", "4")]
    assert pod.lookup("reg.local:5000", "team/app") == []


def test_secrets_of_both_docker_types_are_read() -> None:
    config = {"auths": {"https://index.docker.io/v1/": {"auth": _auth("hub", "pw")}}}
    ring = keyring_from_secret(_secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", config))
    assert ring.lookup("docker.io", "library/busybox") == [Credential("hub", "pw")]
    legacy_config = {"quay.io": {"auth": _auth("q", "p")}}
    legacy = keyring_from_secret(_secret("kubernetes.io/dockercfg", ".dockercfg", legacy_config))
    assert legacy.lookup("quay.io", "a/b") == [Credential("q", "p")]


@pytest.mark.parametrize(("secret", "why"), [
    ({"type": "Opaque", "data": {}}, "is not kubernetes.io/dockerconfigjson"),
    ({"type": "kubernetes.io/dockerconfigjson", "data": {}}, "missing"),
    ({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "!!"}}, "not base64 of JSON"),
    (_secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", {"auths": {"r": {"auth": "bm9jb2xvbg=="}}}),
     "not base64 of user:password"),
])
def test_bad_secrets_say_what_is_wrong(secret: dict[str, Any], why: str) -> None:
    with pytest.raises(BadCredentials, match=why):
        keyring_from_secret(secret)


def test_the_node_file_skips_entries_of_a_credential_helper(tmp_path: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"reg.local": {}, "quay.io": {"auth": _auth("q", "p")}},
                                "credsStore": "desktop"}))
    ring = keyring_from_file(str(path))
    assert ring.lookup("reg.local", "x") == [] and ring.lookup("quay.io", "x") == [Credential("q", "p")]
