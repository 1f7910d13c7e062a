"""Kubeconfig files the way kubectl reads them, and written as YAML documents (never text
templates: a path or a name with ": " or "#" in it must stay a plain string).

Which files, as kubectl (client-go's loading rules), plus Sigma's own fallback last:

1. ``--kubeconfig PATH``: that file alone (it must exist);
2. else ``$KUBECONFIG``, a list of paths joined by ``os.pathsep``: every file of it that
   exists, merged; a list naming no existing file is an error, not a fallback;
3. else ``~/.kube/config``;
4. else ``./.sigma/kubeconfig``, what `sigma up` writes in the directory it was started in:
   only when the user has no kubectl configuration at all, so it never wins over theirs.

Merging: the first file that sets ``current-context`` gives it; a cluster, user or context
is taken from the first file that names it (later entries of the same name are ignored,
not merged field by field). Relative file paths in an entry are relative to the file the
entry came from.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SIGMA_UP_KUBECONFIG = os.path.join(".sigma", "kubeconfig")
SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
# Fields that name files, per section: resolved against the defining file's directory.
PATH_FIELDS = {"cluster": ("certificate-authority",), "user": ("client-certificate", "client-key", "tokenFile")}


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


class KubeconfigNotFound(ValueError):
    """No kubeconfig to read: the message says where we looked."""


def kubeconfig_paths(explicit: str | None = None, environ: dict[str, str] | None = None,
                     home: str | None = None, cwd: str | None = None) -> list[str]:
    """The files to read, in precedence order (see the module's docstring). An explicit
    path is returned as given even if it does not exist (reading it then fails loudly);
    raises KubeconfigNotFound when there is nothing to read."""
    if explicit:
        return [explicit]
    env = os.environ if environ is None else environ
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        existing = [p for p in dict.fromkeys(listed) if os.path.isfile(p)]
        if not existing:
            raise KubeconfigNotFound(f"none of the files in $KUBECONFIG exists ({env['KUBECONFIG']})")
        return existing
    user_config = os.path.join(home if home is not None else os.path.expanduser("~"), ".kube", "config")
    if os.path.isfile(user_config):
        return [user_config]
    local = os.path.join(cwd if cwd is not None else os.getcwd(), SIGMA_UP_KUBECONFIG)
    if os.path.isfile(local):
        return [local]
    raise KubeconfigNotFound(f"no kubeconfig: pass --kubeconfig PATH or set $KUBECONFIG (looked at {user_config} "
                             f"and {local})")


def merge_kubeconfigs(paths: Sequence[str]) -> dict[str, Any]:
    """One kubeconfig document from ``paths`` by kubectl's rules: first wins, for
    current-context and for each named cluster, user and context. File paths inside entries
    are made absolute (relative to the file they came from) before merging."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    seen: dict[str, set[str]] = {section: set() for section, _ in SECTIONS}
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"kubeconfig {path}: not a mapping")
        base = os.path.dirname(os.path.abspath(path))
        if doc.get("current-context") and "current-context" not in merged:
            merged["current-context"] = doc["current-context"]
        for section, field in SECTIONS:
            for entry in doc.get(section) or []:
                name = entry.get("name") if isinstance(entry, dict) else None
                if not isinstance(name, str) or name in seen[section]:
                    continue
                seen[section].add(name)
                body = dict(entry.get(field) or {})
                for key in PATH_FIELDS.get(field, ()):
                    if isinstance(body.get(key), str) and body[key]:
                        body[key] = os.path.join(base, os.path.expanduser(body[key]))
                merged[section].append({"name": name, field: body})
    return merged


def load_kubeconfig(path: str | Sequence[str], context: str | None = None) -> KubeConfig:
    """Read ``context`` (default: current-context) of a kubeconfig file, or of several
    merged as kubectl merges $KUBECONFIG. ``*-data`` fields are base64 PEM (client cert/key
    data are written to private temp files, which ssl needs)."""
    paths = [path] if isinstance(path, str) else list(path)
    doc = merge_kubeconfigs(paths)
    where = os.pathsep.join(paths)
    name = context or doc.get("current-context")
    if not name:
        raise ValueError(f"kubeconfig {where}: no current-context (pass --context NAME)")
    ctx = _named(doc, "contexts", "context", name, where)
    cluster = _named(doc, "clusters", "cluster", ctx.get("cluster"), where)
    user = _named(doc, "users", "user", ctx.get("user"), where) if ctx.get("user") else {}
    if not cluster.get("server"):
        raise ValueError(f"kubeconfig {where}: cluster {ctx.get('cluster')!r} has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(user["tokenFile"], encoding="utf-8") as fh:
            token = fh.read().strip()
    ca_data = cluster.get("certificate-authority-data")
    return KubeConfig(
        server=cluster["server"], namespace=ctx.get("namespace"), token=token,
        ca_file=cluster.get("certificate-authority") or None,
        ca_data=base64.b64decode(ca_data).decode() if ca_data else None,
        client_cert=_data_file(user.get("client-certificate-data")) or user.get("client-certificate") or None,
        client_key=_data_file(user.get("client-key-data")) or user.get("client-key") or None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")))


def kubeconfig_document(server: str, *, user: str = "sigma-admin", token: str | None = None,
                        ca_file: str | Path | None = None, ca_pem: str | None = None,
                        namespace: str | None = "default", name: str = "sigma") -> dict[str, Any]:
    """A one-context kubeconfig: cluster and context ``name``, credentials of ``user``. The
    CA (a file or PEM text) is written only for an https server."""
    cluster: dict[str, Any] = {"server": server}
    if server.startswith("https://"):
        if ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(ca_pem.encode()).decode()
        elif ca_file is not None:
            cluster["certificate-authority"] = str(ca_file)
    context: dict[str, Any] = {"cluster": name, "user": user}
    if namespace:
        context["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token} if token else {}}],
            "contexts": [{"name": name, "context": context}],
            "current-context": name}


def write_kubeconfig_file(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` as YAML, atomically and readable by its owner only (it holds a
    credential), also when a file with wider permissions was there."""
    text = yaml.safe_dump(document, default_flow_style=False, sort_keys=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a file that was there
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
