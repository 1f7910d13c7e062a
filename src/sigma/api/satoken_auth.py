"""The TokenRequest API (``POST .../serviceaccounts/NAME/token``) and the authenticator of
the tokens it issues, beside the token file's (sigma.api.auth.middleware asks it for
bearer tokens the token file does not know).

A token authenticates as ``system:serviceaccount:NS:NAME`` in the groups
``system:serviceaccounts`` and ``system:serviceaccounts:NS`` while it has not expired, its
audience is the API's, its ServiceAccount still exists with the uid it was issued for, and
the pod or Secret it is bound to (if any) too: deleting the pod ends its tokens at once.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sigma.api import errors
from sigma.api.auth.identity import AUTHENTICATED, User
from sigma.api.errors import ApiError, Cause
from sigma.api.objects import now_rfc3339
from sigma.api.registry import Registry
from sigma.api.resources import resource
from sigma.api.satokens import (
    API_AUDIENCES,
    DEFAULT_EXPIRATION_S,
    MAX_EXPIRATION_S,
    MIN_EXPIRATION_S,
    SA_PREFIX,
    Binding,
    Signer,
    claims_for,
    verify,
)

SERVICE_ACCOUNTS, PODS, SECRETS = resource("serviceaccounts"), resource("pods"), resource("secrets")
BOUND_KINDS = {"Pod": PODS, "Secret": SECRETS}
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"


def service_account_user(namespace: str, name: str, uid: str) -> User:
    return User(f"{SA_PREFIX}{namespace}:{name}", uid,
                (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}", AUTHENTICATED))


class TokenService:
    def __init__(self, registry: Registry, signer: Signer, clock: Callable[[], float] = time.time) -> None:
        self.registry, self.signer, self.clock = registry, signer, clock

    # -- TokenRequest ---------------------------------------------------------------------------
    def request(self, namespace: str, name: str, body: Any, dry_run: bool = False) -> dict[str, Any]:
        """The TokenRequest answered (status.token filled), as kube-apiserver's TokenREST."""
        if body is not None and not isinstance(body, dict):
            raise errors.bad_request("the body must be a TokenRequest object")
        spec = dict((body or {}).get("spec") or {})
        audiences = [str(a) for a in spec.get("audiences") or []] or list(API_AUDIENCES)
        expiration = spec.get("expirationSeconds")
        expiration = DEFAULT_EXPIRATION_S if expiration is None else expiration
        causes = _spec_causes(expiration, spec.get("boundObjectRef"))
        if causes:
            raise errors.invalid("TokenRequest", name, causes, "authentication.k8s.io")
        sa = self.registry.get(SERVICE_ACCOUNTS, namespace, name)
        bound, node = self._bound(namespace, spec.get("boundObjectRef"))
        now = self.clock()
        claims = claims_for(namespace, name, sa["metadata"]["uid"], audiences, now, int(expiration), bound, node)
        spec.update({"audiences": audiences, "expirationSeconds": int(expiration)})
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": now_rfc3339(now)},
                "spec": spec,
                "status": {"token": "" if dry_run else self.signer.sign(claims),
                           "expirationTimestamp": now_rfc3339(claims["exp"])}}

    def _bound(self, namespace: str, ref: Any) -> tuple[Binding | None, tuple[str, str] | None]:
        if not ref:
            return None, None
        rt = BOUND_KINDS[ref["kind"]]
        obj = self.registry.get(rt, namespace, ref.get("name") or "")
        uid = obj["metadata"]["uid"]
        if ref.get("uid") and ref["uid"] != uid:
            raise errors.conflict(rt.plural, obj["metadata"]["name"], detail=(
                f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. The "
                "object might have been deleted and then recreated"))
        node_name = (obj.get("spec") or {}).get("nodeName") if rt is PODS else None
        return Binding(ref["kind"], obj["metadata"]["name"], uid), (node_name, "") if node_name else None

    # -- authentication -------------------------------------------------------------------------
    def authenticate(self, token: str) -> User | None:
        claims, _ = verify(token, self.signer.public, self.clock())
        if claims is None:
            return None
        k8s = claims["kubernetes.io"]
        namespace = str(k8s.get("namespace") or "")
        account = k8s.get("serviceaccount") or {}
        if not self._still(SERVICE_ACCOUNTS, namespace, account):
            return None  # the account was deleted (or deleted and made again)
        for kind, rt in BOUND_KINDS.items():
            ref = k8s.get(kind.lower())
            if ref is not None and not self._still(rt, namespace, ref):
                return None  # bound to a pod or Secret that is gone
        return service_account_user(namespace, str(account.get("name")), str(account.get("uid") or ""))

    def _still(self, rt: Any, namespace: str, ref: Any) -> bool:
        if not isinstance(ref, dict):
            return False
        try:
            obj = self.registry.get(rt, namespace, str(ref.get("name") or ""))
        except ApiError:
            return False
        return bool(obj["metadata"].get("uid") == ref.get("uid"))


def _spec_causes(expiration: Any, ref: Any) -> list[Cause]:
    causes = []
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        causes.append(Cause("spec.expirationSeconds", "Invalid value: must be an integer"))
    elif expiration < MIN_EXPIRATION_S:
        causes.append(Cause("spec.expirationSeconds", f"Invalid value: {expiration}: may not specify a duration "
                            "less than 10 minutes"))
    elif expiration > MAX_EXPIRATION_S:
        causes.append(Cause("spec.expirationSeconds", f"Invalid value: {expiration}: may not specify a duration "
                            "larger than 2^32 seconds"))
    if ref and (not isinstance(ref, dict) or ref.get("kind") not in BOUND_KINDS):
        kind = ref.get("kind") if isinstance(ref, dict) else ref
        causes.append(Cause("spec.boundObjectRef.kind", f'Unsupported value: "{kind}": supported values: '
                            '"Pod", "Secret"', "FieldValueNotSupported"))
    return causes


_services: weakref.WeakKeyDictionary[Registry, TokenService] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def attach(registry: Registry, signer: Signer) -> TokenService:
    """The registry's token service, signing with ``signer`` (the master's key)."""
    with _lock:
        service = _services[registry] = TokenService(registry, signer)
    return service


def tokens_of(registry: Registry) -> TokenService:
    """The token service of ``registry``; one with a key in memory if none was attached (an
    API served without a state directory)."""
    with _lock:
        service = _services.get(registry)
    return service if service is not None else attach(registry, Signer.load(None))
