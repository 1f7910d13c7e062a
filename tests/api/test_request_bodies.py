"""Malformed and hostile request bodies get a 4xx, cost the master little and store nothing:
YAML alias bombs, deep nesting, recursive aliases, duplicate fields, values that are not
objects, binary garbage, invalid UTF-8, wrong content types, huge numbers. Against a real
`sigma master` (tests/api/conftest.py), whose memory is read from /proc."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.rss import rss_bytes
from tests.harness import MasterProcess

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024


def alias_bomb(levels: int) -> bytes:
    """Each level is a list of nine aliases of the one before: 9**levels strings once expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]")
    return ("\n".join(lines) + "\n").encode()


def pid(master: MasterProcess) -> int:
    assert master.process is not None
    return master.process.pid


@pytest.mark.parametrize(("path", "ctype"), [("/api/v1/namespaces/{ns}/pods", "application/yaml"),
                                             ("/api/v1/nodes/bomb-node", "application/apply-patch+yaml")])
def test_a_yaml_alias_bomb_is_refused_before_it_expands(master: MasterProcess, http: httpx.Client, ns: str,
                                                        path: str, ctype: str) -> None:
    body = alias_bomb(7)  # about 400 bytes, 4.8 million strings expanded
    assert len(body) < 600
    before = rss_bytes(pid(master))
    method = "PATCH" if "apply" in ctype else "POST"
    r = http.request(method, path.format(ns=ns), content=body, headers={"Content-Type": ctype}, timeout=120)
    grown = rss_bytes(pid(master)) - before
    assert r.status_code == 400, r.text[:300]
    assert r.json()["reason"] == "BadRequest" and "expands to more than" in r.json()["message"]
    assert grown < 64 * MiB, f"the master grew by {grown / MiB:.0f} MiB decoding {len(body)} bytes"
    assert http.get("/readyz").status_code == 200


def test_aliases_that_stay_small_are_accepted(http: httpx.Client, ns: str) -> None:
    body = b"""apiVersion: v1
kind: Pod
metadata: {name: anchored, labels: &labels {app: web}}
spec:
  containers:
  - {name: a, image: busybox, env: &env [{name: A, value: "1"}]}
  - {name: b, image: busybox, env: *env}
"""
    r = http.post(f"/api/v1/namespaces/{ns}/pods", content=body, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["containers"][1]["env"] == [{"name": "A", "value": "1"}]


@pytest.mark.parametrize("body", [b"- " * 1500 + b"x", b"[" * 1200 + b"]" * 1200,
                                  b"".join(b"  " * i + b"a:\n" for i in range(1000)) + b"  " * 1000 + b"a: 1\n"],
                         ids=["block-sequence", "flow", "block-mapping"])
def test_yaml_nested_a_thousand_deep_is_a_bad_request(http: httpx.Client, ns: str, body: bytes) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", content=body, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 400, r.text[:300]
    assert r.json()["kind"] == "Status" and r.json()["reason"] == "BadRequest"


def test_json_nested_deep_is_a_bad_request(http: httpx.Client, ns: str) -> None:
    for depth in (150, 900, 2000):
        body = b'{"metadata":' * depth + b"{}" + b"}" * depth
        r = http.post(f"/api/v1/namespaces/{ns}/pods", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (depth, r.text[:300])


@pytest.mark.parametrize(("body", "ctype", "code"), [
    (b"a: &a [*a]", "application/yaml", 400),                        # a recursive alias
    (b"metadata: {name: x}\nmetadata: {name: y}\n", "application/yaml", 400),  # a duplicate field
    (b"- just\n- a list\n", "application/yaml", 400),
    (b'"a string"', "application/json", 400),
    (b"42", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"\xff\xfe\x00garbage\x00\x01", "application/json", 400),
    (b"\xff\xfe\x00garbage\x00\x01", "application/yaml", 400),
    (b'{"metadata": {"name": "caf\xe9"}}', "application/json", 400),  # Latin-1, not UTF-8
    (b'{"spec": {"priority": 1e999}}', "application/json", 400),
    (b"spec: {priority: 99999999999999999999999999}", "application/yaml", 400),
    (b'{"metadata": {"name": "x"}}', "text/html", 415),
    (b'{"metadata": {"name": "x"}}', "application/x-www-form-urlencoded", 415),
    (b"\x0a\x03abc\xff\xff\xff", "application/vnd.kubernetes.protobuf", 400),
])
def test_malformed_bodies_are_a_4xx_and_store_nothing(http: httpx.Client, ns: str, body: bytes, ctype: str,
                                                      code: int) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", content=body, headers={"Content-Type": ctype})
    assert r.status_code == code, r.text[:300]
    assert r.json()["kind"] == "Status"
    assert http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"] == []


def test_a_duplicate_field_is_dropped_when_the_client_asks_to_ignore_unknown_fields(http: httpx.Client,
                                                                                   ns: str) -> None:
    body = b"metadata: {name: first}\nmetadata: {name: dup}\nspec: {containers: [{name: c, image: busybox}]}\n"
    r = http.post(f"/api/v1/namespaces/{ns}/pods?fieldValidation=Ignore", content=body,
                  headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201 and r.json()["metadata"]["name"] == "dup", r.text


_json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4),
                            max_leaves=20)
_bodies = st.one_of(st.binary(max_size=300),
                    st.text(max_size=300).map(str.encode),
                    _json_values.map(lambda v: json.dumps(v).encode()),
                    st.lists(st.sampled_from([b"- ", b"a: ", b"&x ", b"*x", b"[", b"]", b"{", b"}", b",", b"\n",
                                              b"  ", b"!!binary ", b"!!python/name:os.system", b"? ", b"|",
                                              b'"', b"1e999", b"---", b"<<: "]), max_size=60).map(b"".join))
_ctypes = st.sampled_from(["application/json", "application/yaml", "application/apply-patch+yaml",
                           "application/merge-patch+json", "application/json-patch+json",
                           "application/strategic-merge-patch+json", "application/vnd.kubernetes.protobuf",
                           "text/plain", ""])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_bodies, ctype=_ctypes, method=st.sampled_from(["POST", "PUT", "PATCH"]))
def test_no_body_makes_the_api_answer_5xx(master: MasterProcess, body: bytes, ctype: str, method: str) -> None:
    path = {"POST": "/api/v1/namespaces/default/pods", "PUT": "/api/v1/namespaces/default/pods/fuzz",
            "PATCH": "/api/v1/namespaces/default/pods/fuzz"}[method]
    headers = {"Content-Type": ctype} if ctype else {}
    r = httpx.request(method, f"{master.url}{path}", content=body, headers=headers, timeout=30)
    assert r.status_code < 500, (r.status_code, body[:200], ctype, r.text[:300])
