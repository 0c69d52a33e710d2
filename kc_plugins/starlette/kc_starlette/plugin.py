"""kc's adapter hooks for Starlette connections (entry point ``kc_core`` → ``starlette``).

Every Starlette ``Request`` and ``WebSocket`` is an ``HTTPConnection``; the hooks read the
ASGI scope directly, so a header lookup builds no ``Headers`` object. The session is the one
Starlette's ``SessionMiddleware`` put on the scope. The body of the engine's POST endpoints
is read (awaited) by the middleware before the engine sees the request, and left on the
scope under :data:`FORM_KEY`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from kc_core.adapters import first_values, response_hooks
from kc_core.plugins import hookimpl

__all__ = ["FORM_KEY", "app_path", "build_response", "raw_headers", "remember_header"]

#: Scope key of the urlencoded form the middleware read for the engine's POST endpoints.
FORM_KEY = "kc.form"
# Scope key of the header values decoded so far (keyed by the headers list they came from).
_DECODED_KEY = "kc.decoded_headers"
_SECURE_SCHEMES = frozenset({"https", "wss"})
_EMPTY: Mapping[str, str] = {}


@functools.lru_cache(maxsize=256)
def _header_key(name: str) -> bytes:
    """Header ``name`` as the ASGI scope spells it (lower-case bytes)."""
    return name.lower().encode("latin-1")


def build_response(
    status: int, body: bytes, content_type: str | None, headers: Sequence[tuple[str, str]]
) -> Response:
    """A Starlette response keeping every header, repeated names (``Set-Cookie``) included."""
    response = Response(body, status_code=status, media_type=content_type)
    response.raw_headers += raw_headers(headers)
    return response


def raw_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """``headers`` as ASGI messages carry them (lower-case names, latin-1 bytes)."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def app_path(scope: Scope) -> str:
    """The request's path within the app: the mount point (``root_path``) is in the URL only."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


@hookimpl
def kc_request_types() -> Sequence[type]:
    return (HTTPConnection,)


@hookimpl
def kc_request_method(request: HTTPConnection) -> str:
    # A WebSocket handshake is a GET.
    method: str = request.scope.get("method", "GET")
    return method


@hookimpl
def kc_request_url(request: HTTPConnection) -> str:
    return str(request.url)


@hookimpl
def kc_request_path(request: HTTPConnection) -> str:
    return app_path(request.scope)


@hookimpl
def kc_request_query(request: HTTPConnection) -> Mapping[str, str]:
    return first_values(request.query_params.multi_items())


def remember_header(scope: Scope, name: str, text: str | None) -> None:
    """Start the scope's decoded headers with ``name`` read as ``text`` (the header hook's
    answer for this request), for a caller that has just read and decoded it."""
    scope[_DECODED_KEY] = (scope["headers"], {name: text})


@hookimpl
def kc_request_header(request: HTTPConnection, name: str) -> str | None:
    scope = request.scope
    headers = scope["headers"]
    # The middleware and the endpoint's check ask for the same headers: decode each once per
    # request (the same string each time, so a token's hash is computed once too).
    seen: tuple[Any, dict[str, str | None]] | None = scope.get(_DECODED_KEY)
    if seen is None or seen[0] is not headers:
        seen = scope[_DECODED_KEY] = (headers, {})
    decoded = seen[1]
    if name in decoded:
        return decoded[name]
    key = _header_key(name)
    text: str | None = None
    for header, value in headers:
        if header == key:
            text = value.decode("latin-1")
            break
    decoded[name] = text
    return text


@hookimpl
def kc_request_header_names(request: HTTPConnection) -> Iterable[str]:
    return request.headers.keys()


@hookimpl
def kc_request_cookies(request: HTTPConnection) -> Mapping[str, str]:
    return request.cookies


@hookimpl
def kc_request_form(request: HTTPConnection) -> Mapping[str, str]:
    form: Mapping[str, str] = request.scope.get(FORM_KEY, _EMPTY)
    return form


@hookimpl
def kc_request_client_address(request: HTTPConnection) -> str | None:
    client = request.scope.get("client")
    return None if not client else str(client[0])


@hookimpl
def kc_request_is_secure(request: HTTPConnection) -> bool:
    return request.scope.get("scheme", "http") in _SECURE_SCHEMES


@hookimpl
def kc_session(request: HTTPConnection) -> MutableMapping[str, Any]:
    session: MutableMapping[str, Any] | None = request.scope.get("session")
    if session is None:
        # No SessionMiddleware (a bearer-only API): nothing to find, nothing kept. The
        # middleware refuses to start a login without one.
        return {}
    mark_accessed = getattr(session, "mark_accessed", None)
    if mark_accessed is not None:
        mark_accessed()  # Starlette then adds "Vary: Cookie", as request.session does
    return session


@hookimpl
def kc_session_rotate(request: HTTPConnection) -> None:
    # Starlette's session is a signed cookie: its value changes with its content at login,
    # and the engine gives the session a new token-store key.
    return None


kc_redirect, kc_response = response_hooks(build_response)
