"""The benches' process helpers: SIGTERM unwinds like Ctrl-C; a session is killed whole."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from sigma.bench.procs import kill_group, sigterm_as_interrupt


def test_sigterm_inside_unwinds_as_keyboard_interrupt_and_the_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM"), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal lands before this ends
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.e2e
def test_kill_group_kills_the_process_and_what_it_started() -> None:
    process = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"], stdout=subprocess.PIPE,
                               start_new_session=True)
    assert process.stdout is not None
    child = int(process.stdout.readline())
    kill_group(process)
    assert process.returncode == -signal.SIGKILL and process.stdout.closed
    for _ in range(100):  # the child is killed too (reaped by init once its parent is gone)
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        with open(f"/proc/{child}/stat") as f:
            assert f.read().split()[2] == "Z", "the child outlived its session"
    kill_group(process)  # twice is harmless
