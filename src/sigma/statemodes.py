"""File modes of the master's and the agent's state directories.

The master's state directory holds the store (every Secret and pod spec), the CA key, the
credentials, the RBAC bindings and the audit log: nothing in it is for other users, so it
is 0700 and its files 0600, and the master runs with umask 077 so whatever it creates later
(SQLite's -wal and -shm files, rotated logs) is private too. Modes of files left by an
older version are fixed at start.

The agent's state directory is 0711: pods' users (nobody for the process runtime, the
mapped ids of a user namespace for runc) must traverse it to reach their own container
directories, but may not list it. Its credentials (kubeconfig, pki/) and the pods' logs are
private (0600 files in 0700 directories). Per-container directories are the runtime's. The
agent itself keeps umask 022: pods inherit it through the shim and Kubernetes runs
containers with 022; the agent gives its own secret files explicit modes instead.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("sigma.statemodes")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
TRAVERSE_ONLY_DIR = 0o711
MASTER_UMASK = 0o077
# Under `sigma up` the agent's state directory sits inside the master's and keeps its own rules.
AGENT_SUBDIR = "agent"
AGENT_PRIVATE = ("kubeconfig", "pki", "logs")


def restrict_tree(root: Path, skip: tuple[str, ...] = ()) -> None:
    """Directories 0700 and regular files 0600 under ``root`` (itself included), without
    following symbolic links; top-level entries named in ``skip`` are left alone."""
    _chmod(root, PRIVATE_DIR)
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        for name in dirnames:
            _chmod(Path(dirpath) / name, PRIVATE_DIR)
        for name in filenames:
            _chmod(Path(dirpath) / name, PRIVATE_FILE)


def _chmod(path: Path, mode: int) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return  # gone meanwhile (a temporary file)
    if stat.S_ISLNK(st.st_mode) or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return
    if stat.S_IMODE(st.st_mode) != mode:
        try:
            os.chmod(path, mode)
        except OSError as err:
            if err.errno != errno.EROFS:
                raise
            # A read-only state directory still serves reads (the store says so); its modes
            # are fixed at the next start on a writable one.
            log.warning("cannot make %s private: %s", path, err)


def secure_master_state(state: Path, holds_agent: bool = False) -> None:
    """The master's umask, and its state directory private. With ``holds_agent`` (`sigma
    up`: the agent's state directory is STATE/agent) the directory itself is 0711, so pods
    can still traverse it to their container directories, and STATE/agent keeps the
    agent's own rules. The masters `sigma up --masters N` adds share that directory: they
    see STATE/agent, or the 0711 `sigma up` set, and keep it."""
    os.umask(MASTER_UMASK)
    state.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    shared = holds_agent or (state / AGENT_SUBDIR).is_dir() or stat.S_IMODE(state.stat().st_mode) == TRAVERSE_ONLY_DIR
    restrict_tree(state, skip=(AGENT_SUBDIR,))
    if shared:
        _chmod(state, TRAVERSE_ONLY_DIR)


def secure_state_dir(state: Path) -> None:
    """The agent's state directory: traversable by pods, its credentials and logs private."""
    state.mkdir(mode=TRAVERSE_ONLY_DIR, parents=True, exist_ok=True)
    _chmod(state, TRAVERSE_ONLY_DIR)
    for entry in state.iterdir():
        if entry.name in AGENT_PRIVATE:
            if entry.is_dir() and not entry.is_symlink():
                restrict_tree(entry)
            else:
                _chmod(entry, PRIVATE_FILE)
        elif entry.is_file() and not entry.is_symlink():
            _chmod(entry, PRIVATE_FILE)
