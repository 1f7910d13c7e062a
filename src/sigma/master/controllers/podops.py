"""What the pod-owning controllers (ReplicaSet, DaemonSet) do to one pod, written once."""

from __future__ import annotations

from typing import Any

from sigma.api.errors import ApiError
from sigma.client.base import ApiClient
from sigma.client.events import record_event


def delete_owned_pod(client: ApiClient, owner: dict[str, Any], pod: dict[str, Any], component: str) -> None:
    """Delete `pod` (only the one read: the uid precondition) and say so on its owner. Gone
    already or replaced meanwhile: nothing to say."""
    m = pod["metadata"]
    try:
        client.delete("pods", m["name"], m["namespace"], preconditions_uid=m.get("uid"))
    except ApiError as err:
        if err.code not in (404, 409):
            raise
        return
    record_event(client, owner, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}", component)
