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

from kc_core.adapters import KeycloakUserBase, UserMemo, role_names
from kc_core.engine import AsyncEngine, Engine, Guard

__all__ = [
    "BACKEND_KEY",
    "HEADERS_KEY",
    "KeycloakBackend",
    "KeycloakCredentials",
    "KeycloakUser",
]

#: Scope key of the backend that authenticated the connection (protection helpers use it).
BACKEND_KEY = "kc.backend"
#: Scope key of the headers to add to the app's response (cookies after a silent refresh).
HEADERS_KEY = "kc.headers"
#: Scope key of the engine's answer for the connection (its identity, token and claims).
GUARD_KEY = "kc.guard"


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
        self._session_key = self.engine.engine.settings.session_key
        self._cookie_mode = self.engine.engine.cookies is not None
        self._users = UserMemo()

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """``(credentials, user)`` of the connection, or ``None`` for a visitor."""
        scope = conn.scope
        scope[BACKEND_KEY] = self
        if not self.may_be_logged_in(scope):
            return None  # nothing to look up: no worker thread for visitors
        guard = await self.engine.authenticate(conn)
        scope[GUARD_KEY] = guard  # protected routes authorize against it, no second validation
        self.add_headers(scope, guard)
        if guard.identity is None:
            return None
        return self.credentials_and_user(guard.identity, guard.token)

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
        if self._cookie_mode:
            return True
        for name, _value in scope["headers"]:
            if name == b"authorization":
                return True
        session = scope.get("session")
        return session is not None and self._session_key in session
