"""The cluster's certificate authority, the API server's certificate and client certificates.

``sigma master`` creates the CA in ``STATE/auth/ca.{crt,key}`` the first time it starts and
keeps it: kubeconfigs written later carry the same CA. The server certificate is issued at
every start for the names the master is reached by (its listen address, localhost, the
hostname), so changing ``--listen`` needs no manual step. A client certificate names its user
in the subject's CN and its groups in O, as Kubernetes reads them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 365


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, private: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _save(pair: CertPair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> CertPair:
    pair.cert.parent.mkdir(parents=True, exist_ok=True)
    _write(pair.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), private=True)
    _write(pair.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return pair


def ensure_ca(auth_dir: Path) -> CertPair:
    """The CA of this state directory, created on first use."""
    pair = CertPair(auth_dir / "ca.crt", auth_dir / "ca.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigma-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return _save(pair, cert, key)


def _load_ca(ca: CertPair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca.key}: expected an EC private key")
    return cert, key


def _issue(ca: CertPair, subject: x509.Name, usage: x509.ObjectIdentifier,
           sans: list[x509.GeneralName], out: CertPair) -> CertPair:
    ca_cert, ca_key = _load_ca(ca)
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _save(out, builder.sign(ca_key, hashes.SHA256()), key)


def issue_server_cert(ca: CertPair, hosts: list[str], out: CertPair) -> CertPair:
    """A serving certificate valid for ``hosts`` plus localhost, 127.0.0.1 and the hostname."""
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost", "127.0.0.1", "::1", socket.gethostname()]):
        if not host or host in ("0.0.0.0", "::"):
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sigma-apiserver")])
    return _issue(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, names, out)


def issue_client_cert(ca: CertPair, user: str, groups: tuple[str, ...], out: CertPair) -> CertPair:
    """A client certificate for ``user`` (CN) in ``groups`` (one O each)."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    subject = x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, user)])
    return _issue(ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH, [], out)


def ensure_client_cert(ca: CertPair, user: str, groups: tuple[str, ...], out: CertPair) -> CertPair:
    """``out`` if it holds a certificate of this CA with a month left, else a new one: masters
    sharing a state directory then keep one pair rather than rewriting it under each other."""
    try:
        cert = x509.load_pem_x509_certificate(out.cert.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
        serialization.load_pem_private_key(out.key.read_bytes(), password=None)
        fresh = cert.not_valid_after_utc - datetime.timedelta(days=30) > datetime.datetime.now(datetime.UTC)
        if fresh and cert.issuer == ca_cert.subject:
            cert.verify_directly_issued_by(ca_cert)
            return out
    except (OSError, ValueError, TypeError, InvalidSignature):
        pass
    return issue_client_cert(ca, user, groups, out)


def user_of_peer_cert(peercert: dict[str, object]) -> tuple[str, tuple[str, ...]] | None:
    """(CN, O values) of a verified peer certificate as ssl's getpeercert() reports it."""
    cn, orgs = None, []
    for rdn in peercert.get("subject", ()) or ():  # type: ignore[attr-defined]
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    return (cn, tuple(orgs)) if cn else None
