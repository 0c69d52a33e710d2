"""Protecting a request: a bearer token, else the browser session (refreshed silently when
about to expire), then the route's requirement. The engine's fast path for a bearer token
seen before lives in :mod:`.core`; these are the steps that may do I/O."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..errors import KeycloakError, TokenError, TokenStoreUnavailable, WrongAudience
from ..stores import SessionRecord
from .answers import _forbidden, _login_redirect, _unauthorized, _unavailable, _wants_api
from .context import RECENT_LOGINS_KEY, Call, note_refusal
from .parts import Parts
from .refresh import Unavailable
from .values import Guard, Requirement

_log = logging.getLogger("kc_core.engine")

#: The user behind a session: identity, access token, its claims.
SessionUser = tuple[Any, str, Mapping[str, Any]]


def protect_bearer(parts: Parts, call: Call, authorization: str, requirement: Requirement) -> Guard:
    """Verify the request's bearer token, then check ``requirement``."""
    token = parts.bearer.token_of(authorization)
    if token is None:
        reason = "the Authorization header is not a Bearer token"
        return Guard(response=_unauthorized(call, reason))
    try:
        claims = parts.bearer.verifier.verify(call.tenant, token)
    except (TokenError, KeycloakError) as exc:
        return bearer_refusal(call, exc)
    return admit_bearer(parts, call, token, claims, requirement)


def bearer_refusal(call: Call, error: TokenError | KeycloakError) -> Guard:
    """The answer to a bearer token that was refused (401) or could not be judged (503)."""
    if not isinstance(error, TokenError):
        return Guard(response=_unavailable(call, error))
    if isinstance(error, WrongAudience):
        # A valid token of another client: a deployment to fix, not an attack to ignore.
        _log.warning("bearer token refused: %s", error)
    return Guard(response=_unauthorized(call, str(error)))


def admit_bearer(
    parts: Parts, call: Call, token: str, claims: Mapping[str, Any], requirement: Requirement
) -> Guard:
    """A verified bearer token: its identity, unless ``requirement`` refuses it."""
    identity = parts.identities.of(token, claims, call.request)
    denied = parts.authorizer.validate_requirement(call, claims, token, requirement, api=True)
    if denied is not None:
        return Guard(response=denied)
    return Guard(identity=identity, token=token, claims=claims, bearer=True)


def protect_session(parts: Parts, call: Call, requirement: Requirement) -> Guard:
    """The session's user, or the login redirect (browsers) or a 401 (API clients)."""
    call.select_tenant()
    try:
        found = session_user(parts, call)
    except Unavailable as exc:
        return Guard(response=_unavailable(call, exc.error, exc.retry_after))
    headers = call.headers
    api = _wants_api(call, requirement)
    if found is None:
        if api:
            response = _unauthorized(call, None, headers)
        else:
            response = _login_redirect(call, parts.settings, headers)
        return Guard(response=response, headers=tuple(headers))
    identity, token, claims = found
    denied = parts.authorizer.validate_requirement(
        call, claims, token, requirement, api=api, headers=headers
    )
    if denied is not None:
        return Guard(response=denied, headers=tuple(headers))
    return Guard(identity=identity, token=token, headers=tuple(headers), claims=claims)


def authenticate(parts: Parts, call: Call) -> Guard:
    """See :meth:`kc_core.engine.Engine.authenticate` (the path that may do I/O)."""
    authorization = call.adapter.header(call.request, "authorization")
    tenant = call.tenant
    if authorization is not None:
        token = parts.bearer.token_of(authorization)
        if token is None:
            return Guard()
        try:
            claims = parts.bearer.verifier.verify(tenant, token)
        except TokenError:
            return Guard()
        except KeycloakError as exc:
            return Guard(response=_unavailable(call, exc))
        identity = parts.identities.of(token, claims, call.request)
        return Guard(identity=identity, token=token, claims=claims, bearer=True)
    if parts.bearer_only or parts.routes.preflight(call.adapter, call.request):
        return Guard()  # no session is read or written for a preflight or a bearer-only client
    try:
        found = session_user(parts, call)
    except Unavailable as exc:
        return Guard(response=_unavailable(call, exc.error, exc.retry_after))
    headers = tuple(call.headers)
    if found is None:
        return Guard(headers=headers)
    return Guard(identity=found[0], token=found[1], headers=headers, claims=found[2])


def authorize(parts: Parts, call: Call, guard: Guard, requirement: Requirement) -> Guard:
    """See :meth:`kc_core.engine.Engine.authorize`, for a guard that carries claims."""
    assert guard.claims is not None
    path = call.adapter.path(call.request)
    if parts.is_exempt(path) or parts.routes.exempt(call.adapter, call.request, path):
        return guard
    if requirement.bearer_only and not guard.bearer:
        return Guard(response=_unauthorized(call, None))
    api = guard.bearer or _wants_api(call, requirement)
    denied = parts.authorizer.validate_requirement(
        call, guard.claims, guard.token or "", requirement, api=api, headers=guard.headers
    )
    if denied is not None:
        return Guard(response=denied, headers=guard.headers)
    return guard


def refuse(parts: Parts, call: Call, guard: Guard, reason: str, api: bool | None) -> Any:
    """See :meth:`kc_core.engine.Engine.refuse`."""
    if guard.response is not None:
        return guard.response
    wants_api = _wants_api(call, Requirement(api=api))
    if guard.identity is None:
        if wants_api:
            return _unauthorized(call, None, guard.headers)
        return _login_redirect(call, parts.settings, guard.headers)
    api = guard.bearer or wants_api
    return _forbidden(call, reason, api, guard.headers, parts.settings.logout_path)


def session_user(parts: Parts, call: Call) -> SessionUser | None:
    """The session's user, token and claims, refreshing them when about to expire.

    Raises:
        Unavailable: Keycloak or the token store is needed and unreachable; the
            session is kept for when they are back.
    """
    try:
        return _session_user_or_fail(parts, call)
    except TokenStoreUnavailable as exc:
        raise Unavailable(exc) from exc


def _session_user_or_fail(parts: Parts, call: Call) -> SessionUser | None:
    sessions = parts.sessions
    found = sessions.load(call)
    if found is None:
        sessions.forget_missing(call)
        return None
    record: SessionRecord | None = found.record
    if found.record.tokens.expires_within(parts.settings.refresh_margin):
        record = parts.refresher.refresh(call, found)
        if record is None:
            sessions.end(call, found.key)
            return None
    assert record is not None
    try:
        claims = call.tenant.validate(record.tokens.access_token)
    except TokenError as exc:
        _log.warning("a session's access token was refused, ending the session: %s", exc)
        note_refusal(call.session(), f"its access token was refused: {exc}")
        sessions.end(call, found.key)
        return None
    except KeycloakError as exc:
        raise Unavailable(exc) from exc
    recent = call.session().get(RECENT_LOGINS_KEY)
    if isinstance(recent, list) and len(recent) > 1:
        # Logins in a row, then an admitted request: no loop. (A single login's entry
        # stays until it ages out, so the first request after login writes no session.)
        call.session().pop(RECENT_LOGINS_KEY, None)
    token = record.tokens.access_token
    return parts.identities.of(token, claims, call.request), token, claims
