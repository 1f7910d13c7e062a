"""HttpClient: the ApiClient over the Kubernetes REST API (sync httpx).

URLs follow the Kubernetes layout, derived from the table of kinds in sigma.api.resources:
``/api/v1/namespaces/NS/pods/NAME/SUB`` for the core group, ``/apis/GROUP/VERSION/...`` for the
others; without a namespace a namespaced resource is listed across all namespaces. Every
non-2xx answer becomes an ``ApiError`` rebuilt from the server's metav1.Status, so a caller
sees the same reason and causes whether it talks to the master in-process or over HTTP.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from typing import Any, Literal, overload
from urllib.parse import quote

import httpx

from sigma.api.errors import ApiError, Cause
from sigma.api.resources import ResourceType, resolve_name
from sigma.client.base import PATCH_CONTENT_TYPES, PatchType, WatchEvent
from sigma.client.kubeconfig import KubeConfig, load_kubeconfig

__all__ = ["HttpClient", "KubeConfig", "ServerUnavailable", "api_error_from_status", "load_kubeconfig"]

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json"

# Reasons for answers that carry no Status body (a proxy, a crash before the API layer).
_HTTP_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                 405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
                 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
                 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                 504: "Timeout"}


class ServerUnavailable(ConnectionError):
    """The API server could not be reached at all (refused, unresolvable, TLS, timeout)."""


def api_error_from_status(status: Any, http_code: int) -> ApiError:
    """Rebuild the server's ApiError from a metav1.Status (or from a bare HTTP code)."""
    if not isinstance(status, dict) or status.get("kind") != "Status":
        reason = _HTTP_REASONS.get(http_code, "Unknown")
        text = status if isinstance(status, str) and status.strip() else f"HTTP {http_code}"
        return ApiError(http_code, reason, f"the server responded with {http_code} {reason}: {text}"[:500])
    details = status.get("details") or {}
    causes = [Cause(c.get("field", ""), c.get("message", ""), c.get("reason", ""))
              for c in details.get("causes") or []]
    return ApiError(int(status.get("code") or http_code), status.get("reason", ""),
                    status.get("message", ""), kind=details.get("kind", ""),
                    name=details.get("name", ""), group=details.get("group", ""), causes=causes,
                    retry_after_seconds=details.get("retryAfterSeconds"))


def resource_type(resource: str) -> ResourceType:
    """The ResourceType for a plural, singular or short name; 404 for a kind nobody serves."""
    rt = resolve_name(resource)
    if rt is None:
        raise ApiError(404, "NotFound", f'the server doesn\'t have a resource type "{resource}"')
    return rt


class HttpClient:
    def __init__(self, base_url: str, *, token: str | None = None, verify: bool | str = True,
                 ca_data: str | None = None, client_cert: tuple[str, str] | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        """``verify`` is a CA bundle path, True (system CAs) or False; ``ca_data`` a PEM string;
        ``client_cert`` a (cert file, key file) pair. ``transport`` is the seam for tests."""
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "sigma-client", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout,
                                  verify=_ssl_context(verify, ca_data, client_cert), transport=transport)
        self.timeout = timeout

    @classmethod
    def from_kubeconfig(cls, path: str, context: str | None = None, **kwargs: Any) -> HttpClient:
        return cls.from_config(load_kubeconfig(path, context), **kwargs)

    @classmethod
    def from_config(cls, config: KubeConfig, **kwargs: Any) -> HttpClient:
        cert = (config.client_cert, config.client_key) if config.client_cert and config.client_key else None
        verify: bool | str = False if config.insecure else (config.ca_file or True)
        return cls(config.server, token=config.token, verify=verify, ca_data=config.ca_data,
                   client_cert=cert, **kwargs)

    @property
    def http(self) -> httpx.Client:
        """The authenticated connection pool, for the master's other endpoints (the P2P tracker)."""
        return self._http

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the ApiClient verbs ---------------------------------------------------------------

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self._json("GET", self._path(resource, namespace, name))

    def list(self, resource: str, namespace: str | None = None, *, label_selector: str = "",
             field_selector: str = "") -> dict[str, Any]:
        return self._json("GET", self._path(resource, namespace),
                          params=_selectors(label_selector, field_selector))

    def create(self, resource: str, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        namespace = self._namespace_of(resource, obj, namespace)
        return self._json("POST", self._path(resource, namespace), json=obj)

    def update(self, resource: str, obj: dict[str, Any], namespace: str | None = None,
               subresource: str = "") -> dict[str, Any]:
        namespace = self._namespace_of(resource, obj, namespace)
        name = obj.get("metadata", {}).get("name", "")
        return self._json("PUT", self._path(resource, namespace, name, subresource), json=obj)

    def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None,
              patch_type: PatchType = "merge", subresource: str = "") -> dict[str, Any]:
        return self._json("PATCH", self._path(resource, namespace, name, subresource),
                          content=json.dumps(patch).encode(),
                          headers={"Content-Type": PATCH_CONTENT_TYPES[patch_type]})

    def delete(self, resource: str, name: str, namespace: str | None = None, *,
               grace_period_seconds: int | None = None, propagation_policy: str | None = None,
               preconditions_uid: str | None = None) -> dict[str, Any]:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions_uid:
            options["preconditions"] = {"uid": preconditions_uid}
        return self._json("DELETE", self._path(resource, namespace, name), json=options)

    def watch(self, resource: str, namespace: str | None = None, *, resource_version: str = "",
              label_selector: str = "", field_selector: str = "", timeout_seconds: int | None = None,
              allow_bookmarks: bool = True, idle_timeout_seconds: float | None = None) -> Iterator[WatchEvent]:
        """``idle_timeout_seconds`` bounds the wait for the next line: the Sigma master sends a
        bookmark every few seconds when bookmarks are allowed, so a longer silence means the
        connection is dead (a pulled cable leaves TCP waiting for minutes)."""
        return self._watch(resource, namespace, resource_version, label_selector, field_selector,
                           timeout_seconds, allow_bookmarks, accept="application/json",
                           idle_timeout=idle_timeout_seconds)

    def watch_table(self, resource: str, namespace: str | None = None, *, resource_version: str = "",
                    label_selector: str = "", field_selector: str = "",
                    timeout_seconds: int | None = None) -> Iterator[WatchEvent]:
        """A watch whose event objects are Tables of one row each (what ``kubectl get -w`` asks).
        A server that cannot print Tables sends the objects themselves."""
        return self._watch(resource, namespace, resource_version, label_selector, field_selector,
                           timeout_seconds, False, accept=TABLE_ACCEPT)

    def bind(self, name: str, namespace: str, node_name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": name, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        self._json("POST", self._path("pods", namespace, name, "binding"), json=body)

    def evict(self, name: str, namespace: str, grace_period_seconds: int | None = None) -> None:
        body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                "metadata": {"name": name, "namespace": namespace}}
        if grace_period_seconds is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_period_seconds}
        self._json("POST", self._path("pods", namespace, name, "eviction"), json=body)

    # -- beyond the protocol: what the CLI and tools need -----------------------------------

    def get_table(self, resource: str, namespace: str | None = None, name: str | None = None, *,
                  label_selector: str = "", field_selector: str = "") -> dict[str, Any]:
        """The server-side printed Table (columnDefinitions + rows), as ``kubectl get`` gets it."""
        return self._json("GET", self._path(resource, namespace, name),
                          params=_selectors(label_selector, field_selector),
                          headers={"Accept": TABLE_ACCEPT})

    @overload
    def logs(self, name: str, namespace: str, container: str | None = ..., follow: Literal[False] = ...,
             tail_lines: int | None = ..., previous: bool = ...) -> str: ...

    @overload
    def logs(self, name: str, namespace: str, container: str | None = ..., *, follow: Literal[True],
             tail_lines: int | None = ..., previous: bool = ...) -> Iterator[bytes]: ...

    def logs(self, name: str, namespace: str, container: str | None = None, follow: bool = False,
             tail_lines: int | None = None, previous: bool = False) -> str | Iterator[bytes]:
        """The pod's log as text, or with ``follow`` an iterator of chunks as they are written."""
        params: dict[str, str] = {}
        if container:
            params["container"] = container
        if tail_lines is not None:
            params["tailLines"] = str(tail_lines)
        if previous:
            params["previous"] = "true"
        path = self._path("pods", namespace, name, "log")
        if not follow:
            return self._send("GET", path, params=params).text
        params["follow"] = "true"
        return self._stream_bytes(path, params)

    def version(self) -> dict[str, Any]:
        return self._json("GET", "/version")

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any path (``/apis``, ``/openapi/v2``): the decoded JSON body, errors as ApiError."""
        return self._send(method, path, **kwargs).json()

    # -- plumbing ---------------------------------------------------------------------------

    def _path(self, resource: str, namespace: str | None, name: str | None = None,
              subresource: str = "") -> str:
        rt = resource_type(resource)
        path = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        if rt.namespaced and namespace:
            path += f"/namespaces/{quote(namespace, safe='')}"
        elif rt.namespaced and name:
            raise ValueError(f"{rt.plural} are namespaced: a namespace is needed to address {name!r}")
        path += f"/{rt.plural}"
        if name:
            path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
        return path

    @staticmethod
    def _namespace_of(resource: str, obj: dict[str, Any], namespace: str | None) -> str | None:
        if not resource_type(resource).namespaced:
            return None
        return namespace or obj.get("metadata", {}).get("namespace") or "default"

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise self._unavailable(err) from err
        if response.is_error:
            raise _error_of(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The decoded object of a successful answer (every API answer is a JSON object)."""
        response = self._send(method, path, **kwargs)
        body = response.json() if response.content else {}
        if not isinstance(body, dict):
            raise ApiError(500, "InternalError", f"{method} {path}: expected a JSON object, got {body!r:.80}")
        return body

    def _unavailable(self, err: Exception) -> ServerUnavailable:
        return ServerUnavailable(f"cannot reach the Sigma API server at {self.base_url}: "
                                 f"{err or type(err).__name__} - is `sigma master` running there?")

    def _open_stream(self, path: str, params: dict[str, str], accept: str,
                     read_timeout: float | None) -> httpx.Response:
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        request = self._http.build_request("GET", path, params=params, headers={"Accept": accept},
                                           timeout=timeout)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as err:
            raise self._unavailable(err) from err
        if response.is_error:
            response.read()
            response.close()
            raise _error_of(response)
        return response

    def _watch(self, resource: str, namespace: str | None, resource_version: str, label_selector: str,
               field_selector: str, timeout_seconds: int | None, allow_bookmarks: bool,
               accept: str, idle_timeout: float | None = None) -> Iterator[WatchEvent]:
        params = {"watch": "true", **_selectors(label_selector, field_selector)}
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        # Open the stream now, so a bad request or a 410 raises at the call, not at the first next().
        read_timeout = None if timeout_seconds is None else timeout_seconds + self.timeout
        if idle_timeout is not None:
            read_timeout = idle_timeout if read_timeout is None else min(read_timeout, idle_timeout)
        response = self._open_stream(self._path(resource, namespace), params, accept, read_timeout)
        return self._events(response, read_timeout)

    def _events(self, response: httpx.Response, read_timeout: float | None) -> Iterator[WatchEvent]:
        try:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    # An expired resourceVersion arrives as an ERROR event with a 410 Status.
                    raise api_error_from_status(event.get("object"), 500)
                yield WatchEvent(event["type"], event.get("object") or {})
        except (httpx.RemoteProtocolError, httpx.ReadError):
            return  # the server went away mid-stream: the watch is over, the caller re-watches
        except httpx.ReadTimeout as err:
            # Nothing for read_timeout seconds, not even a bookmark: the connection is dead
            # (or the server hung). Closing it here is what lets the caller reconnect.
            raise ServerUnavailable(f"the watch stream from {self.base_url} was silent for "
                                    f"{read_timeout:.0f}s: taking the connection for dead") from err
        finally:
            response.close()

    def _stream_bytes(self, path: str, params: dict[str, str]) -> Iterator[bytes]:
        response = self._open_stream(path, params, "*/*", None)

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_bytes()
            except (httpx.RemoteProtocolError, httpx.ReadError):
                return
            finally:
                response.close()

        return chunks()


def _error_of(response: httpx.Response) -> ApiError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return api_error_from_status(body, response.status_code)


def _selectors(label_selector: str, field_selector: str) -> dict[str, str]:
    params = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _ssl_context(verify: bool | str, ca_data: str | None,
                 client_cert: tuple[str, str] | None) -> ssl.SSLContext | bool:
    if verify is False and not client_cert:
        return False
    if verify is True and not ca_data and not client_cert:
        return True
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None,
                                         cadata=ca_data)
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert:
        context.load_cert_chain(*client_cert)
    return context
