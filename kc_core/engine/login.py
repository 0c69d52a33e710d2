"""The login round trip: ``{prefix}/login`` sends the browser to Keycloak, ``{prefix}/callback``
checks its answer, exchanges the code and starts the session."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from ..errors import KeycloakError, LoginError, OAuthError, TokenError, TokenStoreUnavailable
from ..oidc import LoginRequest
from ..stores import SessionRecord
from .answers import _error_page, _loop_stop, _page, _unavailable
from .context import (
    LOGINS_KEY,
    LOOP_LOGINS,
    LOOP_WINDOW,
    RECENT_LOGINS_KEY,
    REFUSED_KEY,
    Call,
)
from .parts import Parts
from .values import safe_return_url

_log = logging.getLogger("kc_core.engine")


def login(parts: Parts, call: Call) -> Any:
    """See :meth:`kc_core.engine.Engine.login`."""
    adapter, request, settings = call.adapter, call.request, parts.settings
    stop = _loop_stop(call, settings)
    if stop is not None:
        return stop
    tenant = call.tenant
    site = call.site()
    target = safe_return_url(adapter.query(request).get("next"), site)
    try:
        login = tenant.client.login(
            site + call.app_url(settings.callback_path), scopes=settings.scopes, remember=False
        )
    except KeycloakError as exc:
        return _unavailable(call, exc)
    session = call.session()
    now = time.time()
    pending = {
        state: entry
        for state, entry in _pending_logins(session).items()
        if _created_at(entry) + settings.login_ttl > now
    }
    pending[login.state] = {
        "nonce": login.nonce,
        "code_verifier": login.code_verifier,
        "redirect_uri": login.redirect_uri,
        "next": target or call.app_url(settings.after_login_url),
        "created_at": login.created_at,
        "tenant": tenant.name,
    }
    # Several tabs may log in at once; keep the newest few.
    while len(pending) > settings.max_pending_logins:
        pending.pop(min(pending, key=lambda s: _created_at(pending[s])))
    session[LOGINS_KEY] = pending
    return adapter.redirect(request, login.url, [("Cache-Control", "no-store")])


def callback(parts: Parts, call: Call) -> Any:
    """See :meth:`kc_core.engine.Engine.callback`."""
    adapter, request, settings = call.adapter, call.request, parts.settings
    query = adapter.query(request)
    session = call.session()
    state = query.get("state")
    pending = _pending_logins(session)
    entry = pending.pop(state, None) if state else None
    if entry is not None:  # single use, whatever happens next
        if pending:
            session[LOGINS_KEY] = pending
        else:
            session.pop(LOGINS_KEY, None)  # an emptied session lets the framework drop it
    if not isinstance(entry, dict):
        return _page(
            call, 400,
            "This login link is invalid, expired or was already used. Please log in again.",
        )  # fmt: skip
    if query.get("error"):
        detail = query.get("error_description") or query["error"]
        return _page(call, 401, f"Login failed: {detail}")
    code = query.get("code")
    if not code:
        return _page(call, 400, "The login answer carries no code.")
    named = parts.tenant_named(str(entry.get("tenant")))
    if named is not None:
        call.tenant = named  # the tenant the login started with
    tenant = call.tenant
    try:
        login = LoginRequest(
            url="",
            state=str(state),
            nonce=str(entry["nonce"]),
            code_verifier=entry.get("code_verifier"),
            redirect_uri=str(entry["redirect_uri"]),
            created_at=_created_at(entry),
        )
    except (KeyError, TypeError, ValueError):
        return _page(call, 400, "This login link is invalid.")
    try:
        tokens = tenant.client.callback(code, str(state), login=login, iss=query.get("iss"))
    except TokenError as exc:
        # Keycloak's own tokens failing a check is a deployment to fix: say which check.
        _log.warning("login refused: Keycloak's ID token does not pass: %s", exc)
        return _error_page(
            call,
            settings,
            401,
            "Login refused",
            f"The login worked in Keycloak, but this app refuses its ID token: {exc}",
        )
    except (OAuthError, LoginError) as exc:
        _log.info("login callback refused: %s", exc)
        return _page(call, 401, "Login failed. Please try again.")
    except KeycloakError as exc:
        return _unavailable(call, exc)
    try:
        # The next request checks the session's access token: refusing it there would
        # send the browser back to Keycloak, whose SSO session answers at once (a loop).
        tenant.validate(tokens.access_token)
    except TokenError as exc:
        _log.warning("login refused: Keycloak's access token does not pass: %s", exc)
        return _error_page(
            call,
            settings,
            401,
            "Login refused",
            f"The login worked in Keycloak, but this app refuses the access token it issued: {exc}",
        )
    except KeycloakError as exc:
        return _unavailable(call, exc)
    claims = tokens.id_claims or {}
    sid = claims.get("sid")
    record = SessionRecord(
        tokens, sub=str(claims.get("sub", "")), sid=sid if isinstance(sid, str) else None
    )
    call.headers.append(("Cache-Control", "no-store"))
    try:
        parts.sessions.save(call, record)
    except TokenStoreUnavailable as exc:
        return _unavailable(call, exc)
    session = call.session()  # the rotated one
    now = time.time()
    recent = session.get(RECENT_LOGINS_KEY)
    if not isinstance(recent, list):
        recent = []
    recent = [t for t in recent if isinstance(t, float | int) and now - t < LOOP_WINDOW]
    session[RECENT_LOGINS_KEY] = [*recent[-(LOOP_LOGINS - 1) :], now]
    session.pop(REFUSED_KEY, None)
    id_token = tokens.id_token if tokens.id_claims is not None else None
    identity = parts.identities.of(id_token, claims, request)
    parts.plugins.after_login(request, tokens, identity)
    target = safe_return_url(str(entry.get("next") or ""), call.site())
    return adapter.redirect(request, target or call.app_url(settings.after_login_url), call.headers)


def _pending_logins(session: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The session's pending logins by state; anything else found under the key is ignored."""
    found = session.get(LOGINS_KEY)
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, dict)}


def _created_at(entry: Mapping[str, Any]) -> float:
    """When a pending login started; 0 (long expired) unless a finite number was kept."""
    value = entry.get("created_at")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        return 0.0
    return number if math.isfinite(number) else 0.0
