"""`sigma secrets rotate-key`: the new key goes first, the old ones stay for reading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sigma.api.encryption import CONFIG_FILE, load_keyring

pytestmark = pytest.mark.e2e  # runs the sigma command


def sigma(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sigma", *args], capture_output=True, text=True, timeout=60)


def test_rotate_key_puts_a_new_key_first_and_keeps_the_old_one(tmp_path: Path) -> None:
    first = load_keyring(tmp_path)  # as the master's first start makes it
    done = sigma("secrets", "rotate-key", "--state-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "key2 is now first" in done.stdout
    keys = yaml.safe_load((tmp_path / CONFIG_FILE).read_text())["resources"][0]["providers"][0]["aesgcm"]["keys"]
    assert [k["name"] for k in keys] == ["key2", "key1"]
    assert load_keyring(tmp_path).keys[1] == first.keys[0]
    assert (tmp_path / CONFIG_FILE).stat().st_mode & 0o777 == 0o600


def test_rotate_key_refuses_a_directory_that_is_not_there(tmp_path: Path) -> None:
    done = sigma("secrets", "rotate-key", "--state-dir", str(tmp_path / "missing"))
    assert done.returncode != 0 and "is not a state directory" in done.stderr
