"""Joining a cluster: trade a bootstrap token for this node's own credential.

The agent posts its node name with the bootstrap token to the master's join endpoint and
writes what it gets back (its token, the cluster CA) as a kubeconfig in its state
directory, which is what it then uses: the bootstrap token, shared by every machine that
joins, is not kept. A later start with a kubeconfig already there reuses the credential.
"""

from __future__ import annotations

import base64
import os
import ssl
import time
from pathlib import Path
from typing import Any

import httpx

from sigma.client.http import HttpClient, api_error_from_status

JOIN_PATH = "/sigma/v1/join"
RETRY_FOR_S = 120.0  # the master may still be starting (sigma up starts the agent first)


def join(master: str, bootstrap_token: str, node_name: str, ca_file: str | None = None,
         retry_for: float = RETRY_FOR_S) -> dict[str, Any]:
    """The join answer: token, user, groups, caCertificate. Refusals raise ApiError at once;
    an unreachable master is retried for ``retry_for`` seconds."""
    deadline = time.monotonic() + retry_for
    delay = 0.2
    while True:
        try:
            resp = httpx.post(f"{master.rstrip('/')}{JOIN_PATH}", json={"nodeName": node_name},
                              headers={"Authorization": f"Bearer {bootstrap_token}"},
                              verify=ssl.create_default_context(cafile=ca_file) if ca_file else True, timeout=10)
        except httpx.TransportError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(2.0, delay * 2)
            continue
        if resp.status_code != 200:
            try:
                body: Any = resp.json()
            except ValueError:
                body = resp.text
            raise api_error_from_status(body, resp.status_code)
        answer: dict[str, Any] = resp.json()
        return answer


def write_node_kubeconfig(path: Path, master: str, answer: dict[str, Any]) -> None:
    ca = answer.get("caCertificate") or ""
    cluster = f"    server: {master}\n"
    if ca and master.startswith("https://"):
        cluster += f"    certificate-authority-data: {base64.b64encode(ca.encode()).decode()}\n"
    text = ("apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: sigma\n  cluster:\n{cluster}"
            f"users:\n- name: {answer['user']}\n  user:\n    token: {answer['token']}\n"
            f"contexts:\n- name: sigma\n  context:\n    cluster: sigma\n    user: {answer['user']}\n"
            "current-context: sigma\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def joined_client(master: str, bootstrap_token: str, node_name: str, state_dir: Path,
                  ca_file: str | None = None) -> HttpClient:
    """A client with this node's credential, joining first (always: a fresh bootstrap token
    means the operator wants a fresh credential)."""
    answer = join(master, bootstrap_token, node_name, ca_file)
    kubeconfig = state_dir / "kubeconfig"
    write_node_kubeconfig(kubeconfig, master, answer)
    return HttpClient.from_kubeconfig(str(kubeconfig))
