"""The container environment as kubelet makes it: envFrom, env, valueFrom, $(VAR)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sigma.agent.volumes.env import ConfigError, container_env, expand, valid_env_name
from sigma.agent.volumes.sources import Sources

POD: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"},
                 "annotations": {"team": "a"}},
    "spec": {"nodeName": "n1", "serviceAccountName": "robot",
             "containers": [{"name": "main", "resources": {"limits": {"cpu": "1500m", "memory": "64Mi"},
                                                           "requests": {"cpu": "250m"}}}]},
}
CM = {"data": {"color": "blue", "size": "L", "bad=key": "x", "1ok": "digits first are fine now"}}
SECRET = {"data": {"password": base64.b64encode(b"s3cret").decode()}}


def sources(**kw: Any) -> Sources:
    return Sources(config_maps={"cfg": CM, **kw.pop("cms", {})}, secrets={"creds": SECRET},
                   pod_ip="10.0.0.5", host_ip="192.168.1.2", node_cpu_millis=4000,
                   node_memory_bytes=8 * 2**30, **kw)


def env_of(container: dict[str, Any], src: Sources | None = None) -> dict[str, str]:
    return container_env(POD, {"name": "main", **container}, src or sources()).env


@pytest.mark.parametrize("text,expected", [
    ("$(A)-$(B)", "1-2"),
    ("$(MISSING)", "$(MISSING)"),
    ("$$(A)", "$(A)"),
    ("$$", "$"),
    ("a$b", "a$b"),
    ("$(A", "$(A"),
    ("end$", "end$"),
])
def test_expand_follows_kubernetes(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expected


def test_env_from_with_prefix_then_env_overrides_and_expands_in_order() -> None:
    out = container_env(POD, {"name": "main", "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                              "env": [{"name": "CFG_color", "value": "red"},
                                      {"name": "BOTH", "value": "$(CFG_color)/$(CFG_size)/$(LATER)"},
                                      {"name": "LATER", "value": "x"}],
                              "command": ["echo", "$(BOTH)"], "args": ["$$(BOTH)", "$(LATER)"]}, sources())
    assert out.env["CFG_color"] == "red" and out.env["CFG_size"] == "L"
    assert out.env["BOTH"] == "red/L/$(LATER)"  # only what is defined before
    assert out.command == ["echo", "red/L/$(LATER)"] and out.args == ["$(BOTH)", "x"]
    assert out.env["CFG_1ok"] == "digits first are fine now"
    assert "CFG_bad=key" not in out.env
    assert out.warnings == [("InvalidEnvironmentVariableNames",
                             "Keys [CFG_bad=key] from the EnvFrom configMap shop/cfg were skipped since they are "
                             "considered invalid environment variable names.")]


def test_value_from_config_map_secret_and_downward_api() -> None:
    env = env_of({"env": [
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
        {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['team']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
    ]})
    assert env == {"COLOR": "blue", "PASS": "s3cret", "NAME": "web", "NS": "shop", "UID": "u-1", "APP": "web",
                   "TEAM": "a", "NODE": "n1", "SA": "robot", "IP": "10.0.0.5", "HOST": "192.168.1.2",
                   "CPU": "2", "CPU_M": "250", "MEM_MI": "64"}


def test_unset_limit_is_the_nodes_allocatable() -> None:
    pod = {**POD, "spec": {**POD["spec"], "containers": [{"name": "main"}]}}
    out = container_env(pod, {"name": "main", "env": [
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Gi"}}}]},
        sources())
    assert out.env["MEM"] == "8"


def test_missing_references_stop_the_container_unless_optional() -> None:
    with pytest.raises(ConfigError, match='configmap "nope" not found') as err:
        env_of({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]})
    assert err.value.reason == "CreateContainerConfigError"
    with pytest.raises(ConfigError, match="couldn't find key missing in Secret shop/creds"):
        env_of({"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "missing"}}}]})
    with pytest.raises(ConfigError, match='secret "gone" not found'):
        env_of({"envFrom": [{"secretRef": {"name": "gone"}}]})
    env = env_of({"envFrom": [{"secretRef": {"name": "gone", "optional": True}}],
                  "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k",
                                                                          "optional": True}}},
                          {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k",
                                                                       "optional": True}}}]})
    assert env == {}  # absent optional references define nothing


def test_unsupported_field_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported fieldPath"):
        env_of({"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}]})


def test_base_variables_come_first_and_are_overridden() -> None:
    out = container_env(POD, {"name": "main", "env": [{"name": "KUBERNETES_SERVICE_PORT", "value": "6443"},
                                                      {"name": "URL", "value": "$(KUBERNETES_SERVICE_HOST)"}]},
                        sources(), base={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"})
    assert out.env == {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "6443",
                       "URL": "10.96.0.1"}


@pytest.mark.parametrize("name,ok", [("A_B", True), ("a.b-c", True), ("1x", True), ("", False), ("a=b", False),
                                     ("tab\there", False)])
def test_valid_env_name(name: str, ok: bool) -> None:
    assert valid_env_name(name) is ok
