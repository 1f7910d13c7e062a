"""The keyring of Secrets at rest: AES-GCM, the stored prefix, rotation (pure, on files)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from sigma.api.encryption import (
    CONFIG_FILE,
    PREFIX,
    DecryptionError,
    Keyring,
    load_keyring,
    master_state_dir,
    parse_config,
    rotate_key,
)


def test_values_carry_the_kubernetes_prefix_and_the_key_name(tmp_path: Path) -> None:
    keyring = load_keyring(tmp_path)
    sealed = keyring.encrypt(b'{"data":"x"}', b"/registry/core/secrets/ns/a")
    assert sealed.startswith(PREFIX + b"key1:") and b'"data"' not in sealed
    assert keyring.decrypt(sealed, b"/registry/core/secrets/ns/a") == b'{"data":"x"}'


def test_the_key_file_is_private_and_kept_across_starts(tmp_path: Path) -> None:
    first = load_keyring(tmp_path)
    path = tmp_path / CONFIG_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keyring(tmp_path) == first
    doc = yaml.safe_load(path.read_text())
    assert doc["kind"] == "EncryptionConfiguration" and doc["resources"][0]["resources"] == ["secrets"]
    assert doc["resources"][0]["providers"][-1] == {"identity": {}}


def test_a_value_moved_to_another_key_does_not_decrypt(tmp_path: Path) -> None:
    keyring = load_keyring(tmp_path)
    sealed = keyring.encrypt(b"v", b"/registry/core/secrets/ns/a")
    with pytest.raises(DecryptionError):
        keyring.decrypt(sealed, b"/registry/core/secrets/ns/b")


def test_plain_values_are_read_as_they_are() -> None:
    keyring = Keyring((("k", b"0" * 32),))
    assert keyring.decrypt(b'{"kind":"Secret"}', b"key") == b'{"kind":"Secret"}'
    assert keyring.needs_rewrite(b'{"kind":"Secret"}')


def test_rotation_writes_with_the_new_key_and_reads_the_old(tmp_path: Path) -> None:
    old = load_keyring(tmp_path)
    sealed = old.encrypt(b"v", b"k")
    assert rotate_key(tmp_path) == "key2"
    new = load_keyring(tmp_path)
    assert new.write_key == "key2" and [n for n, _ in new.keys] == ["key2", "key1"]
    assert new.decrypt(sealed, b"k") == b"v" and new.needs_rewrite(sealed)
    assert not new.needs_rewrite(new.encrypt(b"v", b"k"))


def test_an_unknown_key_name_is_an_error() -> None:
    a, b = Keyring((("a", b"1" * 32),)), Keyring((("b", b"1" * 32),))
    with pytest.raises(DecryptionError):
        b.decrypt(a.encrypt(b"v", b"k"), b"k")


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_config({"resources": [{"resources": ["secrets"], "providers": [{"identity": {}}]}]})
    with pytest.raises(ValueError):
        Keyring((("short", b"x" * 5),))


def test_where_a_master_keeps_its_keys(tmp_path: Path) -> None:
    assert master_state_dir(f"sqlite://{tmp_path}/state.db", None) == tmp_path
    assert master_state_dir("sqlite://:memory:", None) is None
    assert master_state_dir("etcd://127.0.0.1:2379", tmp_path / "s") == tmp_path / "s"
