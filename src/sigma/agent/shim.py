"""The per-container supervisor: `python -m sigma.agent.shim <container-dir> <ready-fd>`.

Why a shim: containers must survive an agent restart, so they cannot be the agent's
children. The launcher forks once and exits; the forked shim calls setsid() and becomes a
child of init. It then starts the container (a host command in fresh namespaces, or
`runc run -d`), pipes its stdout/stderr into a rotating log file, enforces stop requests
(SIGTERM, SIGKILL after the grace), waits for the exit and writes the exit code and reason
to state.json. The agent only ever reads files and sends the shim a signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from typing import Any

from sigma.agent import nsutil
from sigma.agent.logs import LogWriter
from sigma.agent.statefile import read_json, write_json

_stop_requested = False


def _on_term(_sig: int, _frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def oom_kills(counter_path: str) -> int:
    """The oom_kill count of a memory cgroup (v1 memory.oom_control, v2 memory.events)."""
    try:
        with open(counter_path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except OSError:
        pass
    return 0


def main(argv: list[str]) -> int:
    cdir, ready_fd = argv[0], int(argv[1])
    if os.fork() > 0:  # the launcher: leave at once so the shim is re-parented to init
        os._exit(0)
    os.setsid()
    # Everything the shim writes (state, logs that carry the pod's output) is root's alone.
    os.umask(0o077)
    os.set_inheritable(ready_fd, False)  # the container must not hold the agent's pipe open
    devnull = os.open(os.devnull, os.O_RDWR)
    shim_log = os.open(os.path.join(cdir, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(shim_log, 2)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    nsutil.set_child_subreaper()
    spec = read_json(os.path.join(cdir, "spec.json"))
    try:
        return Shim(cdir, spec, ready_fd).run()
    except Exception as err:  # the state file must say what went wrong, whatever it was
        write_json(os.path.join(cdir, "state.json"), _exited(spec, 128, "StartError", f"shim: {err!r}"))
        _signal_ready(ready_fd)
        raise


def _signal_ready(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _exited(spec: dict[str, Any], code: int, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "state": "exited",
        "exit_code": code,
        "reason": reason,
        "message": message,
        "started_at": extra.get("started_at", now),
        "finished_at": now,
        "shim_pid": os.getpid(),
        "shim_start": nsutil.proc_start_time(os.getpid()),
        "pid": extra.get("pid"),
    }


class Shim:
    def __init__(self, cdir: str, spec: dict[str, Any], ready_fd: int) -> None:
        self.cdir, self.spec, self.ready_fd = cdir, spec, ready_fd
        self.state_path = os.path.join(cdir, "state.json")
        self.log = LogWriter(spec["log_path"], int(spec["log_max_bytes"]))
        _make_private(spec["log_path"])

    def run(self) -> int:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        oom_before = oom_kills(self.spec.get("oom_counter", ""))
        started_at = time.time()
        if self.spec["mode"] == "runc":
            pid, failure = self._start_runc(out_w, err_w)
        else:
            pid, failure = self._start_process(out_w, err_w)
        os.close(out_w)
        os.close(err_w)
        if failure is not None:
            self._pump_until_eof([out_r, err_r], deadline=time.time() + 1)
            self.log.close()
            write_json(self.state_path, _exited(self.spec, 128, "StartError", failure, started_at=started_at))
            _signal_ready(self.ready_fd)
            return 0
        assert pid is not None
        write_json(
            self.state_path,
            {
                "state": "running",
                "pid": pid,
                "started_at": started_at,
                "shim_pid": os.getpid(),
                "shim_start": nsutil.proc_start_time(os.getpid()),
                "pid_start": nsutil.proc_start_time(pid),
            },
        )
        _signal_ready(self.ready_fd)
        status = self._supervise(pid, [out_r, err_r])
        self.log.close()
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code  # killed by signal N -> 128+N, as runc reports it
        if oom_kills(self.spec.get("oom_counter", "")) > oom_before:
            reason = "OOMKilled"
        else:
            reason = "Completed" if code == 0 else "Error"
        if self.spec["mode"] == "runc":
            subprocess.run(
                [*self.spec["runc"], "delete", "--force", self.spec["runc_id"]],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        write_json(self.state_path, _exited(self.spec, code, reason, "", started_at=started_at, pid=pid))
        return 0

    def _start_process(self, out_w: int, err_w: int) -> tuple[int | None, str | None]:
        es_r, es_w = os.pipe()  # close-on-exec: EOF without data means exec succeeded
        if self.spec.get("netns"):
            try:
                nsutil.setns(self.spec["netns"], nsutil.CLONE_NEWNET)  # the pod's network, for the shim's child
            except OSError as err:
                return None, f"cannot join the pod's network namespace: {err}"
        if self.spec.get("namespaces"):
            nsutil.unshare(nsutil.CLONE_NEWPID)  # the next child is pid 1 of a new namespace
        pid = os.fork()
        if pid == 0:
            os.close(es_r)
            nsutil.exec_container(self.spec, out_w, err_w, es_w)  # never returns
        os.close(es_w)
        with os.fdopen(es_r, "rb") as f:
            failure = f.read().decode(errors="replace")
        if failure:
            os.waitpid(pid, 0)
            return None, failure
        return pid, None

    def _start_runc(self, out_w: int, err_w: int) -> tuple[int | None, str | None]:
        log = os.path.join(self.cdir, "runc.log")
        pid_file = os.path.join(self.cdir, "container.pid")
        cmd = [
            *self.spec["runc"],
            "--log",
            log,
            "--log-format",
            "json",
            "run",
            "--detach",  # runc, crun and runsc all take the long form (runsc no -d)
            "--pid-file",
            pid_file,
            "--bundle",
            self.spec["bundle"],
            self.spec["runc_id"],
        ]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, check=False)
        if proc.returncode != 0:
            subprocess.run(
                [*self.spec["runc"], "delete", "--force", self.spec["runc_id"]],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            message = _last_runc_error(log) or f"runc run exited with {proc.returncode}"
            return None, kubelet_words(message)
        with open(pid_file) as f:
            return int(f.read().strip()), None

    def _supervise(self, pid: int, fds: list[int]) -> int:
        sel = selectors.DefaultSelector()
        for fd, stream in zip(fds, ("stdout", "stderr"), strict=True):
            sel.register(fd, selectors.EVENT_READ, stream)
        kill_at: float | None = None
        status: int | None = None
        while status is None:
            for key, _ in sel.select(timeout=0.2):
                self._pump(sel, key.fd, key.data)
            if _stop_requested and kill_at is None:
                kill_at = time.time() + self._grace()
                _kill(pid, signal.SIGTERM)
            if kill_at is not None and time.time() >= kill_at:
                _kill(pid, signal.SIGKILL)
            status = _reap(pid)
        # Drain what the container wrote last; orphans holding the pipe get 2 s, no more.
        self._pump_until_eof([k.fd for k in sel.get_map().values()], time.time() + 2, sel)
        return status

    def _pump(self, sel: selectors.BaseSelector, fd: int, stream: str) -> None:
        data = os.read(fd, 65536)
        if data:
            self.log.write(stream, data)
        else:
            sel.unregister(fd)
            os.close(fd)

    def _pump_until_eof(
        self, fds: list[int], deadline: float, sel: selectors.BaseSelector | None = None
    ) -> None:
        if sel is None:
            sel = selectors.DefaultSelector()
            for fd, stream in zip(fds, ("stdout", "stderr"), strict=True):
                sel.register(fd, selectors.EVENT_READ, stream)
        while sel.get_map() and time.time() < deadline:
            for key, _ in sel.select(timeout=0.1):
                self._pump(sel, key.fd, key.data)

    def _grace(self) -> float:
        try:
            with open(os.path.join(self.cdir, "stop")) as f:
                return float(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0.0


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> int | None:
    """Reap every exited child (as subreaper we inherit the container's orphans)."""
    while True:
        try:
            got, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            # Not our child (should not happen): poll until it is gone, exit code unknown.
            return None if nsutil.proc_start_time(pid) is not None else 255 << 8
        if got == 0:
            return None
        if got == pid:
            return status


def _make_private(log_path: str) -> None:
    """The log file 0600 in a 0700 directory, also when an older agent created them wider
    (the umask covers what the shim creates itself)."""
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(log_path) or ".", 0o700)
    with contextlib.suppress(OSError):
        os.chmod(log_path, 0o600)


_RUNC_EXEC = re.compile(r'exec: "[^"]*": .*$')
_RUNC_CHDIR = re.compile(r'chdir to cwd \("(?P<dir>[^"]*)"\) set in config.json failed: (?P<cause>.*)$')


def kubelet_words(message: str) -> str:
    """runc's start error without runc's preamble, in the words kubelet users know:
    `exec: "x": executable file not found in $PATH`, `chdir /x: permission denied`."""
    found = _RUNC_EXEC.search(message)
    if found:
        return found[0]
    chdir = _RUNC_CHDIR.search(message)
    return f"chdir {chdir['dir']}: {chdir['cause']}" if chdir else message


def _last_runc_error(log: str) -> str:
    try:
        with open(log) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return ""
    errors = [entry.get("msg", "") for entry in lines if entry.get("level") in ("error", "fatal")]
    return errors[-1] if errors else ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
