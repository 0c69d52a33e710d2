"""The Flask extension: ``Keycloak(app)`` or ``Keycloak().init_app(app)``.

Everything an app needs at run time lives in ``app.extensions["keycloak"]`` (the engine), so
one extension object serves any number of apps built by an application factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Flask, current_app, request
from flask.sessions import SecureCookieSessionInterface

from kc_core import Client, Config
from kc_core.adapters import ENDPOINTS, Endpoint, adapter_engine, adapter_registration
from kc_core.engine import Engine, EngineSettings
from kc_core.plugins import Plugins
from kc_core.stores import TokenStore
from kc_core.stores.cookie import CookieTokenStore

from . import plugin as flask_plugin
from .config import client_config, engine_settings
from .sessions import _SecureOverHttps

__all__ = ["EXTENSION_KEY", "Keycloak", "blueprint", "engine_of"]

EXTENSION_KEY = "keycloak"

blueprint = Blueprint("keycloak", __name__)
"""The engine's endpoints, mounted at ``KEYCLOAK_PREFIX`` (``/kc``) by :meth:`Keycloak.init_app`.

Endpoint names: ``keycloak.login``, ``keycloak.callback``, ``keycloak.logout`` and
``keycloak.backchannel_logout`` (for ``url_for``).
"""


def engine_of(app: Flask | None = None) -> Engine:
    """The engine of ``app`` (default: the current app).

    Raises:
        RuntimeError: the app was not initialised with :class:`Keycloak`.
    """
    # Resolve the proxy once: attribute access through it costs on every protected request.
    target = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    engine = target.extensions.get(EXTENSION_KEY)
    if not isinstance(engine, Engine):
        raise RuntimeError(
            "kc-flask is not initialised on this app: call Keycloak(app) or init_app(app)"
        )
    return engine


def _current_request() -> Any:
    # The engine caches the adapter by request class: hand it the request, not the proxy.
    return request._get_current_object()  # type: ignore[attr-defined]


def _endpoint_view(endpoint: Endpoint) -> Callable[[], Any]:
    def serve() -> Any:
        return endpoint.serve(engine_of(), _current_request())

    # Its own name: Flask-WTF exempts views from CSRF by module and name.
    serve.__name__ = serve.__qualname__ = f"serve_{endpoint.name}"
    return serve


# Logout answers GET too: 405 unless KEYCLOAK_ALLOW_GET_LOGOUT is set.
for _endpoint in ENDPOINTS:
    _methods = ["GET"] if _endpoint.get_only else ["GET", "POST"]
    blueprint.add_url_rule(
        f"/{_endpoint.path}", _endpoint.name, _endpoint_view(_endpoint), methods=_methods
    )


class Keycloak:
    """Keycloak login, logout and protection for a Flask app.

    Configure it with ``app.config`` keys ``KEYCLOAK_SERVER_URL``, ``KEYCLOAK_REALM``,
    ``KEYCLOAK_CLIENT_ID``, ``KEYCLOAK_CLIENT_SECRET`` ... (every :class:`kc_core.Config`
    field, plus the engine's ``KEYCLOAK_PREFIX``, ``KEYCLOAK_LOGOUT_MODE`` ...) or a
    ``keycloak.json``. Arguments given here override ``app.config``.

    Args:
        app: the app to initialise now (or call :meth:`init_app` later).
        config: a :class:`~kc_core.Config` or :class:`~kc_core.Client` to use instead of
            ``app.config``'s client settings.
        settings: engine settings to use instead of ``app.config``'s.
        store: where tokens live: a server-side token store (default: the
            ``kc_token_store`` hook, else in memory, for a single process) or a
            :class:`~kc_core.stores.cookie.CookieTokenStore` (encrypted cookies).
        plugins: the kc plugin manager (default: every installed kc plugin).
        enforcer: a policy enforcer for :class:`~kc_core.engine.Engine`.
        engine: a ready engine to use as is (the other arguments and ``app.config`` are
            then ignored), for instance one shared by several apps.

    Example::

        keycloak = Keycloak()

        def create_app():
            app = Flask(__name__)
            app.config.from_prefixed_env()   # FLASK_KEYCLOAK_REALM=... -> KEYCLOAK_REALM
            keycloak.init_app(app)
            return app
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        config: Config | Client | Mapping[str, Config | Client] | None = None,
        settings: EngineSettings | None = None,
        store: TokenStore | CookieTokenStore | None = None,
        plugins: Plugins | None = None,
        enforcer: Any = None,
        engine: Engine | None = None,
    ) -> None:
        # Only what the caller chose; each app's engine lives in app.extensions.
        self._config = config
        self._settings = settings
        self._options = {"engine": engine, "plugins": plugins, "store": store, "enforcer": enforcer}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build ``app``'s engine, mount the login/logout routes and add ``current_user``.

        Raises:
            ConfigError: a required setting is missing or invalid.
        """
        engine = adapter_engine(
            with_flask_adapter,
            lambda: self._config or client_config(app.config, root_path=app.root_path),
            lambda: self._settings or engine_settings(app.config),
            **self._options,
        )
        app.extensions[EXTENSION_KEY] = engine
        app.register_blueprint(blueprint, url_prefix=engine.settings.prefix)
        app.context_processor(_template_context)
        _exempt_from_csrf(app)
        _harden_session_cookie(app)

    def engine(self, app: Flask | None = None) -> Engine:
        """The engine of ``app`` (default: the current app)."""
        return engine_of(app)

    def client(self, app: Flask | None = None) -> Client:
        """The kc :class:`~kc_core.Client` of ``app`` (default: the current app)."""
        return engine_of(app).client


with_flask_adapter = adapter_registration(flask_plugin, "flask")


def _template_context() -> dict[str, Any]:
    from .decorators import current_user

    return {"current_user": current_user}


def _harden_session_cookie(app: Flask) -> None:
    # The session cookie carries the login: SameSite=Lax unless the app chose otherwise, and
    # Secure under https for Flask's own cookie session (HttpOnly is Flask's default already).
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = _SecureOverHttps()


def _exempt_from_csrf(app: Flask) -> None:
    # Keycloak posts logout tokens server to server: no CSRF token can come with them.
    csrf: Any = app.extensions.get("csrf")  # Flask-WTF's CSRFProtect
    if hasattr(csrf, "exempt"):
        csrf.exempt(app.view_functions["keycloak.backchannel_logout"])
