"""Registry authentication: challenge parsing and token lifetimes (pure), then pulls from a
real docker-registry with token auth, a real token server, and fronts that fail on purpose."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from sigma.agent.images import DigestMismatch, ImageStore
from sigma.agent.oci_registry import ImagePullError, RegistryPuller, ensure_image
from sigma.agent.pull_credentials import Keyring
from sigma.agent.registry_auth import (
    DEFAULT_TOKEN_SECONDS,
    RegistryAuth,
    RegistryAuthError,
    parse_challenges,
    token_lifetime,
)
from tests.agent.imagebuild import tar_bytes
from tests.agent.registry_servers import SERVICE, Front, Signer, TokenServer, front, token_registry, token_server
from tests.p2p.conftest import LocalRegistry, needs_registry, push_image, start_registry


def test_a_bearer_challenge_is_parsed_with_quoted_and_escaped_values() -> None:
    [c] = parse_challenges('Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"')
    assert c.scheme == "bearer"
    assert dict(c.params) == {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a/b:pull"}
    basic, bearer = parse_challenges('Basic realm="x \\"y\\"", Bearer realm="https://t",service=s')
    assert (basic.scheme, basic.params["realm"]) == ("basic", 'x "y"')
    assert (bearer.scheme, dict(bearer.params)) == ("bearer", {"realm": "https://t", "service": "s"})
    assert parse_challenges("") == []


def test_token_lifetime_takes_token_or_access_token_and_defaults_to_60_seconds() -> None:
    assert token_lifetime({"token": "t", "expires_in": 300}) == ("t", 300.0)
    assert token_lifetime({"access_token": "a"}) == ("a", DEFAULT_TOKEN_SECONDS)
    assert token_lifetime({"token": "t", "expires_in": 0}) == ("t", DEFAULT_TOKEN_SECONDS)
    with pytest.raises(RegistryAuthError, match="without a token"):
        token_lifetime({"expires_in": 5})


# -- against real registries -------------------------------------------------------------
def _config(user: str, password: str, key: str) -> Keyring:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return Keyring().add_config({"auths": {key: {"auth": auth}}})


@pytest.fixture
def plain(tmp_path: Any) -> Iterator[LocalRegistry]:
    """The registry tests push to; the authenticated ones serve its storage."""
    reg, proc = start_registry(str(tmp_path))
    try:
        yield reg
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def tokens(tmp_path: Any) -> Iterator[TokenServer]:
    with token_server(TokenServer(Signer(str(tmp_path)), users={"alice": "s3cret"})) as ts:
        yield ts


@pytest.fixture
def secured(tmp_path: Any, plain: LocalRegistry, tokens: TokenServer) -> Iterator[LocalRegistry]:
    with token_registry(str(tmp_path), plain.storage, tokens) as reg:
        yield reg


def _layer(text: bytes = b"hello") -> bytes:
    return tar_bytes({"etc": None, "etc/greeting": text})


pytestmark = needs_registry


@pytest.mark.e2e
def test_an_anonymous_pull_follows_the_token_flow_and_reuses_the_token(
    plain: LocalRegistry, secured: LocalRegistry, tokens: TokenServer, tmp_path: Any
) -> None:
    digest = push_image(plain, "public/app", "1", [_layer()], {"Cmd": ["true"]})
    now = [0.0]
    puller = RegistryPuller(auth=RegistryAuth(clock=lambda: now[0]))
    store = ImageStore(str(tmp_path / "store"))
    assert puller(store, f"{secured.host}/public/app:1") == digest
    assert tokens.requests == [{"scope": "repository:public/app:pull", "user": None, "service": SERVICE}]
    puller(ImageStore(str(tmp_path / "other")), f"{secured.host}/public/app:1")
    assert len(tokens.requests) == 1  # the token (expires_in 300) served the manifest, config, layer, and again
    now[0] = 301.0  # the token ran out: a new one
    puller(ImageStore(str(tmp_path / "third")), f"{secured.host}/public/app:1")
    assert len(tokens.requests) == 2


@pytest.mark.e2e
def test_credentials_from_a_dockerconfigjson_pull_a_private_image(
    plain: LocalRegistry, secured: LocalRegistry, tokens: TokenServer, tmp_path: Any
) -> None:
    digest = push_image(plain, "private/app", "1", [_layer(b"secret")], {})
    store = ImageStore(str(tmp_path / "store"))
    image = f"{secured.host}/private/app:1"
    with pytest.raises(ImagePullError) as anonymous:
        ensure_image(store, image, "IfNotPresent", RegistryPuller())
    assert anonymous.value.reason == "ErrImagePull"
    assert "401 Unauthorized" in str(anonymous.value) and image in str(anonymous.value)
    keys = _config("alice", "s3cret", f"http://{secured.host}")
    assert ensure_image(store, image, "IfNotPresent", RegistryPuller(), keys) == digest
    assert {"scope": "repository:private/app:pull", "user": "alice", "service": SERVICE} in tokens.requests


@pytest.mark.e2e
def test_wrong_credentials_fail_with_the_token_servers_401(
    plain: LocalRegistry, secured: LocalRegistry, tmp_path: Any
) -> None:
    push_image(plain, "private/app", "1", [_layer()], {})
    puller = RegistryPuller()
    image = f"{secured.host}/private/app:1"
    ensure_image(ImageStore(str(tmp_path / "ok")), image, None, puller, _config("alice", "s3cret", secured.host))
    # The same user with a wrong password never borrows the token the right one got.
    keys = _config("alice", "wrong", secured.host)
    with pytest.raises(ImagePullError) as err:
        ensure_image(ImageStore(str(tmp_path / "s")), image, None, puller, keys)
    assert err.value.reason == "ErrImagePull"
    assert "401 Unauthorized" in str(err.value) and "invalid username or password" in str(err.value)


@pytest.mark.e2e
def test_a_basic_challenge_is_answered_with_the_credentials(plain: LocalRegistry, tmp_path: Any) -> None:
    digest = push_image(plain, "team/app", "1", [_layer()], {})
    good = "Basic " + base64.b64encode(b"bob:pw").decode()

    def gate(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        if headers.get("authorization") != good:
            return 401, {"WWW-Authenticate": 'Basic realm="sigma-test"'}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'
        return None

    with front(Front(plain.base, gate)) as f:
        host = f.url.removeprefix("http://")
        with pytest.raises(ImagePullError, match="401 Unauthorized"):
            ensure_image(ImageStore(str(tmp_path / "a")), f"{host}/team/app:1", None, RegistryPuller())
        keys = _config("bob", "pw", host)
        store = ImageStore(str(tmp_path / "b"))
        assert ensure_image(store, f"{host}/team/app:1", None, RegistryPuller(), keys) == digest


@pytest.mark.e2e
@pytest.mark.parametrize(("status", "text"), [(429, "429 Too Many Requests"), (500, "500 Internal Server Error")])
def test_a_registry_refusing_is_an_image_pull_error_with_its_own_words(
    plain: LocalRegistry, tmp_path: Any, status: int, text: str
) -> None:
    push_image(plain, "app", "1", [_layer()], {})
    body = json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "pull rate limit"}]}).encode()
    refuse = Front(plain.base, lambda m, p, h: (status, {"Content-Type": "application/json"}, body))
    with front(refuse) as f, pytest.raises(ImagePullError) as err:
        ensure_image(ImageStore(str(tmp_path / "s")), f"{f.url[7:]}/app:1", None, RegistryPuller())
    assert err.value.reason == "ErrImagePull"
    assert text in str(err.value) and "TOOMANYREQUESTS pull rate limit" in str(err.value)


@pytest.mark.e2e
def test_a_manifest_whose_digest_does_not_match_is_refused_naming_both(plain: LocalRegistry, tmp_path: Any) -> None:
    pinned = push_image(plain, "app", "1", [_layer()], {})
    forged = push_image(plain, "app", "2", [_layer(b"evil")], {})

    def swap(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        if path.endswith(f"/manifests/{pinned}"):  # answer the pinned digest with another manifest
            with open(plain.blob_data_path(forged), "rb") as fh:
                return 200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, fh.read()
        return None

    store = ImageStore(str(tmp_path / "s"))
    with front(Front(plain.base, swap)) as f, pytest.raises(DigestMismatch) as err:
        RegistryPuller()(store, f"{f.url[7:]}/app@{pinned}")
    assert pinned in str(err.value) and forged in str(err.value)
    assert store.refs() == {}


@pytest.mark.e2e
def test_a_blob_redirect_to_another_host_gets_no_authorization(
    plain: LocalRegistry, secured: LocalRegistry, tmp_path: Any
) -> None:
    layer = _layer(b"stored elsewhere")
    digest = push_image(plain, "private/app", "1", [layer], {})
    with front(Front(plain.base)) as storage:

        def redirect(method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
            m = re.search(r"/blobs/(sha256:[0-9a-f]+)$", path)
            if m and headers.get("authorization"):  # authorized at the registry: off to the storage
                return 307, {"Location": f"{storage.url}/v2/private/app/blobs/{m.group(1)}?sig=presigned"}, b""
            return None

        with front(Front(secured.base, redirect)) as reg:
            keys = _config("alice", "s3cret", reg.url[7:])
            store = ImageStore(str(tmp_path / "s"))
            assert RegistryPuller()(store, f"{reg.url[7:]}/private/app:1", keys) == digest
    assert storage.seen, "the blobs came from the storage host"
    assert all("authorization" not in headers for _, _, headers in storage.seen)
    assert any("authorization" in headers for _, path, headers in reg.seen if "/blobs/" in path)


@pytest.mark.e2e
def test_short_names_go_to_the_docker_io_mirror(plain: LocalRegistry, tmp_path: Any) -> None:
    digest = push_image(plain, "library/busybox", "1.36", [_layer()], {})
    user = push_image(plain, "user/app", "latest", [_layer(b"u")], {})
    puller = RegistryPuller(mirrors={"docker.io": [plain.base]})
    store = ImageStore(str(tmp_path / "s"))
    assert puller(store, "busybox:1.36") == digest
    assert puller(store, "user/app") == user
    assert store.resolve("docker.io/library/busybox:1.36") == digest
    # A mirror that fails passes the pull on to the next endpoint; the last one's error is the pull's.
    broken = RegistryPuller(mirrors={"docker.io": ["http://127.0.0.1:9", plain.base]})
    assert broken(ImageStore(str(tmp_path / "t")), "docker.io/library/busybox:1.36") == digest


@pytest.mark.e2e
def test_short_names_resolve_on_a_configured_default_registry(plain: LocalRegistry, tmp_path: Any) -> None:
    digest = push_image(plain, "tools/app", "2", [_layer()], {})
    store = ImageStore(str(tmp_path / "s"))
    assert RegistryPuller(default_registry=plain.host)(store, "tools/app:2") == digest
