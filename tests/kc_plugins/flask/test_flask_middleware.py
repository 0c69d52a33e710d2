"""The seed's ``AuthenticationMiddleware`` form, on a fake Keycloak with Flask's test client."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kc_flask import AuthenticationMiddleware, current_access_token, current_user

from kc_core import ConfigError

if TYPE_CHECKING:
    from conftest import FakeKeycloak

SeedApp = Callable[..., Flask]


@pytest.fixture
def seed_app(fake_keycloak: FakeKeycloak) -> SeedApp:
    """The seed docs' Flask example, configured through app.config."""

    def make(wrap: Callable[[Any], Any] | None = None, **config: Any) -> Flask:
        app = Flask(__name__)
        app.config["SECRET_KEY"] = "secret0123456789"
        app.config.update(
            {
                "KEYCLOAK_SERVER_URL": fake_keycloak.server_url,
                "KEYCLOAK_REALM": "shop",
                "KEYCLOAK_CLIENT_ID": "web",
                "KEYCLOAK_CLIENT_SECRET": "web-secret",
                **config,
            }
        )
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

    return make


def log_in(client: FlaskClient, fake: FakeKeycloak, path: str = "/anything") -> Any:
    response = client.get(path)
    assert response.status_code == 302
    authorize = response.location
    assert authorize.startswith(fake.metadata()["authorization_endpoint"])
    code, state = fake.issue_code(authorize)
    return client.get("/kc/callback", query_string={"code": code, "state": state})


def test_visitors_go_straight_to_keycloak_and_land_on_redirect_uri(
    seed_app: SeedApp, fake_keycloak: FakeKeycloak
) -> None:
    client = seed_app().test_client()
    back = log_in(client, fake_keycloak, "/somewhere?next=/elsewhere")
    assert (back.status_code, back.location) == (302, "/howdy")
    page = client.get("/howdy")
    assert page.get_data(as_text=True) == "Howdy alice!"
    assert client.get("/token").get_data(as_text=True) == "yes"


def test_callback_uses_the_request_host_and_the_configured_path(
    seed_app: SeedApp, fake_keycloak: FakeKeycloak
) -> None:
    response = seed_app().test_client().get("/howdy")
    params = dict(parse_qsl(urlsplit(response.location).query))
    assert params["redirect_uri"] == "http://localhost/kc/callback"


def test_logout_uri_ends_the_session_then_shows_the_app_page(
    seed_app: SeedApp, fake_keycloak: FakeKeycloak
) -> None:
    client = seed_app().test_client()
    log_in(client, fake_keycloak)
    out = client.get("/logout")
    assert out.status_code == 302
    assert out.location.startswith(fake_keycloak.metadata()["end_session_endpoint"])
    params = dict(parse_qsl(urlsplit(out.location).query))
    assert params["post_logout_redirect_uri"] == "http://localhost/logout"
    # Keycloak sends the browser back: the session is gone, the app's page shows.
    assert client.get("/logout").get_data(as_text=True) == "User logged out!"
    assert client.get("/howdy").status_code == 302


def test_logout_uri_without_a_session_reaches_the_app(seed_app: SeedApp) -> None:
    response = seed_app().test_client().get("/logout")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "User logged out!")


def test_api_clients_get_401_not_a_redirect(seed_app: SeedApp) -> None:
    response = seed_app().test_client().get("/howdy", headers={"Accept": "application/json"})
    assert response.status_code == 401


def test_bearer_tokens_are_accepted(seed_app: SeedApp, fake_keycloak: FakeKeycloak) -> None:
    token = fake_keycloak.access_token("bob")
    response = seed_app().test_client().get("/howdy", headers={"Authorization": f"Bearer {token}"})
    assert response.get_data(as_text=True) == "Howdy bob!"


def test_bad_callbacks_are_400(seed_app: SeedApp) -> None:
    client = seed_app().test_client()
    assert client.get("/kc/callback").status_code == 400
    assert client.get("/kc/callback?code=x&state=forged").status_code == 400


def test_backchannel_logout_reaches_the_engine_without_a_login(
    seed_app: SeedApp, fake_keycloak: FakeKeycloak
) -> None:
    app = seed_app()
    browser = app.test_client()
    log_in(browser, fake_keycloak)
    token = fake_keycloak.logout_token("alice")
    response = app.test_client().post("/kc/backchannel-logout", data={"logout_token": token})
    assert response.status_code == 200
    assert browser.get("/howdy").status_code == 302


def test_works_when_the_wrapped_app_is_not_flask_s_own_wsgi_app(
    seed_app: SeedApp, fake_keycloak: FakeKeycloak
) -> None:
    def passthrough(inner: Any) -> Any:
        return lambda environ, start_response: inner(environ, start_response)

    client = seed_app(wrap=passthrough).test_client()
    log_in(client, fake_keycloak)
    assert client.get("/howdy").get_data(as_text=True) == "Howdy alice!"


def test_keycloak_unreachable_is_503(seed_app: SeedApp, closed_port: int) -> None:
    client = seed_app(
        KEYCLOAK_SERVER_URL=f"http://127.0.0.1:{closed_port}",
        KEYCLOAK_CONNECT_TIMEOUT=0.5,
        KEYCLOAK_RETRIES=0,
    ).test_client()
    assert client.get("/howdy").status_code == 503


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
