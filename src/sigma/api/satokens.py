"""ServiceAccount tokens: JWTs signed by the master (RS256), as Kubernetes' TokenRequest
issues them, and their verification.

A token's claims are Kubernetes' (``iss``, ``sub`` = ``system:serviceaccount:NS:NAME``,
``aud``, ``exp``, ``iat``, ``nbf``, ``jti`` and ``kubernetes.io`` with the namespace, the
ServiceAccount's name and uid and, for a bound token, the pod's or Secret's name and uid).
The signing key is ``STATE/sa-signer.key`` (RSA 2048, mode 0600, created on the first
start). ``verify`` is pure (the token, the public key, the time -> the claims or why not);
whether the account and the bound object still exist is the authenticator's question
(sigma.api.satoken_auth).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)  # what the API accepts when a token names no other audience
KEY_FILE = "sa-signer.key"
DEFAULT_EXPIRATION_S = 3600
MIN_EXPIRATION_S = 600  # TokenRequest: "may not specify a duration less than 10 minutes"
MAX_EXPIRATION_S = 2**32
SA_PREFIX = "system:serviceaccount:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Binding:
    """The object a token is bound to: it stops working when that object is gone."""

    kind: str  # Pod | Secret
    name: str
    uid: str


def claims_for(namespace: str, sa_name: str, sa_uid: str, audiences: list[str], now: float, expiration_s: int,
               bound: Binding | None = None, node: tuple[str, str] | None = None) -> dict[str, Any]:
    """The claims of a token (pure)."""
    k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": sa_name, "uid": sa_uid}}
    if bound is not None:
        k8s[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
    if node is not None:
        k8s["node"] = {"name": node[0], "uid": node[1]}
    issued = int(now)
    return {"aud": list(audiences), "exp": issued + expiration_s, "iat": issued, "nbf": issued, "iss": ISSUER,
            "jti": str(uuid.uuid4()), "kubernetes.io": k8s, "sub": f"{SA_PREFIX}{namespace}:{sa_name}"}


class Signer:
    """The master's RSA key: signs tokens, and verifies them with its public half."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self.public = key.public_key()
        der = self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = _b64(hashes_sha256(der))

    @classmethod
    def load(cls, state_dir: Path | None) -> Signer:
        """STATE/sa-signer.key, created when absent; a key in memory without a directory."""
        if state_dir is None:
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        path = state_dir / KEY_FILE
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            state_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            os.replace(tmp, path)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA private key")
        return cls(loaded)

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.key_id}
        signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}." \
                        f"{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"


def hashes_sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def verify(token: str, public: rsa.RSAPublicKey, now: float, audiences: tuple[str, ...] = API_AUDIENCES
           ) -> tuple[dict[str, Any] | None, str]:
    """The claims of a valid token for one of ``audiences``, or None and why not. Tokens
    that are not JWTs (the static tokens) are simply not ours: None, ""."""
    parts = token.split(".")
    if len(parts) != 3:
        return None, ""
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except (ValueError, UnicodeDecodeError):
        return None, ""
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
        return None, "unsupported token"
    if claims.get("iss") != ISSUER:
        return None, ""
    try:
        public.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return None, "invalid signature"
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int) or now >= exp:
        return None, "token has expired"
    if isinstance(nbf, int) and now < nbf - 60:  # a minute of clock skew, as Kubernetes allows
        return None, "token is not valid yet"
    aud = claims.get("aud")
    aud_list = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not set(aud_list) & set(audiences):
        return None, "token audiences are not accepted"
    sub = claims.get("sub")
    k8s = claims.get("kubernetes.io")
    if not isinstance(sub, str) or not sub.startswith(SA_PREFIX) or not isinstance(k8s, dict):
        return None, "not a service account token"
    return claims, ""
