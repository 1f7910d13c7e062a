"""After a real `sigma master` and `sigma agent` start, their state is private: the master's
whole state directory (store with its -wal and -shm, CA, credentials, tokens, RBAC,
audit log) is 0600 files in 0700 directories, files left group- or world-readable by an
older version included; the agent's credentials and pods' logs likewise. What stays open
is listed with its reason."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sigma.api.auth.tokens import create_bootstrap_token
from tests.agent.agent_process import AgentProcess
from tests.agent.conftest import needs_root
from tests.api.auth_fixtures import start_auth_master

pytestmark = [pytest.mark.e2e, *needs_root]

# The agent's state directory is traversable (not listable) by pods' users: they reach
# their own container directories through it. The runtimes' directories are the
# runtimes' to set (they hold the pods' bundles and root filesystems).
AGENT_OPEN = {".": 0o711}
RUNTIME_DIRS = ("process", "runc")


def modes(root: Path, skip: tuple[str, ...] = ()) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in skip]
        for name in [*dirnames, *filenames]:
            path = here / name
            if not path.is_symlink():
                found[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return found


def test_master_and_agent_state_is_private(tmp_path: Path) -> None:
    master_state = tmp_path / "master"
    master_state.mkdir()
    (master_state / "audit.log").write_text("")  # left by an older version with mode 0644
    os.chmod(master_state / "audit.log", 0o644)
    os.chmod(master_state, 0o755)
    for master in start_auth_master(master_state):  # writes tokens.csv and rbac.yaml 0644 first
        # The token on the command line (which warns): the form every agent version accepts.
        token = create_bootstrap_token(master.state, ttl_s=600)
        agent = AgentProcess(master.url, tmp_path / "agent", "private-node", extra=("--bootstrap-token", token))
        try:
            agent.start()
            with master.client("admin") as admin:
                agent.wait_node(admin)  # the store has taken writes: its WAL exists
        finally:
            agent.stop()
        master_modes = modes(master_state)
        assert {"state.db", "state.db-wal", "state.db-shm", "auth/ca.key", "auth/node-tokens.csv",
                "auth/bootstrap-tokens.csv", "tokens.csv", "rbac.yaml", "audit.log"} <= set(master_modes)
        wrong = {path: oct(mode) for path, mode in master_modes.items()
                 if mode != (0o700 if (master_state / path).is_dir() else 0o600)}
        assert wrong == {}, wrong

    agent_state = tmp_path / "agent"
    agent_modes = modes(agent_state, skip=RUNTIME_DIRS)
    assert {"kubeconfig", "pki/serving.key", "pki/serving.crt", "logs"} <= set(agent_modes)
    wrong = {path: oct(mode) for path, mode in agent_modes.items()
             if mode != AGENT_OPEN.get(path, 0o700 if (agent_state / path).is_dir() else 0o600)}
    assert wrong == {}, wrong
