"""A minimal kc adapter for plain WSGI, used until the example Bottle adapter is available.

It shows the whole adapter contract in one page: a request class wrapping the WSGI environ,
a signed-cookie session (JSON, HMAC-SHA256 with the app secret, so every process that knows
the secret reads the same session), and the hooks that build responses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.util import request_uri

from kc_core.plugins import hookimpl

SESSION_COOKIE = "kc_demo_session"
_BODY_KEYS = ("CONTENT_TYPE", "CONTENT_LENGTH")  # WSGI keeps these two without HTTP_
StartResponse = Callable[[str, list[tuple[str, str]]], Any]

_REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized",
            403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip


@dataclass
class WsgiResponse:
    """What the adapter hooks build and the app sends."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


class WsgiRequest:
    """One WSGI request with a signed-cookie session."""

    def __init__(self, environ: Mapping[str, Any], secret: bytes) -> None:
        self.environ = environ
        self._secret = secret
        self._form: dict[str, str] | None = None
        self.cookies = _parse_cookies(environ.get("HTTP_COOKIE", ""))
        self.session: dict[str, Any] = self._load_session()
        self._loaded = json.dumps(self.session, sort_keys=True)

    def _sign(self, payload: bytes) -> str:
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _load_session(self) -> dict[str, Any]:
        raw = self.cookies.get(SESSION_COOKIE)
        if not raw or "." not in raw:
            return {}
        payload, signature = raw.rsplit(".", 1)
        if not hmac.compare_digest(self._sign(payload.encode()), signature):
            return {}
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return data if isinstance(data, dict) else {}

    def session_cookie(self) -> str | None:
        """The Set-Cookie value when the session changed during this request."""
        current = json.dumps(self.session, sort_keys=True)
        if current == self._loaded:
            return None
        payload = base64.urlsafe_b64encode(current.encode()).decode().rstrip("=")
        value = f"{payload}.{self._sign(payload.encode())}"
        return f"{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax"

    def form(self) -> dict[str, str]:
        if self._form is None:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
            body = self.environ["wsgi.input"].read(length) if length else b""
            self._form = dict(parse_qsl(body.decode("latin-1")))
        return self._form


def _parse_cookies(header: str) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            cookies.setdefault(name, value)
    return cookies


def send(
    request: WsgiRequest, response: WsgiResponse, start_response: StartResponse
) -> Iterable[bytes]:
    """Send ``response`` through WSGI, with the session cookie when the session changed."""
    headers = [("Content-Type", response.content_type), *response.headers]
    cookie = request.session_cookie()
    if cookie is not None:
        headers.append(("Set-Cookie", cookie))
    headers.append(("Content-Length", str(len(response.body))))
    start_response(f"{response.status} {_REASONS.get(response.status, 'Status')}", headers)
    return [response.body]


class WsgiAdapter:
    """The kc adapter hooks for :class:`WsgiRequest`."""

    @hookimpl
    def kc_request_types(self) -> Sequence[type]:
        return (WsgiRequest,)

    @hookimpl
    def kc_request_method(self, request: WsgiRequest) -> str:
        return str(request.environ["REQUEST_METHOD"]).upper()

    @hookimpl
    def kc_request_url(self, request: WsgiRequest) -> str:
        return request_uri(dict(request.environ), include_query=True)

    @hookimpl
    def kc_request_path(self, request: WsgiRequest) -> str:
        return str(request.environ.get("PATH_INFO") or "/")

    @hookimpl
    def kc_request_query(self, request: WsgiRequest) -> Mapping[str, str]:
        return dict(parse_qsl(request.environ.get("QUERY_STRING", "")))

    @hookimpl
    def kc_request_header(self, request: WsgiRequest, name: str) -> str | None:
        key = name.upper().replace("-", "_")
        if key in _BODY_KEYS:
            return request.environ.get(key) or None
        value = request.environ.get(f"HTTP_{key}")
        return None if value is None else str(value)

    @hookimpl
    def kc_request_header_names(self, request: WsgiRequest) -> Iterable[str]:
        environ = request.environ
        names = [k[5:].replace("_", "-").title() for k in environ if k.startswith("HTTP_")]
        return names + [k.replace("_", "-").title() for k in _BODY_KEYS if environ.get(k)]

    @hookimpl
    def kc_request_cookies(self, request: WsgiRequest) -> Mapping[str, str]:
        return request.cookies

    @hookimpl
    def kc_request_form(self, request: WsgiRequest) -> Mapping[str, str]:
        return request.form()

    @hookimpl
    def kc_request_client_address(self, request: WsgiRequest) -> str | None:
        return request.environ.get("REMOTE_ADDR")

    @hookimpl
    def kc_request_is_secure(self, request: WsgiRequest) -> bool:
        return request.environ.get("wsgi.url_scheme") == "https"

    @hookimpl
    def kc_session(self, request: WsgiRequest) -> MutableMapping[str, Any]:
        return request.session

    @hookimpl
    def kc_redirect(
        self, request: WsgiRequest, location: str, headers: Sequence[tuple[str, str]]
    ) -> WsgiResponse:
        return WsgiResponse(302, headers=[("Location", location), *headers])

    @hookimpl
    def kc_response(
        self,
        request: WsgiRequest,
        status: int,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]],
    ) -> WsgiResponse:
        return WsgiResponse(status, body, content_type, list(headers))
