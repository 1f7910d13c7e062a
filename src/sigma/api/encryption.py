"""Encryption at rest of Secrets, on Kubernetes' EncryptionConfiguration model.

The keys live in ``STATE/encryption-config.yaml`` (mode 0600), an EncryptionConfiguration
with one ``aesgcm`` provider for ``secrets`` and ``identity`` after it::

    kind: EncryptionConfiguration
    apiVersion: apiserver.config.k8s.io/v1
    resources:
    - resources: [secrets]
      providers:
      - aesgcm:
          keys:
          - {name: key2, secret: <base64 of 32 random bytes>}   # writes
          - {name: key1, secret: ...}                           # still read
      - identity: {}                                            # values stored in plain

The file is created with one key on the master's first start. A stored value is
``k8s:enc:aesgcm:v1:<key name>:`` followed by a 12-byte random nonce and the AES-GCM
ciphertext, with the store key as associated data (a value copied under another key does
not decrypt). Values without the prefix are read as they are (the identity provider).

Rotation (`rotate_key`): a new key is put first, the old ones stay for reading; at its next
start the master re-encrypts every Secret not under the first key (encrypted_store.
reencrypt), after which an old key may be removed from the file.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CONFIG_FILE = "encryption-config.yaml"
PREFIX = b"k8s:enc:aesgcm:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32
ENCRYPTED_RESOURCES = ("secrets",)


class DecryptionError(ValueError):
    """A stored value names a key the keyring does not have, or does not authenticate."""


@dataclass(frozen=True)
class Keyring:
    """AES-GCM keys by name; the first one encrypts, all of them decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("an aesgcm provider needs at least one key")
        for name, secret in self.keys:
            if not name or ":" in name:
                raise ValueError(f"encryption key name {name!r}: must be non-empty without ':'")
            if len(secret) not in (16, 24, 32):
                raise ValueError(f"encryption key {name}: must be 16, 24 or 32 bytes, not {len(secret)}")

    @property
    def write_key(self) -> str:
        return self.keys[0][0]

    def encrypt(self, value: bytes, context: bytes, nonce: bytes | None = None) -> bytes:
        name, secret = self.keys[0]
        nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        return PREFIX + name.encode() + b":" + nonce + AESGCM(secret).encrypt(nonce, value, context)

    def decrypt(self, stored: bytes, context: bytes) -> bytes:
        """The plain value; a value without the prefix is returned as it is (identity)."""
        if not stored.startswith(PREFIX):
            return stored
        name, sep, rest = stored[len(PREFIX):].partition(b":")
        secret = dict(self.keys).get(name.decode(errors="replace"))
        if not sep or secret is None:
            raise DecryptionError(f"no encryption key named {name.decode(errors='replace')!r} to read {context!r}")
        try:
            return AESGCM(secret).decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], context)
        except Exception as err:  # InvalidTag: tampered with, or another key of that name
            raise DecryptionError(f"the stored value of {context!r} does not decrypt") from err

    def needs_rewrite(self, stored: bytes) -> bool:
        """True for a value in plain or under a key that is no longer the write key."""
        return not stored.startswith(PREFIX + self.write_key.encode() + b":")


def config_document(keys: tuple[tuple[str, bytes], ...]) -> dict[str, Any]:
    return {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
            "resources": [{"resources": list(ENCRYPTED_RESOURCES),
                           "providers": [{"aesgcm": {"keys": [{"name": n, "secret": base64.b64encode(s).decode()}
                                                              for n, s in keys]}},
                                         {"identity": {}}]}]}


def parse_config(doc: Any) -> Keyring:
    """The aesgcm keys of the provider list for secrets (ValueError naming what is wrong)."""
    for entry in (doc or {}).get("resources") or []:
        if "secrets" not in (entry.get("resources") or []):
            continue
        for provider in entry.get("providers") or []:
            if "aesgcm" in provider:
                keys = tuple((str(k["name"]), base64.b64decode(str(k["secret"]), validate=True))
                             for k in provider["aesgcm"].get("keys") or [])
                return Keyring(keys)
    raise ValueError("the encryption configuration has no aesgcm provider for secrets")


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    os.replace(tmp, path)  # a crash leaves the old file or the new one, never half of one


def load_keyring(state_dir: Path) -> Keyring:
    """The keyring of STATE/encryption-config.yaml, created with one new key when absent."""
    path = state_dir / CONFIG_FILE
    if not path.exists():
        _write_private(path, config_document((("key1", secrets.token_bytes(KEY_BYTES)),)))
    return parse_config(yaml.safe_load(path.read_text(encoding="utf-8")))


def rotate_key(state_dir: Path) -> str:
    """Put a new key first (it encrypts from the master's next start; the old keys still
    decrypt); the new key's name."""
    keyring = load_keyring(state_dir)
    taken = {name for name, _ in keyring.keys}
    number = len(taken) + 1
    while f"key{number}" in taken:
        number += 1
    name = f"key{number}"
    _write_private(state_dir / CONFIG_FILE, config_document(((name, secrets.token_bytes(KEY_BYTES)),
                                                             *keyring.keys)))
    return name


def ephemeral_keyring() -> Keyring:
    """A keyring held in memory only: for masters without a state directory (an in-memory
    store, whose Secrets die with it anyway)."""
    return Keyring((("ephemeral", secrets.token_bytes(KEY_BYTES)),))


def master_state_dir(store_url: str, auth_state_dir: Path | None) -> Path | None:
    """Where a master keeps its keys: the auth state directory, else the SQLite file's
    directory; None for an in-memory store without one (keys then live in memory)."""
    if auth_state_dir is not None:
        return auth_state_dir
    path = store_url[len("sqlite://"):] if store_url.startswith("sqlite://") else store_url
    if store_url.startswith("etcd://") or path in ("", ":memory:") or path.startswith(":memory:"):
        return None
    return Path(path).resolve().parent


def master_keyring(state_dir: Path | None) -> Keyring:
    return load_keyring(state_dir) if state_dir is not None else ephemeral_keyring()
