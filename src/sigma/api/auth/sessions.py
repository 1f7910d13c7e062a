"""The dashboard's browser sessions and one-time login links, kept in memory only.

A browser that logged in at /ui/login holds a random session id in a cookie; the server
keeps only the SHA-256 of each id with the user it stands for and when it expires, so the
bearer token the user pasted is never stored, nor sent back. A one-time login token (the
URL `sigma up` prints) is kept the same way, hashed, and is gone after its first use or
when it expires, whichever comes first.

Both tables are bounded: beyond their cap the oldest entry is dropped, so a flood of logins
costs memory for at most MAX_SESSIONS sessions (the oldest of them are logged out). A
restart of the master logs every browser out, which is the point of keeping them in memory.
A session may carry a check that its credential still holds (a token login's: the token is
still in the token file), asked at every request, so revoking a token ends its sessions too.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sigma.api.auth.identity import User

SESSION_TTL_S = 8 * 3600.0
ONCE_TTL_S = 600.0
MAX_SESSIONS = 1000
MAX_ONCE_TOKENS = 100
ID_BYTES = 32  # 256 bits: not guessable, whatever the number of tries


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


StillValid = Callable[[], bool]


@dataclass
class _Entry:
    user: User
    expires: float
    still_valid: StillValid | None = None


def _put(table: OrderedDict[str, _Entry], key: str, entry: _Entry, cap: int) -> None:
    table[key] = entry
    while len(table) > cap:
        table.popitem(last=False)  # the oldest: entries are only ever appended


@dataclass
class SessionStore:
    session_ttl_s: float = SESSION_TTL_S
    once_ttl_s: float = ONCE_TTL_S
    max_sessions: int = MAX_SESSIONS
    max_once: int = MAX_ONCE_TOKENS
    clock: Callable[[], float] = time.monotonic
    _sessions: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _once: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- sessions -------------------------------------------------------------------------
    def create(self, user: User, still_valid: StillValid | None = None) -> str:
        """A new session for `user`: a fresh id at every login (no session fixation)."""
        session_id = secrets.token_urlsafe(ID_BYTES)
        with self._lock:
            _put(self._sessions, _digest(session_id),
                 _Entry(user, self.clock() + self.session_ttl_s, still_valid), self.max_sessions)
        return session_id

    def user_of(self, session_id: str) -> User | None:
        """The user of a live session, None for an unknown, ended or expired one."""
        if not session_id:
            return None
        key = _digest(session_id)
        with self._lock:
            entry = self._sessions.get(key)
        if entry is None:
            return None
        # The credential check may read the token file: not while holding the lock.
        if entry.expires > self.clock() and (entry.still_valid is None or entry.still_valid()):
            return entry.user
        with self._lock:
            self._sessions.pop(key, None)
        return None

    def end(self, session_id: str) -> bool:
        """Log out: the id stops working at once. False if it was not a live session."""
        with self._lock:
            return self._sessions.pop(_digest(session_id), None) is not None if session_id else False

    def __len__(self) -> int:
        return len(self._sessions)

    # -- one-time login tokens ------------------------------------------------------------
    def issue_once(self, user: User) -> str:
        """A token that logs a browser in as `user` once, within once_ttl_s."""
        token = secrets.token_urlsafe(ID_BYTES)
        with self._lock:
            _put(self._once, _digest(token), _Entry(user, self.clock() + self.once_ttl_s), self.max_once)
        return token

    def redeem_once(self, token: str) -> User | None:
        """The user of a one-time token, which is consumed; None if unknown, used or expired."""
        if not token:
            return None
        with self._lock:
            entry = self._once.pop(_digest(token), None)
        return entry.user if entry is not None and entry.expires > self.clock() else None
