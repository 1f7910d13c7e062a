"""Running a command inside a running container (exec probes), for both shim modes.

- runc (runc containers and sandboxed process containers): ``runc exec``. The process
  inherits the container's config.json process: its user, capabilities, seccomp profile,
  no_new_privs and environment, so it can do nothing the container itself cannot.
- process (privileged pods, or no runc): ``nsenter`` into the container's mount, uts, ipc
  and pid namespaces (when it has them) as the container's user, after joining its cgroup
  and setting no_new_privs, with the container's environment and working directory.

The command runs in its own process group; past the timeout the whole group is killed (a
forwarded SIGTERM first, so runc passes it to the process inside), then TimeoutError.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
from typing import Any

from sigma.agent.nsutil import DEFAULT_PATH

MAX_OUTPUT = 10 * 1024  # kubelet keeps at most 10 KiB of a probe command's output
PR_SET_NO_NEW_PRIVS = 38


def run_in(meta: dict[str, Any], pid: int, argv: list[str], timeout: float) -> tuple[int, str]:
    """``meta`` is the container's spec.json, ``pid`` its process (from state.json)."""
    if meta.get("attach"):  # a runtime with its own way in (lxc-attach: runtime/lxc.py)
        return _run([*meta["attach"], *argv], timeout)
    if meta.get("mode") == "runc":
        return _run([*meta["runc"], "exec", meta["runc_id"], *argv], timeout)
    if meta.get("mode") == "process":
        return _run(_nsenter(meta, pid, argv), timeout, env=_env(meta), join=list(meta.get("cgroup_procs") or []),
                    no_new_privs=bool(meta.get("no_new_privs", True)))
    raise OSError(f"cannot run a command in a container of mode {meta.get('mode')!r}")


def _nsenter(meta: dict[str, Any], pid: int, argv: list[str]) -> list[str]:
    enter: list[str] = []
    if meta.get("namespaces"):
        enter += ["-m", "-u", "-i", "-p"]
    user = meta.get("user")
    if isinstance(user, dict):
        enter += ["-S", str(user["uid"]), "-G", str(user["gid"])]  # -G also drops supplementary groups
    if not enter:  # the container shares everything with the agent (an agent without root)
        return ["env", "-C", str(meta.get("cwd") or "/"), "--", *argv]
    return ["nsenter", "-t", str(pid), *enter, f"--wd={meta.get('cwd') or '/'}", "--", *argv]


def _env(meta: dict[str, Any]) -> dict[str, str]:
    env = {str(k): str(v) for k, v in (meta.get("env") or {}).items()}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None, join: list[str] | None = None,
         no_new_privs: bool = False) -> tuple[int, str]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def prepare() -> None:  # in the child, before exec: only file writes and one prctl
        for procs in join or []:
            with open(procs, "w") as f:
                f.write("0")  # "0" is the writing process itself
        if no_new_privs:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True, preexec_fn=prepare if (join or no_new_privs) else None)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise TimeoutError(f"command {argv_text(cmd)} timed out after {timeout}s") from None
    return proc.returncode, out[:MAX_OUTPUT].decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.communicate(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def argv_text(cmd: list[str]) -> str:
    return " ".join(cmd)[:200]


def interactive_command(meta: dict[str, Any], pid: int, argv: list[str], tty: bool = False,
                        pid_file: str = "", process_file: str = "",
                        ) -> tuple[list[str], dict[str, str] | None, list[str], bool]:
    """What ``kubectl exec`` runs (sigma.agent.execstream): (command, environment, cgroup.procs
    files to join, no_new_privs) for the same two modes as run_in. ``tty``: runc makes a
    terminal in the container and relays it to its own, which is then the agent's pty (and
    passes the agent's resizes on); ``pid_file``: where runc writes the exec'd process's pid,
    to kill it when the client goes away; ``process_file``: runc's --process, the whole process
    (argv included) as the container's config.json describes it, e.g. with a console size."""
    if meta.get("mode") == "runc":
        extra = (["--tty"] if tty else []) + (["--pid-file", pid_file] if pid_file else [])
        if process_file:
            return [*meta["runc"], "exec", *extra, "--process", process_file, meta["runc_id"]], None, [], False
        return [*meta["runc"], "exec", *extra, meta["runc_id"], *argv], None, [], False
    if meta.get("mode") == "process":
        return (_nsenter(meta, pid, argv), _env(meta), list(meta.get("cgroup_procs") or []),
                bool(meta.get("no_new_privs", True)))
    raise OSError(f"cannot run a command in a container of mode {meta.get('mode')!r}")
