"""ConfigMap and Secret rules, field for field as Kubernetes words them (pure functions)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sigma.api.configsecret_validation import (
    MAX_SIZE_B,
    config_key_errors,
    default_secret,
    validate_config_map,
    validate_secret,
)
from sigma.api.errors import ApiError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def fields(causes: list[Any]) -> dict[str, str]:
    return {c.field: c.message for c in causes}


@pytest.mark.parametrize("key", ["a", "key.name", "KEY_NAME", "key-name", ".hidden", "a..b"])
def test_valid_config_keys(key: str) -> None:
    assert config_key_errors(key) == []


@pytest.mark.parametrize("key", ["", "a/b", "a b", ".", "..", "..data", "x" * 254])
def test_invalid_config_keys(key: str) -> None:
    assert config_key_errors(key)


def test_a_bad_key_names_its_field() -> None:
    causes = fields(validate_config_map({"data": {"a/b": "x"}}, None))
    assert causes["data[a/b]"].startswith('Invalid value: "a/b": a valid config key must consist of')


def test_a_key_in_data_and_binary_data() -> None:
    causes = fields(validate_config_map({"data": {"k": "x"}, "binaryData": {"k": b64("y")}}, None))
    assert causes["data[k]"] == 'Invalid value: "k": duplicate of key present in binaryData'


def test_one_mebibyte_at_most() -> None:
    assert validate_config_map({"data": {"k": "x" * (MAX_SIZE_B - 1)}}, None) == []
    causes = validate_config_map({"data": {"k": "x" * MAX_SIZE_B}}, None)
    assert [(c.field, c.message) for c in causes] == [("", "Too long: may not be more than 1048576 bytes")]
    secret = {"type": "Opaque", "data": {"k": base64.b64encode(b"\0" * MAX_SIZE_B).decode()}}
    assert fields(validate_secret(secret, None)) == {"data": "Too long: may not be more than 1048576 bytes"}


def test_immutable_config_maps_keep_their_data() -> None:
    old = {"data": {"k": "v"}, "immutable": True}
    assert validate_config_map({"data": {"k": "v"}, "immutable": True}, old) == []
    causes = fields(validate_config_map({"data": {"k": "w"}}, old))
    assert causes == {"immutable": "Forbidden: field is immutable when `immutable` is set",
                      "data": "Forbidden: field is immutable when `immutable` is set"}
    assert validate_config_map({"data": {"k": "w"}, "immutable": True}, {"data": {"k": "v"}}) == []


def test_string_data_is_merged_into_data_and_wins() -> None:
    obj: dict[str, Any] = {"data": {"a": b64("1"), "b": b64("2")}, "stringData": {"b": "two", "c": "three"}}
    default_secret(obj)
    assert obj == {"type": "Opaque", "data": {"a": b64("1"), "b": b64("two"), "c": b64("three")}}


def test_data_that_is_not_base64_is_a_bad_request_without_the_value() -> None:
    with pytest.raises(ApiError) as err:
        default_secret({"data": {"k": "not base64!!"}})
    assert err.value.code == 400 and "not base64" not in str(err.value.status())


@pytest.mark.parametrize("stype,data,missing", [
    ("kubernetes.io/tls", {"tls.crt": b64("c")}, ["data[tls.key]"]),
    ("kubernetes.io/ssh-auth", {}, ["data[ssh-privatekey]"]),
    ("kubernetes.io/dockerconfigjson", {}, ["data[.dockerconfigjson]"]),
    ("kubernetes.io/basic-auth", {}, ["data[username]", "data[password]"]),
    ("bootstrap.kubernetes.io/token", {"token-id": b64("abcdef")}, ["data[token-secret]"]),
])
def test_types_require_their_keys(stype: str, data: dict[str, str], missing: list[str]) -> None:
    causes = validate_secret({"type": stype, "data": data}, None)
    assert [c.field for c in causes] == missing and all(c.message == "Required value" for c in causes)


def test_basic_auth_needs_only_one_of_its_keys() -> None:
    assert validate_secret({"type": "kubernetes.io/basic-auth", "data": {"password": b64("p")}}, None) == []


def test_docker_config_must_be_json_and_is_not_echoed() -> None:
    causes = validate_secret({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("{x")}},
                             None)
    assert [c.field for c in causes] == ["data[.dockerconfigjson]"] and "{x" not in causes[0].message


def test_service_account_token_secrets_name_their_account() -> None:
    causes = fields(validate_secret({"type": "kubernetes.io/service-account-token"}, None))
    assert causes == {"metadata.annotations[kubernetes.io/service-account.name]": "Required value"}


def test_the_type_is_fixed_and_immutable_data_stays() -> None:
    old = {"type": "Opaque", "data": {"k": b64("v")}, "immutable": True}
    causes = fields(validate_secret({"type": "kubernetes.io/tls", "data": {"k": b64("w")}, "immutable": True}, old))
    assert causes["type"] == 'Invalid value: "kubernetes.io/tls": field is immutable'
    assert causes["data"] == "Forbidden: field is immutable when `immutable` is set"
