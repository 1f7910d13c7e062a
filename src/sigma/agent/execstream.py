"""``kubectl exec`` on the agent: a command in a running container, its stdin, stdout,
stderr or terminal carried over the remote-command WebSocket protocol (v4/v5.channel.k8s.io).

Messages are binary, the first byte the channel: 0 stdin, 1 stdout, 2 stderr, 3 error (one
metav1.Status: Success, or Failure with reason NonZeroExitCode and the code in
details.causes[ExitCode], which kubectl exits with), 4 resize ({"Width", "Height"}); v5
adds 255 CLOSE (its second byte the channel whose writing is done: stdin's end of file).

The command runs as the exec probes run theirs (sigma.agent.runtime.execin): `runc exec`
in a runc container, nsenter into a process container, in its own session. With a TTY the
agent opens a pty for the command; under runc, runc makes one in the container and relays
it to the agent's (and passes its size on: resizing ours signals runc). The client going
away (or the master, or the agent's shutdown) kills the command's whole process group and,
under runc, the exec'd process itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import tempfile
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sigma.agent.runtime import execin
from sigma.agent.wsconn import WsConn
from sigma.api import websocket as ws

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
MAX_BACKLOG = 1 << 20  # stop reading the command's output while this much waits for the client
PR_SET_NO_NEW_PRIVS = 38
INITIAL_SIZE_WAIT_S = 1.0


@dataclass(frozen=True)
class ExecRequest:
    argv: list[str]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def request_of(query: dict[str, list[str]]) -> ExecRequest:
    def flag(name: str, default: bool = False) -> bool:
        values = query.get(name)
        return values[-1].lower() in ("1", "true") if values else default

    return ExecRequest(list(query.get("command") or []), flag("stdin"), flag("stdout", True), flag("stderr"),
                       flag("tty"))


def exit_status(code: int, argv: list[str]) -> dict[str, Any]:
    """The error channel's last word, as the kubelet writes it."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {argv}, "
                       f"exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def failure(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500}


def resize_of(data: bytes) -> tuple[int, int] | None:
    """(rows, columns) of a resize message, None when it is not one."""
    try:
        size = json.loads(data)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
    return (height, width) if 0 < width < 1 << 16 and 0 < height < 1 << 16 else None


def set_window(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def _prepare(join: list[str], no_new_privs: bool, tty: bool) -> Callable[[], None]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def prepare() -> None:  # in the child, before exec
        for procs in join:
            with open(procs, "w") as f:
                f.write("0")
        if no_new_privs:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty becomes the session's terminal

    return prepare


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    stdin: int | None = None  # fd we write the client's stdin to
    outputs: dict[int, int] = field(default_factory=dict)  # fd -> channel
    terminal: int | None = None  # the pty master (resize)
    pid_file: str = ""
    workdir: str = ""


def first_size(conn: WsConn, wait: float = INITIAL_SIZE_WAIT_S) -> tuple[tuple[int, int] | None, list[ws.Message]]:
    """With a TTY kubectl sends the terminal's size first: wait a moment for it, so the command
    starts at the right size instead of 0x0 (`stty size`, full-screen programs). Returns the
    size and every message read meanwhile, for the session to handle."""
    deadline, early = time.monotonic() + wait, []
    while time.monotonic() < deadline and not conn.closed:
        ready, _, _ = select.select([conn], [], [], 0 if conn.pending() else max(0.0, deadline - time.monotonic()))
        if not ready and not conn.pending():
            break
        for message in conn.read():
            early.append(message)
            if message.opcode == ws.BINARY and message.data[:1] == bytes([RESIZE]):
                return resize_of(message.data[1:]), early
    return None, early


def start(meta: dict[str, Any], pid: int, req: ExecRequest, size: tuple[int, int] | None = None) -> Running:
    """Start the command; OSError with a sentence when it cannot be."""
    workdir = tempfile.mkdtemp(prefix="sigma-exec-")
    pid_file = os.path.join(workdir, "pid") if meta.get("mode") == "runc" else ""
    process_file = _runc_process(meta, req.argv, size, workdir) if req.tty and size is not None else ""
    cmd, env, join, nnp = execin.interactive_command(meta, pid, req.argv, req.tty, pid_file, process_file)
    try:
        if req.tty:
            master, slave = pty.openpty()
            if size is not None:
                set_window(slave, *size)
            try:
                proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                                        preexec_fn=_prepare(join, nnp, True))
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            return Running(proc, master if req.stdin else None, {master: STDOUT}, master, pid_file, workdir)
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if req.stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE if req.stdout else subprocess.DEVNULL,
                                stderr=subprocess.PIPE if req.stderr else subprocess.DEVNULL,
                                env=env, start_new_session=True, preexec_fn=_prepare(join, nnp, False))
    except BaseException:
        _remove(workdir)
        raise
    running = Running(proc, pid_file=pid_file, workdir=workdir)
    for stream, channel in ((proc.stdout, STDOUT), (proc.stderr, STDERR)):
        if stream is not None:
            os.set_blocking(stream.fileno(), False)
            running.outputs[stream.fileno()] = channel
    if proc.stdin is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        running.stdin = proc.stdin.fileno()
    return running


def _runc_process(meta: dict[str, Any], argv: list[str], size: tuple[int, int], workdir: str) -> str:
    """A --process file for runc exec: the container's own process with our argv and the
    terminal's size, which runc gives the pty before the command starts (resizing it after
    would race a command that reads its size at once). "" when there is no bundle to read."""
    if meta.get("mode") != "runc" or not meta.get("bundle"):
        return ""
    try:
        with open(os.path.join(str(meta["bundle"]), "config.json")) as f:
            process = dict(json.load(f)["process"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    process.update(args=argv, terminal=True, consoleSize={"height": size[0], "width": size[1]})
    path = os.path.join(workdir, "process.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(process, f)
    return path


def _kill(proc: subprocess.Popen[bytes], pid_file: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        if pid_file and os.path.exists(pid_file):  # the exec'd process inside a runc container
            with open(pid_file) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _remove(workdir: str) -> None:
    if workdir:
        for name in os.listdir(workdir):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(workdir, name))
        with contextlib.suppress(OSError):
            os.rmdir(workdir)


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def serve(conn: WsConn, running: Running, req: ExecRequest, v5: bool, stopping: Callable[[], bool],
          early: list[ws.Message] | None = None) -> None:
    """Pump until the command has exited and its output is sent, or the client is gone."""
    proc, stdin_buffer = running.proc, bytearray()
    stdin_done = running.stdin is None
    # A pty master is ours to close; pipes are closed through their file objects (closing
    # both would close a number another thread may have been given since).
    owned = {running.terminal} if running.terminal is not None else set()
    try:
        while True:
            if conn.closed or stopping():
                return  # the finally kills the command: nobody is left to read it
            readers: list[Any] = [conn] if len(stdin_buffer) < MAX_BACKLOG else []
            if conn.backlog < MAX_BACKLOG:
                readers += list(running.outputs)
            writers: list[Any] = [conn] if conn.wants_write() else []
            if stdin_buffer and running.stdin is not None:
                writers.append(running.stdin)
            timeout = 0 if conn.pending() or early else 0.2
            ready_r, ready_w, _ = select.select(readers, writers, [], timeout)
            if conn in ready_r or conn.pending() or early:
                messages, early = [*(early or []), *(conn.read() if conn in ready_r or conn.pending() else [])], None
                for message in messages:
                    if message.opcode == ws.CLOSE:
                        return
                    if message.opcode != ws.BINARY or not message.data:
                        continue
                    channel, data = message.data[0], message.data[1:]
                    if channel == STDIN and not stdin_done:
                        stdin_buffer += data
                    elif channel == RESIZE and running.terminal is not None:
                        size = resize_of(data)
                        if size is not None:
                            with contextlib.suppress(OSError):
                                set_window(running.terminal, *size)
                    elif channel == CLOSE and v5 and data[:1] == bytes([STDIN]):
                        stdin_done = True
            # stderr before stdout: a command's complaint usually precedes the end of its output,
            # and a client (kubectl cp) may stop reading once the output is complete.
            for fd in sorted((fd for fd in ready_r if isinstance(fd, int)), key=lambda fd: -running.outputs[fd]):
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the pty's other side is closed
                    chunk = b""
                if chunk:
                    conn.send(ws.BINARY, bytes([running.outputs[fd]]) + chunk)
                else:
                    del running.outputs[fd]
            if stdin_buffer and running.stdin is not None and running.stdin in ready_w:
                try:
                    written = os.write(running.stdin, bytes(stdin_buffer[:65536]))
                    del stdin_buffer[:written]
                except BlockingIOError:
                    pass
                except OSError:  # the command closed its stdin
                    stdin_buffer.clear()
                    stdin_done = True
            if stdin_done and not stdin_buffer and running.stdin is not None and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # end of file for the command
                running.stdin = None
            if conn in ready_w or conn.wants_write():
                conn.flush()
            if not running.outputs and proc.poll() is not None:
                break
            if running.terminal is not None and proc.poll() is not None:
                # The pty may stay open in a background child: the command's end ends the session.
                _drain_terminal(conn, running)
                break
        code = proc.returncode
        code = 128 - code if code < 0 else code  # killed by a signal: the shell's convention
        conn.send(ws.BINARY, bytes([ERROR]) + json.dumps(exit_status(code, req.argv)).encode())
        conn.close()
        conn.drain()
    finally:
        if proc.poll() is None:
            _kill(proc, running.pid_file)
        for fd in owned:
            _close(fd)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        _remove(running.workdir)


def _drain_terminal(conn: WsConn, running: Running) -> None:
    deadline = time.monotonic() + 0.5
    while running.terminal is not None and time.monotonic() < deadline:
        ready, _, _ = select.select([running.terminal], [], [], 0.05)
        if not ready:
            break
        try:
            chunk = os.read(running.terminal, 65536)
        except OSError:
            break
        if not chunk:
            break
        conn.send(ws.BINARY, bytes([STDOUT]) + chunk)
