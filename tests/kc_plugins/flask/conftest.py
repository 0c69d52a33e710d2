"""Fixtures for kc-flask tests: apps on the real Keycloak, logins through its real form.

Apps built by ``make_app`` talk to the suite's Keycloak (the ``keycloak`` fixture of
:mod:`kc_core.testing.plugin`, so every test using them is marked ``integration``). A login
goes as a browser's would: the app's ``/kc/login`` redirects to Keycloak, Keycloak's real
login form is filled in by :func:`~kc_core.testing.browser.login_with_form`, and the code and
state it sends back reach the app's callback through Flask's test client. Bearer tokens come
from Keycloak's token endpoint (``access_token``). ``offline_app`` points at a closed port
instead, for behaviour that must not need Keycloak at all.
"""

from __future__ import annotations

import importlib.util
import io
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from flask import Flask, g
from flask.testing import FlaskClient
from kc_flask import (
    Keycloak,
    bearer_required,
    current_access_token,
    current_user,
    login_required,
    roles_required,
)
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import TestResponse

from kc_core.testing.browser import BrowserSession, FormLoginResult, login_with_form
from kc_core.testing.server import KeycloakRealm

CLIENT_ID = "kc-web"
SECRET_KEY = "test-secret-key-0123456789"


def flask_config(keycloak: KeycloakRealm, **extra: Any) -> dict[str, Any]:
    """``app.config`` keys pointing an app at the test realm as kc-web."""
    return {
        "SECRET_KEY": SECRET_KEY,
        "KEYCLOAK_SERVER_URL": keycloak.base_url,
        "KEYCLOAK_REALM": keycloak.realm,
        "KEYCLOAK_CLIENT_ID": CLIENT_ID,
        "KEYCLOAK_CLIENT_SECRET": keycloak.client(CLIENT_ID).secret,
        **extra,
    }


def build_app(app_config: Mapping[str, Any], /, **extension: Any) -> Flask:
    """A small app with one view per kind of protection; ``extension`` goes to ``Keycloak``."""
    app = Flask(__name__)
    app.config.update(app_config)
    Keycloak(app, **extension)

    @app.get("/")
    def home() -> Any:
        return {"user": current_user.username, "authenticated": current_user.is_authenticated}

    @app.get("/private")
    @login_required
    def private() -> Any:
        return {"user": g.kc_identity.username, "name": current_user.name}

    @app.get("/admin")
    @roles_required("realm:admin")
    def admin() -> Any:
        return {"admin": current_user.username}

    @app.get("/api/data")
    @bearer_required(roles=["kc-api:reader"])
    def api_data() -> Any:
        return {"data": [1, 2, 3], "reader": current_user.username}

    @app.get("/api/me")
    @bearer_required
    def api_me() -> Any:
        return {"sub": current_user.sub, "token": current_access_token() is not None}

    return app


def _split(arguments: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``KEYCLOAK_*``-style upper-case keys for app.config; the rest for ``Keycloak(...)``."""
    config = {k: v for k, v in arguments.items() if k.isupper()}
    return config, {k: v for k, v in arguments.items() if k not in config}


@pytest.fixture
def make_app(keycloak: KeycloakRealm) -> Callable[..., Flask]:
    """Build the test app against the real Keycloak.

    Upper-case keyword arguments are app.config keys, lower-case ones go to ``Keycloak``
    (``make_app(KEYCLOAK_REFRESH_MARGIN=400, plugins=plugins)``).
    """

    def make(**arguments: Any) -> Flask:
        config, extension = _split(arguments)
        return build_app(flask_config(keycloak, **config), **extension)

    return make


@pytest.fixture
def offline_config(closed_port: int) -> dict[str, Any]:
    """``app.config`` keys naming a Keycloak that is not there: any call to it fails fast."""
    return {
        "SECRET_KEY": SECRET_KEY,
        "KEYCLOAK_SERVER_URL": f"http://127.0.0.1:{closed_port}",
        "KEYCLOAK_REALM": "kc-test",
        "KEYCLOAK_CLIENT_ID": CLIENT_ID,
        "KEYCLOAK_CLIENT_SECRET": "kc-web-secret",
        "KEYCLOAK_CONNECT_TIMEOUT": 0.5,
        "KEYCLOAK_RETRIES": 0,
    }


@pytest.fixture
def offline_app(offline_config: dict[str, Any]) -> Callable[..., Flask]:
    """Build the test app with no Keycloak reachable, for what must never need one."""

    def make(**arguments: Any) -> Flask:
        config, extension = _split(arguments)
        return build_app({**offline_config, **config}, **extension)

    return make


# -- tokens and logins from the real Keycloak ------------------------------------------------


@dataclass(frozen=True)
class LoggedIn:
    """A finished login: the app's answer, and the browser Keycloak knows."""

    #: the page the login landed on (or, with ``land=False``, the callback's redirect to it).
    page: TestResponse
    #: holds Keycloak's SSO cookies (follow the end-session redirect with it).
    browser: requests.Session


@pytest.fixture
def sign_in(keycloak: KeycloakRealm) -> Iterator[Callable[..., FormLoginResult]]:
    """Fill in Keycloak's login form for an authorization URL the app sent the browser to.

    Stops at Keycloak's redirect to the app's ``redirect_uri`` (never requested: the test
    client takes it from there) and returns its ``code`` and ``state``.
    """
    browsers: list[BrowserSession] = []

    def sign_in(
        authorization_url: str, user: str = "alice", *, browser: BrowserSession | None = None
    ) -> FormLoginResult:
        assert authorization_url.startswith(f"{keycloak.auth_url}?"), authorization_url
        redirect_uri = dict(parse_qsl(urlsplit(authorization_url).query))["redirect_uri"]
        if browser is None:
            browser = BrowserSession()
            browsers.append(browser)
        password = keycloak.user(user).password
        return login_with_form(
            authorization_url, user, password, session=browser, stop_at=redirect_uri
        )

    yield sign_in
    for browser in browsers:
        browser.close()


@pytest.fixture
def log_in(sign_in: Callable[..., FormLoginResult]) -> Callable[..., LoggedIn]:
    """Walk the login round trip for ``path`` with the test client and Keycloak.

    With ``land=False`` the client stops at the callback's redirect: no protected page has
    been requested with the new session yet.
    """

    def log_in(
        client: FlaskClient, path: str = "/private", user: str = "alice", *, land: bool = True
    ) -> LoggedIn:
        response = client.get(path)
        assert response.status_code == 302
        if response.location.startswith("/"):  # the app's login route first
            response = client.get(response.location)
        result = sign_in(response.location, user)
        assert result.code, result.params
        back = client.get(urlsplit(result.url).path, query_string=dict(result.params))
        assert back.status_code == 302, back.get_data(as_text=True)
        return LoggedIn(client.get(back.location) if land else back, result.session)

    return log_in


# -- apps over real HTTP (Keycloak's back-channel calls, the example app) -----------------------


@dataclass
class LiveApp:
    """A Flask (or any WSGI) app served over real HTTP on a free port."""

    app: Any
    server: BaseWSGIServer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def serve() -> Iterator[Callable[[Any], LiveApp]]:
    """Serve WSGI apps with werkzeug's ``make_server`` in threads; stopped after the test."""
    servers: list[BaseWSGIServer] = []

    def start(app: Flask | Any) -> LiveApp:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return LiveApp(app, server)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class BackchannelCalls:
    """What Keycloak posted to an app's back-channel logout route, and the app's answers."""

    tokens: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


def recording_backchannel(app: Any, path: str, calls: BackchannelCalls) -> Any:
    """``app`` (WSGI) noting each ``logout_token`` POSTed to ``path`` and the status answered."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != path or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)  # the app reads the form again
        calls.tokens.append(dict(parse_qsl(body.decode())).get("logout_token", ""))

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            calls.statuses.append(int(status.split()[0]))
            return start_response(status, headers, *exc_info)

        return app(environ, start)

    return wsgi


@pytest.fixture
def serve_for_backchannel(
    serve: Callable[[Any], LiveApp],
) -> Callable[[Flask], tuple[LiveApp, BackchannelCalls]]:
    """Serve ``app`` over HTTP so Keycloak can reach its ``/kc/backchannel-logout``."""

    def start(app: Flask) -> tuple[LiveApp, BackchannelCalls]:
        calls = BackchannelCalls()
        live = serve(recording_backchannel(app, "/kc/backchannel-logout", calls))
        return live, calls

    return start


EXAMPLE_APP = Path(__file__).resolve().parents[3] / "examples" / "flask" / "app.py"


@pytest.fixture(scope="session")
def example_create_app() -> Callable[..., Flask]:
    """``create_app`` of the example in ``examples/flask`` (loaded from its file)."""
    spec = importlib.util.spec_from_file_location("kc_flask_example_app", EXAMPLE_APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    create_app: Callable[..., Flask] = module.create_app

    def create(config: dict[str, Any] | None = None) -> Flask:
        # The example refuses to start without a secret: the tests pass one, as the demo does.
        return create_app({"SECRET_KEY": "example-test-secret-0123456789", **(config or {})})

    return create
