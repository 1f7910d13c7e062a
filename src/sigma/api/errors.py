"""API errors as Kubernetes metav1.Status objects.

Every failure the API returns is a Status with a machine-readable ``reason``, a message a
person can act on and, for invalid objects, the field path of each cause. Clients (kubectl,
the kubernetes Python client) print ``message``, so it names the object and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sigma.store.contract import StorageFull, StoreUnavailable


@dataclass
class Cause:
    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:  # a cause about the request as a whole names no field (Kubernetes omits it)
            out["field"] = self.field
        return out


@dataclass
class ApiError(Exception):
    code: int
    reason: str
    message: str
    kind: str = ""
    name: str = ""
    group: str = ""
    causes: list[Cause] = field(default_factory=list)
    retry_after_seconds: int | None = None

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after_seconds is not None:
            details["retryAfterSeconds"] = self.retry_after_seconds
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            out["details"] = details
        return out


def _what(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(404, "NotFound", f'{_what(resource, group)} "{name}" not found',
                    kind=resource, name=name, group=group)


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_what(resource, group)} "{name}" already exists',
                    kind=resource, name=name, group=group)


def conflict(resource: str, name: str, group: str = "", detail: str = "") -> ApiError:
    detail = detail or ("the object has been modified; please apply your changes to the latest "
                        "version and try again")
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_what(resource, group)} "{name}": {detail}',
                    kind=resource, name=name, group=group)


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> ApiError:
    summary = "; ".join(f"{c.field}: {c.message}" for c in causes)
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}',
                    kind=kind, name=name, group=group, causes=causes)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def resource_version_too_large(requested: int, current: int) -> ApiError:
    """A read at a resourceVersion the store has not reached, after waiting for it: 504
    Timeout, in kube-apiserver's words, with its ResourceVersionTooLarge cause; clients
    retry after a second."""
    return ApiError(504, "Timeout", f"Timeout: Too large resource version: {requested}, current: {current}",
                    causes=[Cause("", "Too large resource version", "ResourceVersionTooLarge")],
                    retry_after_seconds=1)


def method_not_allowed(message: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"the request body exceeds the limit of {limit} bytes")


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: "
                    f"{content_type or '(none)'} (accepted: application/json, application/yaml, "
                    "application/merge-patch+json, application/json-patch+json, "
                    "application/strategic-merge-patch+json, application/apply-patch+yaml)")


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}")



def storage_fault(err: StoreUnavailable) -> ApiError:
    """The store could not take the write (or serve the read): the request was fine, the
    storage was not. A full disk is 507 Insufficient Storage; a read-only state directory or
    an unreachable etcd is 503. Both carry Retry-After: the condition is expected to pass."""
    if isinstance(err, StorageFull):
        return ApiError(507, "InsufficientStorage", f"the store refused the write: {err}", retry_after_seconds=5)
    return ApiError(503, "ServiceUnavailable", f"the store is unavailable: {err}", retry_after_seconds=1)
