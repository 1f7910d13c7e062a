"""Image references read as Docker reads them, and the endpoints a registry is pulled from."""

from __future__ import annotations

import pytest

from sigma.agent.image_reference import InvalidReference, endpoints, parse_image, parse_mirrors

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("image", "want"), [
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("busybox", "docker.io/library/busybox:latest"),
    ("user/app", "docker.io/user/app:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
    ("localhost:5000/x", "localhost:5000/x:latest"),
    ("localhost/x:1", "localhost/x:1"),
    ("quay.io/team/sub/app:v1.2-rc_3", "quay.io/team/sub/app:v1.2-rc_3"),
    ("127.0.0.1:5000/a__b/c-d", "127.0.0.1:5000/a__b/c-d:latest"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}"),
    (f"reg.local/app:1@{DIGEST}", f"reg.local/app@{DIGEST}"),
])
def test_names_are_qualified_as_docker_does(image: str, want: str) -> None:
    assert str(parse_image(image)) == want


def test_a_digest_is_what_is_fetched_even_beside_a_tag() -> None:
    ref = parse_image(f"reg.local/app:1@{DIGEST}")
    assert (ref.tag, ref.digest, ref.ref) == ("1", DIGEST, DIGEST)
    assert parse_image("reg.local/app").ref == "latest"


def test_a_default_registry_takes_short_names_without_library() -> None:
    assert str(parse_image("busybox:1", default_registry="127.0.0.1:5000")) == "127.0.0.1:5000/busybox:1"
    assert str(parse_image("quay.io/x", default_registry="127.0.0.1:5000")) == "quay.io/x:latest"


@pytest.mark.parametrize(("image", "why"), [
    ("Busybox", "must be lowercase"),
    ("busybox:", "invalid tag"),
    ("busybox:-x", "invalid tag"),
    ("busybox@sha256:abc", "invalid digest"),
    ("busybox@md5:" + "a" * 32, "invalid digest"),
    ("a//b", "invalid reference format"),
    ("", "invalid reference format"),
    (" busybox", "invalid reference format"),
    ("bad_host:5000:1/x", "invalid registry"),
    ("a/" + "b" * 260, "not be more than 255"),
])
def test_bad_references_are_refused_naming_them(image: str, why: str) -> None:
    with pytest.raises(InvalidReference) as err:
        parse_image(image)
    assert f'"{image}"' in str(err.value) and why in str(err.value)


def test_endpoints_are_the_mirrors_then_the_registry() -> None:
    mirrors = parse_mirrors(["docker.io=http://127.0.0.1:5000", "index.docker.io=mirror.local", "quay.io=q.local:8443"])
    assert mirrors == {"docker.io": ["http://127.0.0.1:5000", "mirror.local"], "quay.io": ["q.local:8443"]}
    assert endpoints("docker.io", mirrors) == ["http://127.0.0.1:5000", "https://mirror.local",
                                               "https://registry-1.docker.io"]
    assert endpoints("localhost:5000", mirrors) == ["http://localhost:5000"]
    assert endpoints("reg.local", {}, plain_http=True) == ["http://reg.local"]
    with pytest.raises(ValueError, match="REGISTRY=MIRROR"):
        parse_mirrors(["docker.io"])
