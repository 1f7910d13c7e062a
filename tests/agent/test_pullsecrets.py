"""A pod's imagePullSecrets read into a keyring: unreadable ones are skipped, never fatal."""

from __future__ import annotations

import base64
import json
from typing import Any

from sigma.agent.pullsecrets import pod_keyring, secret_names
from sigma.agent.registry_auth import Credential


def _docker_secret(user: str) -> dict[str, Any]:
    auth = base64.b64encode(f"{user}:pw".encode()).decode()
    config = json.dumps({"auths": {"reg.local": {"auth": auth}}}).encode()
    return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": base64.b64encode(config).decode()}}


def test_the_pods_secrets_are_read_from_its_namespace_in_order_skipping_bad_ones() -> None:
    secrets = {("team", "first"): _docker_secret("one"), ("team", "second"): _docker_secret("two"),
               ("team", "opaque"): {"type": "Opaque", "data": {}}}
    asked: list[tuple[str, str]] = []

    def get(namespace: str, name: str) -> dict[str, Any]:
        asked.append((namespace, name))
        if (namespace, name) not in secrets:
            raise LookupError(f'secrets "{name}" not found')
        return secrets[(namespace, name)]

    pod = {"metadata": {"namespace": "team"},
           "spec": {"imagePullSecrets": [{"name": "missing"}, {"name": "opaque"}, {"name": "first"},
                                         {"name": "second"}]}}
    ring = pod_keyring(get, pod)
    assert ring.lookup("reg.local", "app") == [Credential("one", "pw"), Credential("two", "pw")]
    assert asked == [("team", "missing"), ("team", "opaque"), ("team", "first"), ("team", "second")]
    assert secret_names({"spec": {}}) == [] and pod_keyring(get, {"spec": {}}).entries == []
