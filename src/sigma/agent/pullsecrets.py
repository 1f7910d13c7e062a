"""The credentials a pod's images are pulled with: its imagePullSecrets, read from the API
when a pull starts (the node authorizer lets an agent read the Secrets its pods name).

A Secret that is missing, unreadable, or not of a docker type is skipped with a warning,
and the pull goes on with the rest (the node's file, then anonymous), as kubelet does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sigma.agent.pull_credentials import BadCredentials, Keyring, keyring_from_secret

log = logging.getLogger("sigma.agent.pullsecrets")

SecretGetter = Callable[[str, str], dict[str, Any]]  # (namespace, name) -> the Secret


def secret_names(pod: dict[str, Any]) -> list[str]:
    return [str(r["name"]) for r in (pod.get("spec") or {}).get("imagePullSecrets") or []
            if isinstance(r, dict) and r.get("name")]


def pod_keyring(get_secret: SecretGetter, pod: dict[str, Any]) -> Keyring:
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    out = Keyring()
    for name in secret_names(pod):
        try:
            out = out.extend(keyring_from_secret(get_secret(namespace, name)))
        except BadCredentials as err:
            log.warning("image pull secret %s/%s is not used: %s", namespace, name, err)
        except Exception as err:  # not found, forbidden, the master away: pull without it
            log.warning("image pull secret %s/%s cannot be read (%s: %s); pulling without it",
                        namespace, name, type(err).__name__, err)
    return out


def api_secret_getter(client: Any) -> SecretGetter:
    """Secrets through the agent's API client."""
    def get(namespace: str, name: str) -> dict[str, Any]:
        return dict(client.get("secrets", name, namespace))
    return get
