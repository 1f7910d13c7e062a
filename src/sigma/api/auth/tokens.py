"""Bearer tokens: the users' token file, bootstrap (join) tokens and node credentials.

The token file has Kubernetes' static token format, one user a line:

    token,user,uid,"group1,group2"

Bootstrap tokens look like Kubernetes' (``abcdef.0123456789abcdef``: a public id, a dot, a
secret). ``sigma token create`` appends one to ``STATE/auth/bootstrap-tokens.csv``
(``id,sha256(token),expires-unix-seconds,once|reusable,node``). A token is single-use unless
created ``--reusable``: the join that uses it deletes its line. One created ``--node NAME``
may only join NAME, and may replace that node's credential (the administrator's way to
re-join a node that lost its own). An agent presenting a token at the join endpoint gets
its own credential, kept as ``sha256(token),node,issued-unix-seconds`` in
``STATE/auth/node-tokens.csv``. Only hashes are stored, so reading the state directory does
not hand out a login.

Every file is re-read when it changes (mtime and size), so a token created by the CLI or
issued by another master sharing the state directory works without a restart.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sigma.api.auth.identity import AUTHENTICATED, BOOTSTRAP_PREFIX, BOOTSTRAPPERS, User, node_user

BOOTSTRAP_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_BOOTSTRAP_TTL_S = 24 * 3600


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


Entry = tuple[User, float]  # the user and when the token expires (unix seconds)
FOREVER = float("inf")


def parse_token_file(text: str) -> dict[str, Entry]:
    """Users by the sha256 of their token. Blank lines and # comments are skipped."""
    users: dict[str, Entry] = {}
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for row in csv.reader(io.StringIO("\n".join(lines))):
        if len(row) < 2:
            raise ValueError(f"token file: a line needs at least token,user (got {len(row)} field)")
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
        user = User(row[1].strip(), row[2].strip() if len(row) > 2 else "", groups)
        users[digest(row[0].strip())] = (user, FOREVER)
    return users


def new_token(length: int = 32) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class _Watched:
    """A file parsed again whenever its mtime or size changes (an absent file is empty)."""

    def __init__(self, path: Path | None, parse: Callable[[str], dict[str, Entry]]) -> None:
        self.path, self._parse = path, parse
        self._stamp: tuple[float, int] | None = None
        self.entries: dict[str, Entry] = {}

    def current(self) -> dict[str, Entry]:
        if self.path is None:
            return self.entries
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self.entries = None, {}
            return self.entries
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._stamp:
            self.entries = self._parse(self.path.read_text(encoding="utf-8"))
            self._stamp = stamp
        return self.entries


@dataclass(frozen=True)
class BootstrapToken:
    token_id: str
    expires: float
    reusable: bool = False
    node: str = ""  # "": any node that is not joined yet; else only this one, replacing it

    def row(self, token_hash: str) -> str:
        usage = "reusable" if self.reusable else "once"
        return f"{self.token_id},{token_hash},{self.expires:.0f},{usage},{self.node}\n"


def _bootstrap_rows(text: str) -> dict[str, BootstrapToken]:
    """By the hash of the whole token (the id alone is public). A line written before tokens
    had a usage is single-use."""
    return {row[1]: BootstrapToken(row[0], float(row[2]), len(row) > 3 and row[3] == "reusable",
                                   row[4] if len(row) > 4 else "")
            for row in csv.reader(io.StringIO(text)) if len(row) >= 3}


def _parse_bootstrap(text: str) -> dict[str, Entry]:
    return {key: (User(f"{BOOTSTRAP_PREFIX}{tok.token_id}", "", (BOOTSTRAPPERS,)), tok.expires)
            for key, tok in _bootstrap_rows(text).items()}


def _parse_nodes(text: str) -> dict[str, Entry]:
    return {row[0]: (node_user(row[1]), FOREVER) for row in csv.reader(io.StringIO(text)) if len(row) >= 2}


class Credentials:
    """Token authentication against the token file, bootstrap tokens and node credentials."""

    def __init__(self, state_dir: Path | None, token_file: Path | None = None) -> None:
        self.auth_dir = state_dir / "auth" if state_dir is not None else None
        self._users = _Watched(token_file, parse_token_file)
        self._bootstrap = _Watched(self.auth_dir / "bootstrap-tokens.csv" if self.auth_dir else None,
                                   _parse_bootstrap)
        self._nodes = _Watched(self.auth_dir / "node-tokens.csv" if self.auth_dir else None, _parse_nodes)
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> User | None:
        return self.authenticate_digest(digest(token))

    def authenticate_digest(self, key: str) -> User | None:
        """Like authenticate, by the token's SHA-256 (what a dashboard session keeps, to end
        with the token when it is revoked)."""
        with self._lock:
            for source in (self._users, self._nodes, self._bootstrap):
                entry = source.current().get(key)
                if entry is not None and entry[1] > time.time():
                    return entry[0].with_authenticated()
        return None

    def _auth_file(self, name: str) -> Path:
        if self.auth_dir is None:
            raise RuntimeError("node credentials need a state directory")
        return self.auth_dir / name

    def bootstrap_token(self, token: str) -> BootstrapToken | None:
        """The bootstrap token ``token`` if it exists and has not expired."""
        path = self._auth_file("bootstrap-tokens.csv")
        with self._lock:
            found = _bootstrap_rows(path.read_text() if path.exists() else "").get(digest(token))
        return found if found is not None and found.expires > time.time() else None

    def consume_bootstrap_token(self, token: str) -> bool:
        """Delete a single-use token's line; False if another join used it first."""
        path = self._auth_file("bootstrap-tokens.csv")
        key = digest(token)
        with self._lock:
            rows = _bootstrap_rows(path.read_text() if path.exists() else "")
            if key not in rows:
                return False
            del rows[key]
            _write_private(path, "".join(tok.row(h) for h, tok in rows.items() if tok.expires > time.time()))
        return True

    def node_credential_issued(self, node: str) -> bool:
        """Whether a credential for ``node`` is on record (and so still logs in)."""
        path = self._auth_file("node-tokens.csv")
        with self._lock:
            rows = csv.reader(io.StringIO(path.read_text() if path.exists() else ""))
            return any(len(r) >= 2 and r[1] == node for r in rows)

    def issue_node_credential(self, node: str) -> str:
        """A fresh token for ``node``; an earlier one for the same node stops working."""
        token = new_token()
        path = self._auth_file("node-tokens.csv")
        with self._lock:
            rows = [r for r in csv.reader(io.StringIO(path.read_text() if path.exists() else "")) if len(r) >= 2]
            rows = [r for r in rows if r[1] != node] + [[digest(token), node, f"{time.time():.0f}"]]
            _write_private(path, "".join(",".join(r) + "\n" for r in rows))
        return token


def create_bootstrap_token(state_dir: Path, ttl_s: float = DEFAULT_BOOTSTRAP_TTL_S, reusable: bool = False,
                           node: str = "") -> str:
    """A join token ``id.secret`` valid for ``ttl_s`` seconds (what `sigma token create` prints):
    for one join unless ``reusable``; bound to ``node`` (and allowed to replace its
    credential) when one is named."""
    token_id, secret = new_token(6), new_token(16)
    token = f"{token_id}.{secret}"
    path = state_dir / "auth" / "bootstrap-tokens.csv"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else ""
    _write_private(path, old + BootstrapToken(token_id, time.time() + ttl_s, reusable, node).row(digest(token)))
    return token


def write_token_file(path: Path, entries: list[tuple[str, str, tuple[str, ...]]]) -> None:
    """Write a token file of (token, user, groups) lines."""
    lines = [f'{token},{user},{user},"{",".join(groups)}"\n' for token, user, groups in entries]
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, "".join(lines))


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file only its owner can read."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


__all__ = ["AUTHENTICATED", "BootstrapToken", "Credentials", "create_bootstrap_token", "parse_token_file",
           "write_token_file"]
