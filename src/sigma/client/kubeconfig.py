"""Reading a kubeconfig the way kubectl does: one context's server, namespace and credentials."""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class KubeConfig:
    """The parts of one kubeconfig context that Sigma uses. File paths are absolute."""

    server: str
    namespace: str | None = None
    token: str | None = None
    ca_file: str | None = None
    ca_data: str | None = None  # PEM text
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False


def load_kubeconfig(path: str, context: str | None = None) -> KubeConfig:
    """Read ``context`` (default: current-context) of a kubeconfig file, as kubectl does.
    Relative paths in the file are relative to the file's directory; ``*-data`` fields are
    base64 PEM (client cert/key data are written to private temp files, which ssl needs)."""
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    name = context or doc.get("current-context")
    ctx = _named(doc, "contexts", "context", name, path)
    cluster = _named(doc, "clusters", "cluster", ctx.get("cluster"), path)
    user = _named(doc, "users", "user", ctx.get("user"), path) if ctx.get("user") else {}
    base = os.path.dirname(os.path.abspath(path))

    def file_of(key: str) -> str | None:
        value = cluster.get(key) if key == "certificate-authority" else user.get(key)
        return os.path.join(base, value) if value else None

    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(os.path.join(base, user["tokenFile"]), encoding="utf-8") as fh:
            token = fh.read().strip()
    ca_data = cluster.get("certificate-authority-data")
    return KubeConfig(
        server=cluster["server"], namespace=ctx.get("namespace"), token=token,
        ca_file=file_of("certificate-authority"),
        ca_data=base64.b64decode(ca_data).decode() if ca_data else None,
        client_cert=_data_file(user.get("client-certificate-data")) or file_of("client-certificate"),
        client_key=_data_file(user.get("client-key-data")) or file_of("client-key"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")))


def _named(doc: dict[str, Any], section: str, field: str, name: str | None, path: str) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if entry.get("name") == name:
            return dict(entry.get(field) or {})
    raise ValueError(f"kubeconfig {path}: no {field} named {name!r} in {section}")


def _data_file(data: str | None) -> str | None:
    if not data:
        return None
    fd, name = tempfile.mkstemp(prefix="sigma-kubeconfig-", suffix=".pem")
    with os.fdopen(fd, "wb") as fh:  # mkstemp creates it 0600: the key stays private
        fh.write(base64.b64decode(data))
    atexit.register(_remove_quietly, name)
    return name


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
