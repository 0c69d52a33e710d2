"""The earlier library's ``AuthenticationMiddleware`` behaviour, once for every framework.

The Flask, Starlette and Django seed middlewares differ only in I/O: each builds a
:class:`SeedMiddleware` from its arguments (or Django settings), asks it what to do with a
request (:meth:`SeedMiddleware.action`) and runs the engine accordingly. What the earlier
library did, kept here:

- every page needs a login, except the callback, the logout URI and the logout redirect (and
  ``exempt_paths``); a browser goes straight to Keycloak and lands on ``login_redirect_uri``;
- a GET of ``logout_uri`` ends the session here and in Keycloak (a server-side call, as the
  earlier library made), then redirects to ``logout_redirect_uri``;
- after login the session holds ``user``: the userinfo, JSON-encoded as a string.

Not kept, for security: the session's ``tokens`` entry (a signed cookie session would hand
the tokens to the browser; kc keeps them in its token store). See docs/compat.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from .adapters import SeedAction, needs_login
from .engine import Engine, EngineSettings
from .errors import ConfigError, KeycloakError
from .oidc import TokenSet

__all__ = ["SEED_LOGOUT_URI", "USER_KEY", "SeedAction", "SeedMiddleware"]

_log = logging.getLogger(__name__)

#: The earlier library's default ``logout_uri``.
SEED_LOGOUT_URI = "/kc/logout"
#: Where the session keeps the logged-in user's userinfo (a JSON string), as it did.
USER_KEY = "user"


class SeedMiddleware:
    """What the earlier middleware does, for one app; the framework does the I/O.

    Args:
        callback_url: where Keycloak sends the browser back; its path must end with
            ``/callback`` (only the path is used).
        login_redirect_uri: where the user lands after logging in (``redirect_uri`` is the
            earlier docs' name for it; give one of them).
        logout_uri: the path whose GET logs the user out (default ``/kc/logout``).
        logout_redirect_uri: where the browser goes after logout; served without a login
            (unless it is the ``login_redirect_uri`` too: then the next visit logs in again).
            Default ``/``, or ``logout_uri`` itself when only that was given (the docs' form,
            whose app shows its own page there).
        exempt_paths: more paths served without a login (a trailing ``/`` exempts a subtree).

    Raises:
        ConfigError: ``redirect_uri`` and ``login_redirect_uri`` disagree, or the callback
            path does not look like ``/PREFIX/callback``.
    """

    def __init__(
        self,
        callback_url: str = "/kc/callback",
        login_redirect_uri: str | None = None,
        logout_uri: str | None = None,
        logout_redirect_uri: str | None = None,
        *,
        redirect_uri: str | None = None,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        if None not in (redirect_uri, login_redirect_uri) and redirect_uri != login_redirect_uri:
            raise ConfigError(
                "redirect_uri and login_redirect_uri name the same setting; give one",
                key="login_redirect_uri",
            )
        self.callback_url = callback_url
        self.login_redirect_uri = login_redirect_uri or redirect_uri or "/"
        self.logout_uri = logout_uri or SEED_LOGOUT_URI
        self.logout_redirect_uri = logout_redirect_uri or logout_uri or "/"
        self.exempt_paths = tuple(exempt_paths)

    def settings(self, values: Mapping[str, Any] | None = None) -> EngineSettings:
        """The engine's settings: these routes, and ``KEYCLOAK_*`` keys of ``values``.

        Logout is the earlier server-side call unless ``KEYCLOAK_LOGOUT_MODE`` says otherwise
        (it needs no post-logout redirect URI registered in Keycloak).
        """
        values = values or {}
        settings = EngineSettings.for_seed_middleware(
            self.callback_url,
            self.login_redirect_uri,
            self.logout_redirect_uri,
            exempt_paths=self.exempt_paths,
            values=values,
        )
        if "KEYCLOAK_LOGOUT_MODE" not in values:
            settings = dataclasses.replace(settings, logout_mode="server")
        return settings

    def install(self, engine: Engine) -> None:
        """Have ``engine`` keep the session's ``user`` as the earlier library did."""
        engine.plugins.ensure_registered(_SessionUser(engine), f"kc-seed-user-{id(engine)}")

    def action(self, engine: Engine, path: str, session: Mapping[str, Any] | None) -> SeedAction:
        """What to do at ``path`` (not one of the engine's own endpoints).

        The logout URI logs out (also a visitor without a session: the engine then only
        redirects), unless it is the logout redirect too and nobody is logged in.
        """
        if path == self.logout_uri:
            logged_in = session is not None and isinstance(
                session.get(engine.settings.session_key), dict
            )
            if logged_in or path != self.logout_redirect_uri:
                return SeedAction.LOGOUT
            return SeedAction.PASS
        if path == self.logout_redirect_uri and path != self.login_redirect_uri:
            return SeedAction.PASS
        return SeedAction.PASS if engine.is_exempt(path) else SeedAction.PROTECT

    @staticmethod
    def must_log_in(engine: Engine, guard: Any, session: MutableMapping[str, Any] | None) -> bool:
        """Whether a refusal means "log in" (then send the browser to Keycloak).

        A session whose login is gone loses its ``user`` too, so no page reads a stale one.
        """
        if not needs_login(engine, guard):
            return False
        if session is not None:
            session.pop(USER_KEY, None)
        return True


class _SessionUser:
    """Writes ``session["user"]`` after login and removes it at logout (an engine plugin)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def kc_after_login(self, request: Any, tokens: TokenSet, identity: Any) -> None:
        claims = tokens.id_claims or {}
        sub = claims.get("sub")
        try:
            userinfo = self._engine.client_for(request).fetch_userinfo(
                tokens.access_token, sub=sub if isinstance(sub, str) else None
            )
        except KeycloakError as exc:
            # The login itself succeeded: the ID token's claims say who the user is.
            _log.warning("userinfo unavailable after login, using the ID token: %s", exc)
            userinfo = {k: v for k, v in claims.items() if k not in _TOKEN_ONLY_CLAIMS}
        self._session(request)[USER_KEY] = json.dumps(userinfo)

    def kc_after_logout(self, request: Any, identity: Any) -> None:
        self._session(request).pop(USER_KEY, None)

    def _session(self, request: Any) -> MutableMapping[str, Any]:
        return self._engine.plugins.adapter_for(request).session(request)


# ID-token claims that describe the token, not the user (userinfo has none of them).
_TOKEN_ONLY_CLAIMS = frozenset(
    {"exp", "iat", "auth_time", "jti", "iss", "aud", "typ", "azp", "nonce", "sid", "at_hash",
     "acr", "session_state"}
)  # fmt: skip
