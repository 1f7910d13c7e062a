"""Joining a cluster: trade a bootstrap token for this node's own credential.

The agent posts its node name with the bootstrap token to the master's join endpoint and
writes what it gets back (its token, the cluster CA) as a kubeconfig (0600) in its state
directory, which is what it then uses: the bootstrap token is not kept. A later start with
a kubeconfig already there reuses that credential and joins only if the master no longer
accepts it (the master refuses to join a node that is joined already, so a restart must
not ask).

The token comes from a file or the environment, never the command line (`ps` shows every
process's arguments to every user): see ``secret_from``.
"""

from __future__ import annotations

import base64
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from sigma.api.auth.identity import CLUSTER_CA_PATH
from sigma.api.errors import ApiError
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
    path.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # the agent's state dir (statemodes.py)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that was there


def secret_from(value: str | None, file: str | None, env: str, flag: str) -> str | None:
    """A secret from ``file`` (first line), else the environment variable ``env`` (removed
    from our environment so no child inherits it), else ``value`` given as ``flag`` on the
    command line, which still works but warns: every user sees it in `ps`."""
    if file:
        text = Path(file).read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"{file} is empty")
        return text.splitlines()[0].strip()
    from_env = os.environ.pop(env, "")
    if from_env:
        return from_env.strip()
    if value:
        print(f"warning: {flag} puts the token on the command line, where every user of this machine can "
              f"read it (ps); use {flag}-file FILE or the environment variable {env}", file=sys.stderr)
        return value
    return None


def credential_accepted(kubeconfig: Path, retry_for: float = RETRY_FOR_S) -> bool:
    """Whether the master still accepts the credential in ``kubeconfig`` (an unreachable
    master is retried for ``retry_for`` seconds, then counts as accepting: the agent's own
    loops retry)."""
    deadline = time.monotonic() + retry_for
    with HttpClient.from_kubeconfig(str(kubeconfig)) as client:
        while True:
            try:
                client.request_json("GET", CLUSTER_CA_PATH)
                return True
            except ApiError as err:
                return err.code != 401
            except ConnectionError:
                if time.monotonic() >= deadline:
                    return True
                time.sleep(0.5)


def joined_client(master: str, bootstrap_token: str | None, node_name: str, state_dir: Path,
                  ca_file: str | None = None) -> HttpClient:
    """A client with this node's credential: the one kept in STATE/kubeconfig while the master
    accepts it, else a new one from joining with ``bootstrap_token``."""
    kubeconfig = state_dir / "kubeconfig"
    if kubeconfig.exists() and credential_accepted(kubeconfig):
        return HttpClient.from_kubeconfig(str(kubeconfig))
    if not bootstrap_token:
        raise ValueError(f"{kubeconfig}: no credential the master accepts, and no bootstrap token to join with")
    answer = join(master, bootstrap_token, node_name, ca_file)
    write_node_kubeconfig(kubeconfig, master, answer)
    return HttpClient.from_kubeconfig(str(kubeconfig))
