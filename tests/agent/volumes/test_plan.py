"""What each volume holds: keys, items, modes, optional, projected sources, emptyDir."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from sigma.agent.volumes.plan import FileSpec, VolumeError, plan_volume, plan_volumes
from sigma.agent.volumes.sources import Sources

POD: dict[str, Any] = {"metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"b": "2", "a": "1"}},
                       "spec": {"containers": [{"name": "main", "resources": {"limits": {"memory": "1Gi"}}}]}}
CM = {"data": {"a.conf": "A", "b.conf": "B"}, "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()}}
SECRET = {"data": {"user": base64.b64encode(b"admin").decode()}, "immutable": True}


def plan(volume: dict[str, Any], **kw: Any) -> Any:
    src = Sources(config_maps={"cfg": CM}, secrets={"creds": SECRET}, **kw)
    return plan_volume(POD, {"name": "v", **volume}, src)


def test_config_map_keys_with_default_mode_and_binary_data() -> None:
    p = plan({"configMap": {"name": "cfg"}})
    assert p.kind == "configMap" and not p.immutable and not p.secret
    assert p.files == (FileSpec("a.conf", b"A", 0o644), FileSpec("b.conf", b"B", 0o644),
                       FileSpec("blob", b"\x00\x01", 0o644))


def test_items_choose_keys_paths_and_modes() -> None:
    items = [{"key": "a.conf", "path": "conf/a"}, {"key": "b.conf", "path": "b", "mode": 0o600}]
    p = plan({"configMap": {"name": "cfg", "defaultMode": 0o440, "items": items}})
    assert p.files == (FileSpec("b", b"B", 0o600), FileSpec("conf/a", b"A", 0o440))


def test_secret_is_marked_secret_and_immutable_when_the_object_is() -> None:
    p = plan({"secret": {"secretName": "creds", "defaultMode": 0o400}})
    assert p.secret and p.immutable and p.files == (FileSpec("user", b"admin", 0o400),)


def test_missing_object_or_key_fails_the_mount_unless_optional() -> None:
    failed = 'MountVolume.SetUp failed for volume "v" : configmap "nope" not found'
    with pytest.raises(VolumeError, match=re.escape(failed)):
        plan({"configMap": {"name": "nope"}})
    with pytest.raises(VolumeError, match="references non-existent configmap key: zz"):
        plan({"configMap": {"name": "cfg", "items": [{"key": "zz", "path": "zz"}]}})
    assert plan({"secret": {"secretName": "nope", "optional": True}}).files == ()
    assert plan({"configMap": {"name": "cfg", "optional": True, "items": [{"key": "zz", "path": "zz"}]}}).files == ()


@pytest.mark.parametrize("path", ["/etc/passwd", "../up", "a/../../up", "..data/x"])
def test_paths_stay_inside_the_volume(path: str) -> None:
    with pytest.raises(VolumeError, match="invalid path"):
        plan({"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": path}]}})


def test_projected_token_ca_and_namespace_as_admission_mounts_them() -> None:
    from sigma.api.serviceaccount_admission import api_access_volume

    volume = api_access_volume("x1y2z")
    src = Sources(config_maps={"kube-root-ca.crt": {"data": {"ca.crt": "PEM"}}}, token="ey.tok")
    p = plan_volume(POD, volume, src)
    assert p.kind == "projected" and p.secret and not p.immutable
    assert p.files == (FileSpec("ca.crt", b"PEM", 0o644), FileSpec("namespace", b"shop", 0o644),
                       FileSpec("token", b"ey.tok", 0o644))
    with pytest.raises(VolumeError, match="token is not issued yet"):
        plan_volume(POD, volume, Sources(config_maps={"kube-root-ca.crt": {"data": {"ca.crt": "PEM"}}}))


def test_downward_api_files_of_labels_and_resources() -> None:
    p = plan({"downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "main", "resource": "limits.memory",
                                             "divisor": "1Mi"}, "mode": 0o400}]}})
    assert p.files == (FileSpec("labels", b'a="1"\nb="2"', 0o644), FileSpec("mem", b"1024", 0o400))


def test_empty_dir_medium_and_size_limit() -> None:
    assert plan({"emptyDir": {}}).kind == "emptyDir"
    p = plan({"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})
    assert (p.medium, p.size_limit) == ("Memory", 64 * 2**20)


def test_unsupported_volume_types_say_so() -> None:
    with pytest.raises(VolumeError, match="volume type hostPath is not supported"):
        plan({"hostPath": {"path": "/"}})


def test_plan_volumes_covers_every_volume() -> None:
    pod = {**POD, "spec": {**POD["spec"], "volumes": [{"name": "a", "emptyDir": {}},
                                                      {"name": "b", "configMap": {"name": "cfg"}}]}}
    assert [p.name for p in plan_volumes(pod, Sources(config_maps={"cfg": CM}))] == ["a", "b"]

