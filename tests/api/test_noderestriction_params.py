"""NodeRestriction decides on exactly the query parameters the handler serves: a repeated
single-valued parameter is refused (400 naming it) instead of one copy being authorised and
the other served. Against a real `sigma master` with authentication on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.auth_fixtures import AuthMaster, namespace, pod, start_auth_master

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthMaster]:
    yield from start_auth_master(Path(tmp_path_factory.mktemp("nrparams")), "--no-controllers")


@pytest.fixture(scope="module")
def admin(master: AuthMaster) -> Iterator[httpx.Client]:
    with master.client("admin") as c:
        namespace(c, name="team-a")
        for name, node in (("on-n1", "n1"), ("on-n2", "n2")):
            assert c.post("/api/v1/namespaces/team-a/pods", json=pod(name, node)).status_code == 201
        yield c


@pytest.fixture(scope="module")
def n1(master: AuthMaster, admin: httpx.Client) -> Iterator[httpx.Client]:
    bootstrap = master.token_create()
    with httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {bootstrap}"}) as joiner:
        answer = joiner.post("/sigma/v1/join", json={"nodeName": "n1"}).json()
    with httpx.Client(base_url=master.url, headers={"Authorization": f"Bearer {answer['token']}"},
                      timeout=10) as c:
        yield c


MINE = "fieldSelector=spec.nodeName%3Dn1"


def _names(r: httpx.Response) -> list[str]:
    return sorted(p["metadata"]["name"] for p in r.json()["items"])


def test_the_node_selector_alone_lists_only_the_nodes_pods(n1: httpx.Client) -> None:
    r = n1.get(f"/api/v1/pods?{MINE}")
    assert r.status_code == 200 and _names(r) == ["on-n1"]


@pytest.mark.parametrize("query", [f"{MINE}&fieldSelector=", f"fieldSelector=&{MINE}",
                                   f"{MINE}&fieldSelector=spec.nodeName%3Dn2"])
def test_a_repeated_field_selector_is_refused_not_half_authorised(n1: httpx.Client, query: str) -> None:
    r = n1.get(f"/api/v1/pods?{query}")
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.json()["reason"] == "BadRequest" and '"fieldSelector"' in r.json()["message"]


def test_a_watch_with_a_repeated_field_selector_streams_nothing(n1: httpx.Client) -> None:
    with n1.stream("GET", f"/api/v1/pods?watch=true&timeoutSeconds=2&{MINE}&fieldSelector=") as r:
        body = r.read()
    assert r.status_code == 400, body[:300]
    assert b"on-n2" not in body and b"fieldSelector" in body


@pytest.mark.parametrize("param", ["labelSelector", "resourceVersion", "watch", "limit", "continue",
                                   "timeoutSeconds"])
def test_any_single_valued_parameter_given_twice_is_a_bad_request(admin: httpx.Client, param: str) -> None:
    r = admin.get(f"/api/v1/namespaces/team-a/pods?{param}=1&{param}=2")
    assert r.status_code == 400 and f'"{param}"' in r.json()["message"], r.text


def test_list_parameters_may_repeat(admin: httpx.Client) -> None:
    r = admin.post("/api/v1/namespaces/team-a/pods?dryRun=All&dryRun=All", json=pod("dry"))
    assert r.status_code in (200, 201), r.text


def test_a_list_parameter_repeated_with_different_values_is_refused(admin: httpx.Client) -> None:
    r = admin.post("/api/v1/namespaces/team-a/pods?dryRun=All&dryRun=", json=pod("ambiguous"))
    assert r.status_code == 400 and '"dryRun"' in r.json()["message"], r.text
    assert admin.get("/api/v1/namespaces/team-a/pods/ambiguous").status_code == 404
