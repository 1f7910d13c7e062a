"""Joining a cluster: trade a bootstrap token for this node's own credential.

The agent posts its node name with the bootstrap token to the master's join endpoint and
writes what it gets back (its token, the cluster CA) as a kubeconfig (0600) in its state
directory, which is what it then uses: the bootstrap token is not kept. A later start with
a kubeconfig already there reuses that credential (no token needed) and joins only if the
master no longer accepts it (the master refuses to join a node that is joined already, so a
restart must not ask). Without a stored credential and without a token, or with a token the
master refuses (a single-use token already used), the agent stops with a message saying to
create a new one (`sigma token create`), rather than retrying what cannot work.

The token comes from a file or the environment, never the command line (`ps` shows every
process's arguments to every user): see ``secret_from``.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from sigma.api.auth.identity import CLUSTER_CA_PATH
from sigma.api.errors import ApiError
from sigma.client.http import HttpClient, api_error_from_status
from sigma.client.kubeconfig import KubeConfig, kubeconfig_document, load_kubeconfig, write_kubeconfig_file

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
    """The node's credential as a kubeconfig (0600) in the agent's state directory."""
    path.parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # the agent's state dir (statemodes.py)
    user = str(answer["user"])
    write_kubeconfig_file(path, kubeconfig_document(master, user=user, token=str(answer["token"]),
                                                    ca_pem=str(answer.get("caCertificate") or ""), namespace=None))


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


def no_credential_message(state_dir: Path, node_name: str) -> str:
    return (f"the agent has no credential: no node credential in {state_dir / 'kubeconfig'} (kept there by a "
            "first join) and no token. On the master's machine create a join token with `sigma token create "
            "--state-dir MASTER_STATE_DIR` and start this agent once with --bootstrap-token-file FILE (or the "
            "environment variable SIGMA_BOOTSTRAP_TOKEN); it keeps its own credential in its state directory and "
            "restarts without the token")


def credential_accepted(config: KubeConfig, retry_for: float = RETRY_FOR_S) -> bool:
    """Whether the master still accepts the credential in ``config`` (an unreachable
    master is retried for ``retry_for`` seconds, then counts as accepting: the agent's own
    loops retry)."""
    deadline = time.monotonic() + retry_for
    with HttpClient.from_config(config) as client:
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


def anonymous_refused(master: str, ca_file: str | None) -> bool:
    """Whether ``master`` refuses requests without a credential (401 on the cluster CA,
    which every authenticated user may read). A master that cannot be reached, or serves no
    such path (no authentication at all), does not count as refusing."""
    try:
        with HttpClient(master, verify=ca_file or True, timeout=10) as client:
            client.request_json("GET", CLUSTER_CA_PATH)
    except ApiError as err:
        return err.code == 401
    except (ConnectionError, OSError):
        return False
    return False


def stored_credential(state_dir: Path, master: str | None = None) -> KubeConfig | None:
    """The node credential a previous join left in STATE/kubeconfig, pointed at ``master``
    when one is given (the master may have moved to another port or address since)."""
    path = state_dir / "kubeconfig"
    if not path.exists():
        return None
    config = load_kubeconfig(str(path))
    return dataclasses.replace(config, server=master.rstrip("/")) if master else config


def joined_client(master: str | None, bootstrap_token: str | None, node_name: str, state_dir: Path,
                  ca_file: str | None = None) -> HttpClient:
    """A client with this node's credential: the one kept in STATE/kubeconfig while the master
    accepts it, else a new one from joining with ``bootstrap_token``. Raises ValueError with
    what to do when neither works."""
    kubeconfig = state_dir / "kubeconfig"
    stored = stored_credential(state_dir, master)
    if stored is not None and credential_accepted(stored):
        if master and master.rstrip("/") != load_kubeconfig(str(kubeconfig)).server:
            _repoint(kubeconfig, master.rstrip("/"))
        return HttpClient.from_config(stored)
    if not bootstrap_token:
        if stored is None:
            raise ValueError(no_credential_message(state_dir, node_name))
        raise ValueError(
            f"the master ({stored.server}) no longer accepts the node credential in {kubeconfig} (its Node was "
            "deleted, or the master's state was reset), and no bootstrap token was given: on the master's machine "
            f"create one for this node with `sigma token create --node {node_name}` and start the agent with "
            "--bootstrap-token-file FILE (or SIGMA_BOOTSTRAP_TOKEN)")
    if not master:
        raise ValueError("a join needs the master's URL: pass --master https://MASTER:6443")
    try:
        answer = join(master, bootstrap_token, node_name, ca_file)
    except ApiError as err:
        if err.code == 401:
            raise ValueError(
                "the master refused the bootstrap token (401 Unauthorized): it is unknown, expired, or already "
                "used (a token joins one node unless it was created with --reusable). On the master's machine "
                f"create a new one with `sigma token create` (`sigma token create --node {node_name}` if this "
                "node joined before and lost its credential)") from None
        raise
    write_node_kubeconfig(kubeconfig, master, answer)
    return HttpClient.from_kubeconfig(str(kubeconfig))


def _repoint(kubeconfig: Path, server: str) -> None:
    """Keep the stored credential's server current (a restart without --master uses it)."""
    with open(kubeconfig, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    for entry in doc.get("clusters") or []:
        if isinstance(entry, dict) and isinstance(entry.get("cluster"), dict):
            entry["cluster"]["server"] = server
    write_kubeconfig_file(kubeconfig, doc)
