"""The ASGI middleware: kc's login routes, and the user on every connection's scope.

:class:`KeycloakMiddleware` is a pure ASGI middleware (no ``BaseHTTPMiddleware``): it serves
the engine's endpoints under the prefix (``/kc/login``, ``/kc/callback``, ``/kc/logout``,
``/kc/backchannel-logout``) and puts ``scope["user"]`` and ``scope["auth"]`` on every
request and WebSocket as Starlette's ``AuthenticationMiddleware`` does. Routes are protected
with :mod:`kc_starlette.protection`. Starlette's ``SessionMiddleware`` must wrap it (add it
after), as the login keeps its state in the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kc_core import Client, Config
from kc_core.adapters import (
    ENDPOINTS,
    MAX_FORM_BYTES,
    adapter_engine,
    adapter_registration,
    read_form_body,
    seed_guard,
)
from kc_core.engine import AsyncEngine, Engine, EngineSettings, Requirement
from kc_core.plugins import Plugins
from kc_core.seed import SeedMiddleware
from kc_core.stores import TokenStore
from kc_core.stores.cookie import CookieTokenStore

from . import plugin as starlette_plugin
from .authentication import BACKEND_KEY, HEADERS_KEY, KeycloakBackend
from .config import engine_settings
from .errors import AccessRefused
from .plugin import FORM_KEY, app_path, raw_headers
from .protection import admit, passed_before

__all__ = [
    "MAX_FORM_BYTES",
    "AccessRefused",
    "AuthenticationMiddleware",
    "KeycloakMiddleware",
    "build_engine",
    "read_form",
    "with_starlette_adapter",
]

_NO_SESSION = (
    "kc-starlette keeps logins in the session: add Starlette's SessionMiddleware after "
    "the kc middleware (app.add_middleware(SessionMiddleware, ...)), so that it wraps it"
)


with_starlette_adapter = adapter_registration(starlette_plugin, "starlette")


def build_engine(
    *,
    config: Config | Client | Mapping[str, Config | Client] | None = None,
    settings: EngineSettings | None = None,
    store: TokenStore | CookieTokenStore | None = None,
    plugins: Plugins | None = None,
    enforcer: Any = None,
    environ: Mapping[str, str] | None = None,
) -> Engine:
    """An engine with this adapter; what is not given comes from ``environ`` (``os.environ``).

    Raises:
        ConfigError: a required setting is missing or invalid.
    """
    return adapter_engine(
        with_starlette_adapter,
        lambda: config if config is not None else Config.load(environ=environ),
        lambda: settings or engine_settings(environ),
        plugins=plugins, store=store, enforcer=enforcer,
    )  # fmt: skip


class KeycloakMiddleware:
    """Keycloak login, logout and authentication for a Starlette (or FastAPI) app.

    Args:
        app: the ASGI app (Starlette passes it).
        engine: a ready :class:`~kc_core.engine.Engine`; otherwise one is built from the
            other arguments and the environment (``KEYCLOAK_*``, then ``keycloak.json``).
        config, settings, store, plugins, enforcer: as for :class:`~kc_core.engine.Engine`.
        environ: where ``KEYCLOAK_*`` settings are read (default ``os.environ``).
        require: what every HTTP request must meet before the app sees it (a JSON API
            protected as a whole: ``Requirement.for_bearer()``, with roles if all need
            them); refused here, before routing. kc's endpoints, ``exempt_paths``,
            ``exempt_routes`` and CORS preflights pass. Routes may still ask for more.

    Example::

        app = Starlette(routes=routes)
        app.add_middleware(KeycloakMiddleware)
        app.add_middleware(SessionMiddleware, secret_key=os.environ["SECRET_KEY"])

        api = FastAPI()  # every route needs a bearer token, but /health
        api.add_middleware(KeycloakMiddleware, require=Requirement.for_bearer(),
                           settings=EngineSettings(exempt_paths=("/health",)))

    Raises:
        ConfigError: a required setting is missing or invalid (when the stack is built).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        engine: Engine | None = None,
        config: Config | Client | Mapping[str, Config | Client] | None = None,
        settings: EngineSettings | None = None,
        store: TokenStore | CookieTokenStore | None = None,
        plugins: Plugins | None = None,
        enforcer: Any = None,
        environ: Mapping[str, str] | None = None,
        require: Requirement | None = None,
    ) -> None:
        self.app = app
        self.require = require
        self.engine = engine or build_engine(
            config=config, settings=settings, store=store, plugins=plugins,
            enforcer=enforcer, environ=environ,
        )  # fmt: skip
        with_starlette_adapter(self.engine.plugins)  # a ready engine serves Starlette too
        self.async_engine = AsyncEngine(self.engine)
        self.backend = KeycloakBackend(self.async_engine)
        self._endpoints = frozenset(f"{self.settings.prefix}/{e.path}" for e in ENDPOINTS)
        self._cookie_mode = self.engine.cookies is not None

    @property
    def settings(self) -> EngineSettings:
        """The engine's routes and behaviour."""
        return self.engine.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if app_path(scope) in self._endpoints:
                await self.serve_endpoint(scope, receive, send)
                return
        elif kind != "websocket":
            await self.app(scope, receive, send)  # lifespan: no connection to authenticate
            return
        # authenticate() inlined: every request and handshake runs this.
        backend = self.backend
        scope[BACKEND_KEY] = backend
        entry = backend.authorization_entry(scope)
        # A bearer token admitted before: its user at once, no engine pass.
        result: tuple[AuthCredentials, BaseUser] | None = None
        if entry is not None:
            result = backend.remembered_entry(scope, entry)
        if self.require is not None and kind == "http":
            scope["auth"], scope["user"] = result or (AuthCredentials(), UnauthenticatedUser())
            if not passed_before(scope, self.require):
                refusal = await admit(HTTPConnection(scope), self.require)
                if refusal is not None:
                    await refusal(scope, receive, send)
                    return
        else:
            if result is None and (entry is not None or backend.has_session(scope)):
                result = await backend.identify(HTTPConnection(scope))
            scope["auth"], scope["user"] = result or (AuthCredentials(), UnauthenticatedUser())
        await self.call_app(scope, receive, send)

    async def authenticate(self, connection: HTTPConnection) -> None:
        """Put the user and credentials on the scope, as Starlette's middleware does."""
        result = await self.backend.authenticate(connection)
        scope = connection.scope
        scope["auth"], scope["user"] = result or (AuthCredentials(), UnauthenticatedUser())

    async def call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, adding kc's pending headers and sending a refusal it raised."""
        # Only token cookies (cookie mode) ever add headers to the app's response.
        if self._cookie_mode or HEADERS_KEY in scope:
            send = _adding_headers(scope, send)
        try:
            await self.app(scope, receive, send)
        except AccessRefused as refused:
            await self.send_refusal(refused, scope, receive, send)

    @staticmethod
    async def send_refusal(
        refused: AccessRefused, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Send the refusal the app raised (a WebSocket handshake is closed instead)."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await refused.response(scope, receive, send)

    async def serve_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one of the engine's endpoints (its form read first, for POSTs)."""
        request = Request(scope, receive)
        if "session" not in scope and app_path(scope) != self.settings.backchannel_logout_path:
            raise RuntimeError(_NO_SESSION)
        if scope["method"] == "POST":
            scope[FORM_KEY] = await read_form(request)
        response: Response | None = await self.async_engine.route(request)
        await (response or self.app)(scope, receive, send)  # the app: not the engine's path


class AuthenticationMiddleware(KeycloakMiddleware):
    """The earlier library's middleware: every page needs a Keycloak login.

    A visitor's browser goes straight to Keycloak and lands on ``login_redirect_uri`` after
    logging in; an API client gets a JSON 401 instead; a GET of ``logout_uri`` ends the
    session here and in Keycloak, then redirects to ``logout_redirect_uri``; views read
    ``request.session["user"]``. The behaviour is :class:`kc_core.seed.SeedMiddleware`'s.
    Settings come from the environment (``KEYCLOAK_*``) and ``keycloak.json``. Example (the
    earlier library's)::

        app.add_middleware(
            AuthenticationMiddleware,
            callback_url="http://localhost:8000/kc/callback",
            login_redirect_uri="/home",
            logout_redirect_uri="/logout",
        )
        app.add_middleware(SessionMiddleware, secret_key="...")

    Args:
        app: the ASGI app (Starlette passes it).
        callback_url, login_redirect_uri, logout_uri, logout_redirect_uri, redirect_uri,
            exempt_paths: the earlier library's (see :class:`kc_core.seed.SeedMiddleware`).
        client, store, plugins: see :data:`kc_core.adapters.SEED_ARGUMENTS`.
        environ: as for :class:`KeycloakMiddleware`.

    Raises:
        ConfigError: a setting is missing, or the callback path does not end in ``/callback``.
    """

    def __init__(
        self,
        app: ASGIApp,
        callback_url: str = "http://localhost:8000/kc/callback",
        login_redirect_uri: str | None = None,
        logout_uri: str | None = None,
        logout_redirect_uri: str | None = None,
        *,
        redirect_uri: str | None = None,
        exempt_paths: Iterable[str] = (),
        client: Config | Client | None = None,
        store: TokenStore | CookieTokenStore | None = None,
        plugins: Plugins | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.seed = SeedMiddleware(
            callback_url, login_redirect_uri, logout_uri, logout_redirect_uri,
            redirect_uri=redirect_uri, exempt_paths=exempt_paths,
        )  # fmt: skip
        settings = self.seed.settings(os.environ if environ is None else environ)
        super().__init__(
            app, config=client, settings=settings, store=store, plugins=plugins, environ=environ
        )
        self.seed.install(self.engine)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or app_path(scope) in self._endpoints:
            await super().__call__(scope, receive, send)
            return
        if "session" not in scope:
            raise RuntimeError(_NO_SESSION)
        request = Request(scope, receive)
        guard = await seed_guard(
            self.seed, self.async_engine, request, app_path(scope), scope["session"],
            lambda: Request({**scope, "query_string": b""}, receive),
        )  # fmt: skip
        if guard.response is not None:
            await guard.response(scope, receive, send)
            return
        if guard.identity is None:  # not protected here: whoever is logged in, if anyone
            await self.authenticate(request)
        self.backend.admit(scope, guard)
        await self.call_app(scope, receive, send)


def _adding_headers(scope: Scope, send: Send) -> Send:
    """``send``, adding the headers pending on the scope when the response starts."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            pending = scope.get(HEADERS_KEY)
            if pending:
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), *raw_headers(pending)]
        await send(message)

    return send_with_headers


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded body's fields (first value of each); empty for anything else or too big."""
    return await read_form_body(request.headers.get("content-type", ""), request.stream())
