"""The earlier library's WSGI middleware, on the same engine as the extension.

Every page needs a login: a visitor is sent to Keycloak, comes back to the callback URL and
lands on ``login_redirect_uri``; a GET of ``logout_uri`` ends the session here and in
Keycloak, then redirects to ``logout_redirect_uri``; views read ``session["user"]``. The
behaviour is :class:`kc_core.seed.SeedMiddleware`'s. Example (the earlier library's)::

    app.wsgi_app = AuthenticationMiddleware(
        app.wsgi_app,
        app.config,
        app.session_interface,
        callback_url="http://localhost:5000/kc/callback",
        login_redirect_uri="/home",
        logout_redirect_uri="/logout",
    )
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from flask import Flask
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.exceptions import SecurityError
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_host

from kc_core import Client, Config, ConfigError
from kc_core.adapters import SeedAction, adapter_engine, start_response_adding
from kc_core.engine import Engine, EngineSettings
from kc_core.plugins import Plugins
from kc_core.seed import SeedMiddleware
from kc_core.stores import TokenStore
from kc_core.stores.cookie import CookieTokenStore

from .config import client_config
from .decorators import ENVIRON_IDENTITY, ENVIRON_TOKEN
from .extension import with_flask_adapter
from .plugin import SessionBoundRequest

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["AuthenticationMiddleware"]


class AuthenticationMiddleware:
    """Require a Keycloak login for every request to ``app`` (a WSGI app).

    Args:
        app: the wrapped WSGI app, usually ``flask_app.wsgi_app``.
        config: the app's config (``KEYCLOAK_*`` keys, else ``keycloak.json``) with its
            ``SECRET_KEY`` and session cookie settings.
        session_interface: the app's session interface (``flask_app.session_interface``).
        callback_url, login_redirect_uri, logout_uri, logout_redirect_uri, redirect_uri,
            exempt_paths: the earlier library's (see :class:`kc_core.seed.SeedMiddleware`).
        client, store, plugins: see :data:`kc_core.adapters.SEED_ARGUMENTS`.

    The identity and access token of a logged-in request are put in the WSGI environ
    (``kc.identity``, ``kc.token``); ``kc_flask.current_user`` reads them.

    Raises:
        ConfigError: a setting is missing, or the callback path does not end in ``/callback``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        config: Mapping[str, Any],
        session_interface: SessionInterface,
        callback_url: str = "http://localhost:5000/kc/callback",
        login_redirect_uri: str | None = None,
        logout_uri: str | None = None,
        logout_redirect_uri: str | None = None,
        *,
        redirect_uri: str | None = None,
        exempt_paths: Iterable[str] = (),
        client: Config | Client | None = None,
        store: TokenStore | CookieTokenStore | None = None,
        plugins: Plugins | None = None,
    ) -> None:
        self.app = app
        self.session_interface = session_interface
        self.seed = SeedMiddleware(
            callback_url, login_redirect_uri, logout_uri, logout_redirect_uri,
            redirect_uri=redirect_uri, exempt_paths=exempt_paths,
        )  # fmt: skip
        if not config.get("SECRET_KEY"):
            raise ConfigError("the session needs app.config['SECRET_KEY']", key="SECRET_KEY")
        # Flask checks TRUSTED_HOSTS when it routes; outside Flask, this middleware does.
        self._trusted_hosts = config.get("TRUSTED_HOSTS")
        owner = getattr(app, "__self__", None)  # flask_app.wsgi_app is a bound method
        self._session_app = owner if isinstance(owner, Flask) else _app_for_sessions(config)
        root_path = owner.root_path if isinstance(owner, Flask) else None
        self.engine: Engine = adapter_engine(
            with_flask_adapter,
            lambda: client or client_config(config, root_path=root_path),
            lambda: self.seed.settings(config),
            plugins=plugins,
            store=store,
        )
        self.seed.install(self.engine)

    @property
    def settings(self) -> EngineSettings:
        """The engine's routes and behaviour."""
        return self.engine.settings

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = SessionBoundRequest(environ)
        if self._trusted_hosts is not None:
            try:
                get_host(environ, self._trusted_hosts)
            except SecurityError as refused:  # werkzeug's own 400
                return refused(environ, start_response)
        session = self._open_session(request)
        request.bind_session(session, self.session_interface)
        response = self.engine.route(request)
        if response is None:
            action = self.seed.action(self.engine, request.path, session)
            if action is SeedAction.PASS:
                return self.app(environ, start_response)
            if action is SeedAction.LOGOUT:
                response = self.engine.logout(request)
            else:
                guard = self.engine.protect(request)
                if guard.allowed:
                    environ[ENVIRON_IDENTITY] = guard.identity
                    environ[ENVIRON_TOKEN] = guard.token
                    return self.app(environ, start_response_adding(guard.headers, start_response))
                response = guard.response
                if self.seed.must_log_in(self.engine, guard, session):
                    # Straight to Keycloak, and back to redirect_uri (the seed's behaviour).
                    response = self.engine.login(self._without_query(environ, session))
        self.session_interface.save_session(self._session_app, session, response)
        return cast("Response", response)(environ, start_response)

    def _open_session(self, request: SessionBoundRequest) -> SessionMixin:
        session = self.session_interface.open_session(self._session_app, request)
        if session is None:
            session = self.session_interface.make_null_session(self._session_app)
        return session

    def _without_query(self, environ: WSGIEnvironment, session: SessionMixin) -> Any:
        # The page's own query must not choose where the user lands after login.
        request = SessionBoundRequest({**environ, "QUERY_STRING": ""})
        request.bind_session(session, self.session_interface)
        return request


def _app_for_sessions(config: Mapping[str, Any]) -> Flask:
    """A Flask app of ``config``, for the session interface to read as it reads its own app.

    Used when the wrapped WSGI callable is not a Flask app's own ``wsgi_app`` (for example
    another middleware): the session cookie is still read and written as Flask does.
    """
    app = Flask(__name__)
    app.config.update(config)
    return app
