"""Linux calls Python's os module lacks (unshare, mount, sethostname, prctl) and the code that
turns a forked child into the container process. Used by the shim only."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from typing import Any, NoReturn

from sigma.agent.kernelfiles import read_text

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(path: str, nstype: int) -> None:
    """Join the namespace bound at ``path`` (os.setns is Python 3.12's)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), f"setns {path}")
    finally:
        os.close(fd)


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    enc = [s.encode() if s is not None else None for s in (source, target, fstype)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), None), f"mount {target}")


def sethostname(name: str) -> None:
    raw = name.encode()[:64]
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def set_child_subreaper() -> None:
    # Orphans of the container (and runc's container init after `runc run -d` exits)
    # are re-parented to the shim, which can then wait for them and read the exit code.
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def set_no_new_privs() -> None:
    # Irreversible and inherited: execve() of a setuid/setgid binary or one with file
    # capabilities no longer grants anything, so the container cannot climb back to root.
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def proc_start_time(pid: int) -> int | None:
    """Start time in clock ticks since boot (/proc/<pid>/stat field 22): with the pid it
    identifies a process even after the pid number is reused."""
    text = read_text(f"/proc/{pid}/stat")
    if text is None:
        return None
    return int(text[text.rindex(")") + 2 :].split()[19])


def resolve_executable(name: str, path_env: str) -> str | None:
    if "/" in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    for directory in path_env.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def exec_container(spec: dict[str, Any], out_w: int, err_w: int, status_w: int) -> NoReturn:
    """In the forked child: join the cgroups, enter namespaces, exec. Any failure is written
    to status_w (close-on-exec, so the shim reads EOF when exec succeeds) in the words
    kubelet users know, e.g. `exec: "x": executable file not found in $PATH`."""
    try:
        os.setsid()  # its own process group, so the shim can signal the whole group
        # The shim ignores some signals for itself; the container starts with defaults
        # (an ignored disposition would otherwise survive execve).
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for procs in spec.get("cgroup_procs", []):
            with open(procs, "w") as f:
                f.write("0")  # "0" moves the writing process
        _set_oom_score_adj(int(spec.get("oom_score_adj", 0)))
        if spec.get("namespaces"):
            unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC)
            mount(None, "/", None, MS_REC | MS_PRIVATE)  # keep our /proc mount out of the host
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            sethostname(spec.get("hostname") or "sigma")
        user = spec.get("user")
        if user:
            # Drop root last: joining cgroups and mounting /proc above need it. Groups first:
            # setgroups and setgid need the root that setuid gives up.
            os.setgroups([])
            os.setgid(int(user["gid"]))
            os.setuid(int(user["uid"]))
        if spec.get("no_new_privs"):
            set_no_new_privs()
        os.umask(0o022)  # the shim's own umask (0077, for its files) is not the container's
        env = dict(spec.get("env") or {})
        env.setdefault("PATH", DEFAULT_PATH)
        argv = list(spec["argv"])
        cwd = spec.get("cwd")
        if cwd:
            try:
                os.chdir(cwd)
            except OSError as err:
                _fail(status_w, f"chdir {cwd}: {(err.strerror or str(err)).lower()}")
        if not argv:
            _fail(status_w, "no command specified")
        path = resolve_executable(argv[0], env["PATH"])
        if path is None and "/" in argv[0] and _denied(argv[0]):
            # Most likely a host path the pod's user (nobody by default) may not reach.
            _fail(status_w, f'exec: "{argv[0]}": permission denied (running as uid {os.getuid()})')
        if path is None:
            _fail(status_w, f'exec: "{argv[0]}": executable file not found in $PATH')
        os.execve(path, argv, env)
    except OSError as err:
        _fail(status_w, f"{err.strerror or err}")
    except BaseException as err:
        _fail(status_w, repr(err))


def _denied(path: str) -> bool:
    try:
        os.stat(path)
    except PermissionError:
        return True
    except OSError:
        return False
    return not os.access(path, os.X_OK)


def _set_oom_score_adj(value: int) -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError:
        # Negative values need CAP_SYS_RESOURCE and fail in some sandboxes (EIO): keep the
        # inherited value, which is still below batch's +1000.
        if value >= 0:
            raise


def _fail(fd: int, message: str) -> NoReturn:
    try:
        os.write(fd, message.encode())
    finally:
        os._exit(128)
