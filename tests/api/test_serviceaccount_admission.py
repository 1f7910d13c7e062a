"""What the ServiceAccount admission does to a new pod (pure)."""

from __future__ import annotations

from typing import Any

from sigma.api.serviceaccount_admission import MOUNT_PATH, admit_pod


def pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}], **spec}}


def test_the_default_account_and_its_token_volume() -> None:
    p = pod()
    admit_pod(p, None, "x1y2z")
    spec = p["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    volume = spec["volumes"][-1]
    assert volume["name"] == "kube-api-access-x1y2z"
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    for c in [*spec["containers"], *spec["initContainers"]]:
        assert c["volumeMounts"] == [{"name": "kube-api-access-x1y2z", "readOnly": True, "mountPath": MOUNT_PATH}]


def test_automount_false_on_the_pod_or_its_account() -> None:
    p = pod(automountServiceAccountToken=False)
    admit_pod(p, {"automountServiceAccountToken": True}, "a")
    assert "volumes" not in p["spec"]
    q = pod(serviceAccountName="web")
    admit_pod(q, {"automountServiceAccountToken": False}, "a")
    assert "volumes" not in q["spec"] and q["spec"]["serviceAccountName"] == "web"
    r = pod(automountServiceAccountToken=True)
    admit_pod(r, {"automountServiceAccountToken": False}, "a")
    assert len(r["spec"]["volumes"]) == 1  # the pod's own setting wins


def test_a_pod_mounting_its_own_volume_there_keeps_it() -> None:
    p = pod()
    p["spec"]["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": MOUNT_PATH}]
    admit_pod(p, None, "a")
    assert "volumes" not in p["spec"]
