"""Who is behind a connection: Starlette's ``(credentials, user)`` pair from kc's engine.

:class:`KeycloakBackend` is a Starlette ``AuthenticationBackend``; the middleware runs it for
every request, and it also works with Starlette's own ``AuthenticationMiddleware`` for an API
that only takes bearer tokens. The user is a :class:`KeycloakUser` (a Starlette ``BaseUser``);
the credentials' scopes are ``authenticated``, the token's OAuth scopes and its roles written
``realm:NAME`` and ``CLIENT:NAME``, so Starlette's own ``@requires("realm:admin")`` works too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection
from starlette.responses import Response

from kc_core.adapters import KeycloakUserBase, UserMemo, copied, role_names
from kc_core.engine import AsyncEngine, Engine, Guard, Requirement
from kc_core.errors import KeycloakError
from kc_core.plugins import Adapter

from .plugin import remember_header

__all__ = [
    "BACKEND_KEY",
    "HEADERS_KEY",
    "KeycloakBackend",
    "KeycloakCredentials",
    "KeycloakUser",
    "NoTokenRefusal",
]

#: Scope key of the backend that authenticated the connection (protection helpers use it).
BACKEND_KEY = "kc.backend"
#: Scope key of the headers to add to the app's response (cookies after a silent refresh).
HEADERS_KEY = "kc.headers"
#: Scope key of the engine's answer for the connection (its identity, token and claims).
GUARD_KEY = "kc.guard"
#: Scope key of the remembered bearer token's :class:`Kept` (its guard and user pair).
KEPT_KEY = "kc.kept"

_AUTHORIZATION = b"authorization"
_TAIL = 32  # bytes of an Authorization value that key its memo: a token's signature differs
_AUTHORIZATIONS_KEPT = 1024  # a miss costs only the decoding it saves


class Kept:
    """What is kept for a bearer token the engine remembers: its guard and Starlette's
    ``(credentials, user)`` pair for it, made once."""

    __slots__ = ("guard", "pair")

    def __init__(self, guard: Guard, pair: tuple[KeycloakCredentials, BaseUser]) -> None:
        self.guard = guard
        self.pair = pair


class _Authorization:
    """An ``Authorization`` value seen lately: decoded once, and what is kept for its token."""

    __slots__ = ("kept", "text", "value")

    def __init__(self, value: bytes, text: str) -> None:
        self.value = value
        self.text = text
        self.kept: Kept | None = None


class KeycloakUser(KeycloakUserBase, BaseUser):
    """A logged-in user, as Starlette's ``request.user``.

    ``identity`` (Starlette's unique id) is the subject (``sub``); ``display_name`` the name,
    else the username (``username``, ``email`` and ``name`` are the token's). Roles:
    ``has_role("realm:admin")``, ``realm_roles``, ``client_roles(id)``; the identity kc built
    is ``kc_identity`` (see :class:`kc_core.adapters.KeycloakUserBase`), its attributes
    readable here too.
    """

    is_authenticated = True

    @property
    def display_name(self) -> str:
        return str(self.name or self.username or self.sub)

    @property
    def identity(self) -> str:
        return self.sub


class KeycloakCredentials(AuthCredentials):
    """Starlette's ``request.auth``: the scopes, and the access token (``token``).

    Without ``scopes``, they are read from ``claims`` when first asked for.
    """

    def __init__(
        self, scopes: list[str] | None, token: str | None, claims: Mapping[str, Any] | None = None
    ) -> None:
        if scopes is not None:
            self.scopes = list(scopes)
        self._claims = claims
        self.token = token

    @functools.cached_property
    def scopes(self) -> list[str]:  # type: ignore[override]
        """``authenticated``, the token's OAuth scopes, its roles (``realm:NAME`` ...)."""
        claims = self._claims
        if claims is None:
            return ["authenticated"]
        scope_claim = claims.get("scope")
        scopes = scope_claim.split() if isinstance(scope_claim, str) else []
        return ["authenticated", *scopes, *role_names(claims)]


def _pair(identity: Any, token: str | None) -> tuple[KeycloakCredentials, BaseUser]:
    claims = getattr(identity, "claims", None)
    user = identity if isinstance(identity, BaseUser) else KeycloakUser(identity, token)
    # The scopes (every role, sorted) are built only if the app reads them.
    return KeycloakCredentials(None, token, claims if isinstance(claims, Mapping) else None), user


class KeycloakBackend(AuthenticationBackend):
    """Authenticate connections with kc's engine: a bearer token or the login session.

    Returns ``None`` for visitors (Starlette then puts an ``UnauthenticatedUser`` on the
    scope). A bearer token validated before is answered on the event loop; anything that may
    reach Keycloak or the token store runs in a worker thread (``AsyncEngine``).
    When Keycloak is needed and unreachable, the visitor is anonymous here; protected
    routes answer 503 themselves.

    Example (a bearer-only API, without kc's middleware)::

        app.add_middleware(AuthenticationMiddleware, backend=KeycloakBackend(engine))
    """

    def __init__(self, engine: Engine | AsyncEngine) -> None:
        self.engine = engine if isinstance(engine, AsyncEngine) else AsyncEngine(engine)
        self._engine = self.engine.engine
        self._session_key = self.engine.engine.settings.session_key
        self._cookie_mode = self.engine.engine.cookies is not None
        self._users = UserMemo()
        # Authorization values seen lately, each decoded once: the same str for the same
        # token, so the engine hashes a 1-2 KB token once instead of on every request.
        self._authorizations: dict[bytes, _Authorization] = {}
        #: The engine's 401 for a bearer-only route reached without credentials.
        self.no_token = NoTokenRefusal(self.engine.engine)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """``(credentials, user)`` of the connection, or ``None`` for a visitor."""
        scope = conn.scope
        scope[BACKEND_KEY] = self
        entry = self.authorization_entry(scope)
        if entry is not None:
            return self.remembered_entry(scope, entry) or await self.identify(conn)
        if not self.has_session(scope):
            return None  # nothing to look up: no worker thread for visitors
        return await self.identify(conn)

    async def identify(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """:meth:`authenticate` for a connection :meth:`may_be_logged_in` let through."""
        guard = await self.engine.authenticate(conn)
        scope = conn.scope
        scope[GUARD_KEY] = guard  # protected routes authorize against it, no second validation
        if guard.headers:
            self.add_headers(scope, guard)
        if guard.identity is None:
            return None
        return self.credentials_and_user(guard.identity, guard.token)

    def remembered_entry(
        self, scope: Any, entry: _Authorization
    ) -> tuple[KeycloakCredentials, BaseUser] | None:
        """The pair of the bearer token in the value :meth:`authorization_entry` found, if
        the engine admitted it before and still holds it valid
        (:meth:`~kc_core.engine.Engine.remembered`), its guard and :class:`Kept` put on the
        scope; else ``None``, the header's text remembered for the engine's hooks."""
        guard = self._engine.remembered(entry.text)
        if guard is None:
            remember_header(scope, "authorization", entry.text)
            return None
        kept = entry.kept
        if kept is None or kept.guard is not guard:
            # One assignment: a thread reading it sees the old or the new, never a mix.
            entry.kept = kept = Kept(guard, self.credentials_and_user(guard.identity, guard.token))
        scope[GUARD_KEY] = guard
        scope[KEPT_KEY] = kept
        return kept.pair

    def credentials_and_user(
        self, identity: Any, token: str | None
    ) -> tuple[KeycloakCredentials, BaseUser]:
        """Starlette's pair for an identity the engine built (made once per identity).

        An identity that is already a Starlette ``BaseUser`` (from a ``kc_build_identity``
        hook) is the user itself.
        """
        return self._users.get(identity, token, lambda: _pair(identity, token))

    def admit(self, scope: Any, guard: Guard) -> None:
        """Put an admitted ``guard``'s user on the scope, its headers kept for the response."""
        if guard.headers:
            self.add_headers(scope, guard)
        identity = guard.identity
        if identity is not None and getattr(scope.get("user"), "kc_identity", None) is not identity:
            scope["auth"], scope["user"] = self.credentials_and_user(identity, guard.token)

    @staticmethod
    def add_headers(scope: Any, guard: Guard) -> None:
        """Keep ``guard.headers`` (refreshed token cookies) for the app's response."""
        if guard.headers:
            pending = scope.setdefault(HEADERS_KEY, [])
            pending.extend(h for h in guard.headers if h not in pending)

    def may_be_logged_in(self, scope: Any) -> bool:
        """Whether the connection carries anything to authenticate, read from the scope.

        Starlette's session is already in memory (a signed cookie): a request with neither an
        ``Authorization`` header nor kc's session entry is a visitor.
        """
        return self.authorization(scope) is not None or self.has_session(scope)

    def has_session(self, scope: Any) -> bool:
        """Whether the connection may have a login session (kc's entry in Starlette's
        session, or token cookies in cookie mode)."""
        if self._cookie_mode:
            return True
        session = scope.get("session")
        return session is not None and self._session_key in session

    def authorization(self, scope: Any) -> str | None:
        """The connection's ``Authorization`` header (``None`` without one), decoded.

        The header hook then answers this same string for the rest of the request.
        """
        entry = self.authorization_entry(scope)
        if entry is None:
            return None
        remember_header(scope, "authorization", entry.text)
        return entry.text

    def authorization_entry(self, scope: Any) -> _Authorization | None:
        """The memo entry of the connection's ``Authorization`` value (``None`` without one)."""
        for name, found in scope["headers"]:
            if name == _AUTHORIZATION:
                value: bytes = found
                break
        else:
            return None
        memo = self._authorizations
        tail = value[-_TAIL:]
        entry = memo.get(tail)
        if entry is None or entry.value != value:
            entry = _Authorization(value, value.decode("latin-1"))
            if len(memo) >= _AUTHORIZATIONS_KEPT:
                memo.clear()
            memo[tail] = entry
        return entry


class NoTokenRefusal:
    """The engine's 401 for a request without credentials on a bearer-only route, kept the
    first time the engine answers one: the next ones get a copy, with no engine call.

    The engine answers such a request the same way every time (no token: no ``error`` in the
    challenge, no session read, no cookie); only the tenant's realm and the adapter's
    response shape it. So the answer is kept only for an engine of one tenant, and copied
    only for a request of the same adapter that the engine would refuse the same way: no
    ``Authorization`` header at all, not an ``OPTIONS`` (a CORS preflight may pass), not on
    an exempt path or route. Any other request goes to the engine.
    """

    __slots__ = ("_adapter", "_engine", "_fields", "_headers", "_single_tenant")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        try:
            engine.client  # noqa: B018 (raises with several tenants: realms, hence answers, differ)
        except KeycloakError:
            self._single_tenant = False
        else:
            self._single_tenant = True
        self._adapter: Adapter | None = None  # the adapter of the kept answer, once kept
        self._fields: dict[str, Any] = {}
        self._headers: list[tuple[bytes, bytes]] = []

    def adapter_if_applies(self, conn: HTTPConnection, requirement: Requirement) -> Adapter | None:
        """The connection's adapter when the engine's answer is the no-token 401, else ``None``."""
        if not (requirement.bearer_only and self._single_tenant):
            return None
        scope = conn.scope
        if scope.get("method") == "OPTIONS":
            return None
        for name, _value in scope["headers"]:
            if name == _AUTHORIZATION:
                return None  # even an empty one: the engine judges it
        engine = self._engine
        adapter = engine.plugins.adapter_for(conn)
        path = adapter.path(conn)
        if engine.is_exempt(path) or engine.routes.exempt(adapter, conn, path):
            return None
        return adapter

    def answer(self, adapter: Adapter) -> Response | None:
        """A new copy of the kept 401, if one made through ``adapter`` is kept."""
        if adapter is not self._adapter:
            return None
        # Its own header list: FastAPI and exception handlers add to it.
        return copied(Response, self._fields, raw_headers=self._headers.copy())

    def keep(self, adapter: Adapter, guard: Guard) -> None:
        """Keep the engine's answer to a request :meth:`adapter_if_applies` accepted."""
        response = guard.response
        if type(response) is Response and response.status_code == 401 and not guard.headers:
            # Copied before the app sees it: nothing has changed it yet. Starlette's cached
            # ``headers`` view is left out: it would write to this response's list.
            self._fields = {k: v for k, v in vars(response).items() if k != "_headers"}
            self._headers = list(response.raw_headers)
            self._adapter = adapter
