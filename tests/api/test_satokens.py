"""ServiceAccount JWTs: signed by the master's key, checked for signature, time and audience
(pure: the clock is a number)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from sigma.api.satokens import ISSUER, KEY_FILE, Binding, Signer, claims_for, verify

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.load(None)


def token(signer: Signer, audiences: list[str] | None = None, expiration_s: int = 3600) -> str:
    return signer.sign(claims_for("team", "web", "uid-1", audiences or [ISSUER], NOW, expiration_s,
                                  Binding("Pod", "p", "uid-p")))


def test_a_token_carries_kubernetes_claims(signer: Signer) -> None:
    claims, why = verify(token(signer), signer.public, NOW + 10)
    assert why == "" and claims is not None
    assert claims["sub"] == "system:serviceaccount:team:web" and claims["exp"] == int(NOW) + 3600
    assert claims["kubernetes.io"] == {"namespace": "team", "serviceaccount": {"name": "web", "uid": "uid-1"},
                                       "pod": {"name": "p", "uid": "uid-p"}}
    header = json.loads(base64.urlsafe_b64decode(token(signer).split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["kid"] == signer.key_id


def test_expired_tokens_and_other_audiences_are_refused(signer: Signer) -> None:
    assert verify(token(signer), signer.public, NOW + 3600) == (None, "token has expired")
    assert verify(token(signer, ["vault"]), signer.public, NOW)[1] == "token audiences are not accepted"
    assert verify(token(signer, ["vault"]), signer.public, NOW, ("vault",))[0] is not None


def test_another_key_or_a_changed_claim_does_not_verify(signer: Signer) -> None:
    other = Signer.load(None)
    assert verify(token(other), signer.public, NOW)[1] == "invalid signature"
    head, body, sig = token(signer).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert verify(f"{head}.{forged}.{sig}", signer.public, NOW)[1] == "invalid signature"


def test_static_tokens_are_not_ours(signer: Signer) -> None:
    assert verify("abcdef.0123456789abcdef", signer.public, NOW) == (None, "")
    assert verify("admin-token", signer.public, NOW) == (None, "")


def test_the_signing_key_is_kept_private_across_starts(tmp_path: Path) -> None:
    first = Signer.load(tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    again = Signer.load(tmp_path)
    assert verify(first.sign(claims_for("a", "b", "u", [ISSUER], NOW, 600)), again.public, NOW)[0] is not None
