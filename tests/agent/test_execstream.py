"""The exec session's pure parts (sigma.agent.execstream): the error channel's Status, the
resize message, the request's flags."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import termios

from sigma.agent import execstream


def test_the_exit_status_is_what_kubectl_reads_its_exit_code_from() -> None:
    assert execstream.exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failed = execstream.exit_status(3, ["sh", "-c", "exit 3"])
    assert failed["status"] == "Failure" and failed["reason"] == "NonZeroExitCode"
    assert failed["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}
    assert failed["message"] == ("command terminated with non-zero exit code: error executing command "
                                 "['sh', '-c', 'exit 3'], exit code 3")


def test_resize_messages_are_rows_and_columns_or_nothing() -> None:
    assert execstream.resize_of(b'{"Width":100,"Height":40}') == (40, 100)
    for bad in (b"", b"{}", b'{"Width":0,"Height":40}', b'{"Width":"x","Height":1}', b"[1]", b'{"Width":70000,'
                                                                                               b'"Height":1}'):
        assert execstream.resize_of(bad) is None


def test_a_window_size_set_on_a_pty_is_read_back() -> None:
    master, slave = pty.openpty()
    try:
        execstream.set_window(master, 40, 100)
        rows, columns, _, _ = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))
        assert (rows, columns) == (40, 100)
    finally:
        os.close(master)
        os.close(slave)


def test_request_flags_default_as_the_kubelet_reads_them() -> None:
    req = execstream.request_of({"command": ["ls", "-l"], "stdin": ["1"], "tty": ["true"]})
    assert req == execstream.ExecRequest(["ls", "-l"], stdin=True, stdout=True, stderr=False, tty=True)
