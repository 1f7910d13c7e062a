"""The agent's serving certificate: self-generated, kept in STATE/pki, pinned by its Node.

The master does not sign it: a certificate the cluster CA signed for a node could name any
address, the master's included. Instead the agent publishes the SHA-256 of its certificate
in its Node (annotation sigma.io/serving-cert-sha256, writable only with this node's
credential) and the master's log proxy accepts exactly that certificate. The key is 0600
in a 0700 directory and is replaced when it is missing, unreadable or about to expire.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ServingCert:
    cert: Path
    key: Path
    sha256: str  # of the DER certificate, what the Node publishes


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _load(cert_path: Path, key_path: Path) -> ServingCert | None:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if cert.not_valid_after_utc - RENEW_BEFORE < datetime.datetime.now(datetime.UTC):
        return None
    return ServingCert(cert_path, key_path, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest())


def ensure_serving_cert(state_dir: str | Path, node_name: str, addresses: list[str]) -> ServingCert:
    """The certificate in ``STATE/pki``, created (for ``node_name`` and ``addresses``) if needed."""
    pki = Path(state_dir) / "pki"
    pki.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(pki, 0o700)
    cert_path, key_path = pki / "serving.crt", pki / "serving.key"
    existing = _load(cert_path, key_path)
    if existing is not None:
        return existing
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    sans: list[x509.GeneralName] = []
    for address in dict.fromkeys([*addresses, node_name]):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            sans.append(x509.DNSName(address))
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return ServingCert(cert_path, key_path, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest())
