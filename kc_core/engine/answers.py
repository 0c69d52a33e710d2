"""The engine's answers: 401 with its challenge, 403, 503, plain pages, error pages that a
person must act on, and the login redirect (with the login-loop breaker in front of it)."""

from __future__ import annotations

import functools
import html
import json
import logging
import math
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from ..errors import KeycloakError, TokenStoreUnavailable
from .context import (
    JSON,
    LOOP_LOGINS,
    LOOP_WINDOW,
    RECENT_LOGINS_KEY,
    REFUSED_KEY,
    TEXT,
    Call,
)
from .settings import EngineSettings
from .values import Requirement

_log = logging.getLogger("kc_core.engine")

_ANY = Requirement()
_HTML = "text/html; charset=utf-8"


def _quote_header(value: str) -> str:
    """``value`` for the inside of a header's quoted-string: printable ASCII, ``\\`` and ``"``
    escaped (servers refuse or mangle anything else: a 500, a dropped connection)."""
    if not (value.isascii() and value.isprintable()):
        value = "".join(c if " " <= c <= "~" else "?" for c in value)
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _wants_api(call: Call, requirement: Requirement) -> bool:
    """Whether the caller wants JSON answers (an API client) rather than pages."""
    if requirement.api is not None:
        return requirement.api
    adapter, request = call.adapter, call.request
    if adapter.header(request, "x-requested-with") == "XMLHttpRequest":
        return True
    accept = adapter.header(request, "accept") or ""
    return "json" in accept and "text/html" not in accept


# The answer to a request without a token, the commonest refusal: its body built once.
_NO_TOKEN_BODY = json.dumps(
    {"error": "unauthorized", "error_description": "authentication required"}
).encode()


@functools.lru_cache(maxsize=64)
def _realm_challenge(realm: str) -> str:
    return f'Bearer realm="{_quote_header(realm)}"'


def _unauthorized(call: Call, reason: str | None, headers: Sequence[tuple[str, str]] = ()) -> Any:
    # RFC 6750 section 3: no error attribute when the request carried no token.
    challenge = _realm_challenge(call.tenant.realm)
    if reason is None:
        body = _NO_TOKEN_BODY
    else:
        challenge += f', error="invalid_token", error_description="{_quote_header(reason)}"'
        body = json.dumps({"error": "invalid_token", "error_description": reason}).encode()
    return call.adapter.response(
        call.request,
        401,
        body,
        JSON,
        [("WWW-Authenticate", challenge), ("Cache-Control", "no-store"), *headers],
    )


def _forbidden(
    call: Call,
    reason: str,
    api: bool,
    headers: Sequence[tuple[str, str]] = (),
    logout_path: str | None = None,
) -> Any:
    """403: JSON with an ``insufficient_scope`` challenge for API clients; for browsers an
    HTML page saying why, with a logout button (to come back as someone else)."""
    if api:
        realm = call.tenant.realm
        challenge = (
            f'Bearer realm="{_quote_header(realm)}", error="insufficient_scope", '
            f'error_description="{_quote_header(reason)}"'
        )
        body = json.dumps({"error": "forbidden", "error_description": reason}).encode()
        return call.adapter.response(
            call.request, 403, body, JSON, [("WWW-Authenticate", challenge), *headers]
        )
    return _forbidden_page(call, reason, headers, logout_path)


def _forbidden_page(
    call: Call, reason: str, headers: Sequence[tuple[str, str]], logout_path: str | None
) -> Any:
    way_out = ""
    if logout_path is not None:
        # A form, not a link: logout is POST-only (no third-party page can log users out).
        way_out = (
            f'<form method="post" action="{html.escape(logout_path)}"><p>Signed in with the '
            'wrong account? <button type="submit">Log out</button> and log in as another '
            "user.</p></form>"
        )
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Access denied</title>'
        "</head><body><h1>Access denied</h1><p>You do not have access to this page.</p>"
        f"<p>Reason: {html.escape(reason)}.</p>{way_out}</body></html>"
    )
    return call.adapter.response(
        call.request, 403, page.encode(), _HTML, [("Cache-Control", "no-store"), *headers]
    )


def _unavailable(call: Call, error: KeycloakError, retry_after: float | None = None) -> Any:
    what = "session store" if isinstance(error, TokenStoreUnavailable) else "login service"
    _log.warning("the %s is unavailable: %s", what, error)
    description = f"the {what} is unreachable; your session is kept, try again shortly"
    body = json.dumps(
        {"error": "temporarily_unavailable", "error_description": description}
    ).encode()
    return call.adapter.response(
        call.request,
        503,
        body,
        JSON,
        [("Retry-After", _retry_after(retry_after)), ("Cache-Control", "no-store")],
    )


def _retry_after(seconds: float | None) -> str:
    # The back-off left when one is known (whole seconds, at least 1), else 5.
    return str(max(1, math.ceil(seconds))) if seconds else "5"


def _loop_stop(
    call: Call, settings: EngineSettings, headers: Sequence[tuple[str, str]] = ()
) -> Any | None:
    """An error page instead of sending the browser to Keycloak again, when that would
    loop: a session refused right after its login, or several logins in a row that
    were never followed by an admitted request."""
    session = call.session()
    recent = session.get(RECENT_LOGINS_KEY)
    if not isinstance(recent, list) or not recent:
        return None
    now = time.time()
    recent = [t for t in recent if isinstance(t, float | int) and now - t < LOOP_WINDOW]
    refused = session.get(REFUSED_KEY)
    if recent and isinstance(refused, str):
        detail = f"You have just logged in, but this app ended the session: {refused}."
    elif len(recent) >= LOOP_LOGINS:
        detail = (
            f"{len(recent)} logins completed within {LOOP_WINDOW:.0f} seconds, yet no "
            "page accepted the session: the session does not survive between requests "
            "(several worker processes without a shared session secret or token store?)."
        )
    else:
        return None
    session.pop(RECENT_LOGINS_KEY, None)
    session.pop(REFUSED_KEY, None)
    _log.warning("stopped a login loop: %s", detail)
    return _error_page(call, settings, 401, "Login loop stopped", detail, headers)


def _login_redirect(
    call: Call, settings: EngineSettings, headers: Sequence[tuple[str, str]] = ()
) -> Any:
    stop = _loop_stop(call, settings, headers)
    if stop is not None:
        return stop
    url = urlsplit(call.adapter.url(call.request))
    here = url.path + (f"?{url.query}" if url.query else "")
    return call.adapter.redirect(
        call.request,
        f"{call.app_url(settings.login_path)}?{urlencode({'next': here})}",
        list(headers),
    )


def _page(call: Call, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> Any:
    body = message.encode("utf-8", "replace")  # a lone surrogate from a query string
    return call.adapter.response(
        call.request, status, body, TEXT, [("Cache-Control", "no-store"), *headers]
    )


def _error_page(
    call: Call,
    settings: EngineSettings,
    status: int,
    title: str,
    detail: str,
    headers: Sequence[tuple[str, str]] = (),
) -> Any:
    """An error that a person or an operator must act on: HTML for browsers (with a
    way out), JSON for API clients."""
    if _wants_api(call, _ANY):
        body = json.dumps({"error": "login_failed", "error_description": detail}).encode()
        return call.adapter.response(
            call.request, status, body, JSON, [("Cache-Control", "no-store"), *headers]
        )
    login = call.app_url(settings.login_path)
    login = html.escape(f"{login}?{urlencode({'next': call.app_url('/')})}")
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>"
        f'<p><a href="{login}">Log in again</a></p></body></html>'
    )
    return call.adapter.response(
        call.request,
        status,
        page.encode(),
        _HTML,
        [("Cache-Control", "no-store"), *headers],
    )


def _json(call: Call, status: int, error: str, description: str) -> Any:
    body = json.dumps({"error": error, "error_description": description}).encode()
    return call.adapter.response(call.request, status, body, JSON, [("Cache-Control", "no-store")])
