"""The demo's batch program: hashes for the time given, says how many, succeeds; stops at once on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from sigma.demo.podpython import hash_for


@pytest.mark.e2e
def test_the_program_hashes_for_its_time_and_reports_the_count() -> None:
    done = subprocess.run([sys.executable, "-c", hash_for(0.3, "map: ")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"map: [1-9]\d* hashes in 0.3s\n", done.stdout)


@pytest.mark.e2e
def test_sigterm_stops_it_at_once_with_a_failure() -> None:
    process = subprocess.Popen([sys.executable, "-c", hash_for(300, "")])
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 1
