"""The seed's ``AuthenticationMiddleware`` form with Flask's test client.

Logins, bearer tokens and back-channel logouts come from the real Keycloak; what must work
without one (bad callbacks, API clients, configuration errors) runs on an app whose
Keycloak is a closed port.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from kc_flask import AuthenticationMiddleware, current_access_token, current_user

from kc_core import ConfigError
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.conformance import backchannel_logout_to, wait_for
from kc_core.testing.server import KeycloakRealm

if TYPE_CHECKING:
    from conftest import BackchannelCalls, LiveApp, LoggedIn

SeedApp = Callable[..., Flask]
LogIn = Callable[..., "LoggedIn"]


def build_seed_app(
    keycloak_config: Mapping[str, Any], wrap: Callable[[Any], Any] | None = None, **config: Any
) -> Flask:
    """The seed docs' Flask example, configured through app.config."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "secret0123456789"
    app.config.update({**keycloak_config, **config})
    inner = app.wsgi_app if wrap is None else wrap(app.wsgi_app)
    app.wsgi_app = AuthenticationMiddleware(  # type: ignore[method-assign]
        inner,
        app.config,
        app.session_interface,
        callback_url="http://localhost:5000/kc/callback",
        redirect_uri="/howdy",
        logout_uri="/logout",
    )

    @app.route("/howdy")
    def howdy() -> str:
        return f"Howdy {current_user.username}!"

    @app.route("/token")
    def token() -> str:
        return "yes" if current_access_token() else "no"

    @app.route("/logout")
    def logout() -> str:
        return "User logged out!"

    return app


@pytest.fixture
def seed_app(keycloak: KeycloakRealm) -> SeedApp:
    """Build the seed app on the real Keycloak (kc-web of the test realm)."""
    realm = {
        "KEYCLOAK_SERVER_URL": keycloak.base_url,
        "KEYCLOAK_REALM": keycloak.realm,
        "KEYCLOAK_CLIENT_ID": "kc-web",
        "KEYCLOAK_CLIENT_SECRET": keycloak.client("kc-web").secret,
    }
    return lambda wrap=None, **config: build_seed_app(realm, wrap, **config)


@pytest.fixture
def offline_seed_app(offline_config: dict[str, Any]) -> SeedApp:
    """Build the seed app with no Keycloak reachable."""
    return lambda wrap=None, **config: build_seed_app(offline_config, wrap, **config)


def id_token_sid(end_session_url: str) -> str:
    """The Keycloak session id in the ``id_token_hint`` of an end-session URL."""
    hint = dict(parse_qsl(urlsplit(end_session_url).query))["id_token_hint"]
    payload = hint.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])


def test_visitors_go_straight_to_keycloak_and_land_on_redirect_uri(
    seed_app: SeedApp, log_in: LogIn, keycloak: KeycloakRealm
) -> None:
    client = seed_app().test_client()
    first = client.get("/somewhere?next=/elsewhere")
    assert first.status_code == 302
    assert first.location.startswith(f"{keycloak.auth_url}?")
    landed = log_in(client, "/somewhere?next=/elsewhere", land=False).page
    assert (landed.status_code, landed.location) == (302, "/howdy")
    page = client.get("/howdy")
    assert page.get_data(as_text=True) == "Howdy alice!"
    assert client.get("/token").get_data(as_text=True) == "yes"


def test_callback_uses_the_request_host_and_the_configured_path(
    seed_app: SeedApp, keycloak: KeycloakRealm
) -> None:
    response = seed_app().test_client().get("/howdy")
    assert response.location.startswith(f"{keycloak.auth_url}?")
    params = dict(parse_qsl(urlsplit(response.location).query))
    assert params["redirect_uri"] == "http://localhost/kc/callback"


def test_logout_uri_ends_the_session_then_shows_the_app_page(
    seed_app: SeedApp, log_in: LogIn, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    client = seed_app().test_client()
    before = {s.get("id") for s in keycloak_admin.user_sessions(keycloak.realm, "alice")}
    log_in(client, "/howdy")
    ours = {s.get("id") for s in keycloak_admin.user_sessions(keycloak.realm, "alice")} - before
    assert ours
    out = client.get("/logout")
    # The earlier library's logout: a server-side call to Keycloak, then the app's page.
    assert (out.status_code, out.location) == (302, "/logout")
    sessions = keycloak_admin.user_sessions(keycloak.realm, "alice")
    assert not ours & {s.get("id") for s in sessions}
    assert client.get("/logout").get_data(as_text=True) == "User logged out!"
    assert client.get("/howdy").status_code == 302


def test_logout_uri_without_a_session_reaches_the_app(offline_seed_app: SeedApp) -> None:
    response = offline_seed_app().test_client().get("/logout")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "User logged out!")


def test_api_clients_get_401_not_a_redirect(offline_seed_app: SeedApp) -> None:
    client = offline_seed_app().test_client()
    response = client.get("/howdy", headers={"Accept": "application/json"})
    assert response.status_code == 401


def test_bearer_tokens_are_accepted(seed_app: SeedApp, access_token: Callable[..., str]) -> None:
    token = access_token("bob")
    response = seed_app().test_client().get("/howdy", headers={"Authorization": f"Bearer {token}"})
    assert response.get_data(as_text=True) == "Howdy bob!"


def test_bad_callbacks_are_400(offline_seed_app: SeedApp) -> None:
    client = offline_seed_app().test_client()
    assert client.get("/kc/callback").status_code == 400
    assert client.get("/kc/callback?code=x&state=forged").status_code == 400


def test_bad_callbacks_are_400_with_a_login_pending(seed_app: SeedApp) -> None:
    client = seed_app().test_client()
    assert client.get("/howdy").status_code == 302  # a real pending login, another state
    assert client.get("/kc/callback").status_code == 400
    assert client.get("/kc/callback?code=x&state=forged").status_code == 400


def session_sid(app: Flask, client: FlaskClient) -> str:
    """Keycloak's session id of the client's login, from the middleware's token store."""
    middleware = app.wsgi_app
    assert isinstance(middleware, AuthenticationMiddleware)
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    cookie = client.get_cookie("session")
    assert cookie is not None
    key = serializer.loads(cookie.value)["kc"]["key"]
    with app.test_request_context():
        record = middleware.engine.store_for(request._get_current_object()).get(key)  # type: ignore[attr-defined]
    assert record is not None
    assert record.sid is not None
    return record.sid


def test_backchannel_logout_reaches_the_engine_without_a_login(
    seed_app: SeedApp,
    log_in: LogIn,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    serve_for_backchannel: Callable[[Flask], tuple[LiveApp, BackchannelCalls]],
) -> None:
    app = seed_app()
    live, calls = serve_for_backchannel(app)
    browser = app.test_client()
    with backchannel_logout_to(keycloak_admin, keycloak.realm, f"{live.url}/kc/backchannel-logout"):
        log_in(browser, "/howdy")
        assert browser.get("/howdy").status_code == 200
        keycloak_admin.delete_session(keycloak.realm, session_sid(app, browser))
        wait_for(lambda: bool(calls.statuses), what="Keycloak's back-channel logout call")
    assert calls.statuses == [200]  # Keycloak's call went through without a login
    assert browser.get("/howdy").status_code == 302


def test_works_when_the_wrapped_app_is_not_flask_s_own_wsgi_app(
    seed_app: SeedApp, log_in: LogIn
) -> None:
    def passthrough(inner: Any) -> Any:
        return lambda environ, start_response: inner(environ, start_response)

    client = seed_app(wrap=passthrough).test_client()
    log_in(client, "/howdy")
    assert client.get("/howdy").get_data(as_text=True) == "Howdy alice!"


def test_keycloak_unreachable_is_503(offline_seed_app: SeedApp) -> None:
    assert offline_seed_app().test_client().get("/howdy").status_code == 503


@pytest.mark.parametrize("callback_url", ["http://localhost/kc/cb", "/callback"])
def test_callback_url_must_end_in_callback(callback_url: str) -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", KEYCLOAK_SERVER_URL="http://sso", KEYCLOAK_REALM="r",
                      KEYCLOAK_CLIENT_ID="c")  # fmt: skip
    with pytest.raises(ConfigError, match="callback"):
        AuthenticationMiddleware(app.wsgi_app, app.config, app.session_interface, callback_url)


def test_a_secret_key_is_required() -> None:
    app = Flask(__name__)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        AuthenticationMiddleware(app.wsgi_app, app.config, app.session_interface)
