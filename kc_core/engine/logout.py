"""Ending sessions: the app's logout (``{prefix}/logout``), a local one
(:meth:`~kc_core.engine.Engine.end_session`) and Keycloak's back-channel logout."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..errors import KeycloakError, TokenError, TokenStoreUnavailable
from .answers import _json, _page, _unavailable
from .context import TEXT, Call, forget_recent_logins
from .parts import Parts

_log = logging.getLogger("kc_core.engine")


class ReplayGuard:
    """Back-channel logout tokens seen (by ``jti``) until they expire: each works once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def first_sight(self, jti: str, until: float, now: float) -> bool:
        """Whether ``jti`` is new (it is remembered until ``until``)."""
        with self._lock:
            if jti in self._seen:
                return False
            self._seen = {k: v for k, v in self._seen.items() if v > now}
            self._seen[jti] = until
            return True


def logout(parts: Parts, call: Call) -> Any:
    """See :meth:`kc_core.engine.Engine.logout`."""
    adapter, request, settings = call.adapter, call.request, parts.settings
    method = adapter.method(request)
    if method != "POST" and not (method == "GET" and settings.allow_get_logout):
        return adapter.response(request, 405, b"Logout must be a POST.", TEXT, [("Allow", "POST")])
    tenant = call.tenant
    site = call.site()
    if _cross_site(
        adapter.header(request, "origin"), adapter.header(request, "sec-fetch-site"), site
    ):
        return _page(call, 403, "Cross-site logout refused.")
    call.headers.append(("Cache-Control", "no-store"))
    try:
        found = parts.sessions.load(call)
        parts.sessions.end(call, None if found is None else found.key)
        forget_recent_logins(call.session())
        if found is not None:
            parts.sessions.refuse_copies(call, found.record)
    except TokenStoreUnavailable as exc:
        return _unavailable(call, exc)
    record = found.record if found is not None else None
    identity = None if record is None else parts.identities.of_id_token(record.tokens, request)
    parts.plugins.after_logout(request, identity)
    after = site + call.app_url(settings.after_logout_url)
    mode = settings.logout_mode
    if record is not None and mode == "server" and record.tokens.refresh_token:
        try:
            tenant.client.logout(refresh_token=record.tokens.refresh_token)
        except KeycloakError as exc:
            _log.warning("Keycloak logout failed (the local session is gone): %s", exc)
    if record is not None and mode == "redirect":
        try:
            location = tenant.client.logout_url(
                id_token_hint=record.tokens.id_token, post_logout_redirect_uri=after
            )
        except KeycloakError as exc:
            _log.warning("no end-session URL (the local session is gone): %s", exc)
        else:
            return adapter.redirect(request, location, call.headers)
    return adapter.redirect(request, call.app_url(settings.after_logout_url), call.headers)


def end_session(parts: Parts, call: Call) -> list[tuple[str, str]]:
    """See :meth:`kc_core.engine.Engine.end_session`."""
    call.select_tenant()
    found = parts.sessions.load(call)
    parts.sessions.end(call, None if found is None else found.key)
    forget_recent_logins(call.session())
    if found is not None:
        parts.sessions.refuse_copies(call, found.record)
    identity = (
        None if found is None else parts.identities.of_id_token(found.record.tokens, call.request)
    )
    parts.plugins.after_logout(call.request, identity)
    return call.headers


def backchannel_logout(parts: Parts, replays: ReplayGuard, call: Call) -> Any:
    """See :meth:`kc_core.engine.Engine.backchannel_logout`."""
    adapter, request = call.adapter, call.request
    if adapter.method(request) != "POST":
        return adapter.response(request, 405, b"", TEXT, [("Allow", "POST")])
    token = adapter.form(request).get("logout_token")
    if not token:
        return _json(call, 400, "invalid_request", "logout_token missing")
    tenant = call.tenant
    try:
        claims = tenant.client.validate_logout_token(token)
    except TokenError as exc:
        return _json(call, 400, "invalid_request", str(exc))
    except KeycloakError as exc:
        return _unavailable(call, exc)
    now = time.time()
    until = float(claims.get("exp") or now + 300)
    jti = claims.get("jti")
    if isinstance(jti, str) and not replays.first_sight(jti, until, now):
        return _json(call, 400, "invalid_request", "logout token replayed")
    sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
    sub = claims.get("sub") if isinstance(claims.get("sub"), str) else None
    try:
        ended = parts.sessions.end_matching(tenant, sid, sub, now)
    except TokenStoreUnavailable as exc:
        return _unavailable(call, exc)
    _log.info("back-channel logout ended %d session(s)", ended)
    return adapter.response(request, 200, b"", TEXT, [("Cache-Control", "no-store")])


def _cross_site(origin: str | None, fetch_site: str | None, site: str) -> bool:
    """Whether a request's ``Origin``/``Sec-Fetch-Site`` say it came from another origin.

    ``Origin: null`` (sandboxed frames, some redirects) is another origin too; a browser that
    says ``same-site`` means a sibling origin, which may be someone else's subdomain.
    """
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return True
    return origin is not None and origin.strip().lower() != site.lower()
