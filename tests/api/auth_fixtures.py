"""A `sigma master` with authentication on (no anonymous access) and its users, for the
tests of authentication, authorisation, quotas and pod security."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.harness import MasterProcess

TOKENS = {
    "admin": ("alice", "system:masters"),
    "viewer": ("bob", "devs"),
    "editor": ("carol", "devs"),
    "noisy": ("dave", ""),
}
RBAC = """
bindings:
  - role: view
    namespace: team-a
    users: [bob]
  - role: edit
    namespace: team-a
    users: [carol]
  - role: edit
    namespace: noisy
    users: [dave]
"""


@dataclass
class AuthMaster:
    proc: MasterProcess
    state: Path

    @property
    def url(self) -> str:
        return self.proc.url

    def client(self, who: str | None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {who}-token"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)

    def token_create(self) -> str:
        out = subprocess.run([sys.executable, "-m", "sigma", "token", "create", "--state-dir", str(self.state),
                              "--ttl", "10m"], capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.strip()


def start_auth_master(workdir: Path, *extra: str, scheme: str = "http") -> Iterator[AuthMaster]:
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [f'{who}-token,{user},{user},"{groups}"' for who, (user, groups) in TOKENS.items()]
    (workdir / "tokens.csv").write_text("\n".join(lines) + "\n")
    (workdir / "rbac.yaml").write_text(RBAC)
    proc = MasterProcess(workdir, anonymous=False, scheme=scheme,
                         extra_args=("--state-dir", str(workdir), "--token-file", str(workdir / "tokens.csv"),
                                     "--rbac", str(workdir / "rbac.yaml"), "--rate-limit", "20:20", *extra))
    proc.start()
    try:
        yield AuthMaster(proc, workdir)
    finally:
        proc.stop()


def pod(name: str, node: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}],
                                     **spec}}
    if node:
        body["spec"]["nodeName"] = node
    return body


def namespace(admin: httpx.Client, labels: dict[str, str] | None = None, name: str | None = None) -> str:
    name = name or f"t-{uuid.uuid4().hex[:8]}"
    r = admin.post("/api/v1/namespaces", json={"metadata": {"name": name, "labels": labels or {}}})
    assert r.status_code in (201, 409), r.text
    return name
