"""The seed docs' Starlette example (section 4.4), only the import changed, on the real Keycloak.

The app is built line for line as the seed wrote it, configured from the environment
(``KEYCLOAK_*``) as the seed was. One difference is forced by Starlette itself: 1.0 removed
the ``@app.route`` decorator, so the two pages are added with ``app.add_route`` (what the
decorator did) when it is gone.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from kc_starlette import AuthenticationMiddleware
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import PlainTextResponse
from starlette_support import keycloak_environ

from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.server import KeycloakRealm

Serve = Callable[[Any], str]
TIMEOUT = 15.0


def seed_app() -> Starlette:
    """Section 4.4 of the seed docs; ``from kc_starlette import AuthenticationMiddleware``."""
    app = Starlette()
    app.debug = True
    app.add_middleware(AuthenticationMiddleware, callback_url="http://localhost:8000/kc/callback", redirect_uri="/howdy", logout_uri="/logout")  # fmt: skip  # noqa: E501
    app.add_middleware(SessionMiddleware, secret_key="secret0123456789")

    def howdy(request: Any) -> PlainTextResponse:
        return PlainTextResponse("Howdy!")

    def logout(request: Any) -> PlainTextResponse:
        return PlainTextResponse("User logged out!")

    route = getattr(app, "route", None)  # gone in Starlette 1.0
    if route is not None:
        route("/howdy")(howdy)
        route("/logout")(logout)
    else:
        app.add_route("/howdy", howdy)
        app.add_route("/logout", logout)
    return app


@pytest.fixture
def seed_url(keycloak: KeycloakRealm, serve: Serve, monkeypatch: pytest.MonkeyPatch) -> str:
    """The seed app, configured from the environment as the seed was, over HTTP."""
    for name, value in keycloak_environ(keycloak).items():
        monkeypatch.setenv(name, value)
    return serve(seed_app())


@pytest.fixture
def browser() -> Iterator[BrowserSession]:
    session = BrowserSession()
    yield session
    session.close()


def test_the_seed_snippet_logs_alice_in_and_lands_on_redirect_uri(
    seed_url: str, browser: BrowserSession, keycloak: KeycloakRealm
) -> None:
    first = browser.get(f"{seed_url}/somewhere?next=/elsewhere", allow_redirects=False)
    assert first.status_code == 302
    assert first.headers["Location"].startswith(f"{keycloak.auth_url}?")  # straight to Keycloak
    redirect_uri = dict(parse_qsl(urlsplit(first.headers["Location"]).query))["redirect_uri"]
    assert redirect_uri == f"{seed_url}/kc/callback"  # the request's host, the seed's path
    result = login_with_form(
        f"{seed_url}/somewhere?next=/elsewhere", "alice", "alice-password", session=browser
    )
    assert (result.url, result.response.text) == (f"{seed_url}/howdy", "Howdy!")
    assert browser.get(f"{seed_url}/howdy", allow_redirects=False).status_code == 200


def _sid(end_session_url: str) -> str:
    hint = dict(parse_qsl(urlsplit(end_session_url).query))["id_token_hint"]
    payload = hint.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"])


def test_logout_uri_ends_the_keycloak_session_then_shows_the_app_page(
    seed_url: str, browser: BrowserSession, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    before = {s.get("id") for s in keycloak_admin.user_sessions(keycloak.realm, "alice")}
    login_with_form(f"{seed_url}/howdy", "alice", "alice-password", session=browser)
    ours = {s.get("id") for s in keycloak_admin.user_sessions(keycloak.realm, "alice")} - before
    assert ours
    out = browser.get(f"{seed_url}/logout", allow_redirects=False)
    # The earlier library's logout: a server-side call to Keycloak, then the app's page.
    assert (out.status_code, out.headers["Location"]) == (302, "/logout")
    final = browser.get(f"{seed_url}/logout", timeout=TIMEOUT)
    assert final.text == "User logged out!"
    sessions = keycloak_admin.user_sessions(keycloak.realm, "alice")
    assert not ours & {s.get("id") for s in sessions}
    again = browser.get(f"{seed_url}/howdy", allow_redirects=False)
    assert again.headers["Location"].startswith(f"{keycloak.auth_url}?")


def test_api_clients_get_401_and_bearer_tokens_are_accepted(
    seed_url: str, keycloak: KeycloakRealm
) -> None:
    answer = requests.get(
        f"{seed_url}/howdy", headers={"Accept": "application/json"}, timeout=TIMEOUT
    )
    assert answer.status_code == 401
    token = requests.post(
        keycloak.token_url,
        data={"grant_type": "password", "username": "bob", "password": "bob-password",
              "client_id": "kc-web", "client_secret": keycloak.client("kc-web").secret,
              "scope": "openid"},
        timeout=TIMEOUT,
    ).json()["access_token"]  # fmt: skip
    with_token = requests.get(
        f"{seed_url}/howdy", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )
    assert (with_token.status_code, with_token.text) == (200, "Howdy!")


def test_bad_callbacks_are_400_and_logout_without_a_session_reaches_the_app(
    seed_url: str, browser: BrowserSession
) -> None:
    assert browser.get(f"{seed_url}/kc/callback").status_code == 400
    assert browser.get(f"{seed_url}/howdy", allow_redirects=False).status_code == 302
    assert browser.get(f"{seed_url}/kc/callback?code=x&state=forged").status_code == 400
    out = browser.get(f"{seed_url}/logout", allow_redirects=False)
    assert (out.status_code, out.text) == (200, "User logged out!")


def test_keycloak_unreachable_is_503(
    serve: Serve, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv("KEYCLOAK_SERVER_URL", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("KEYCLOAK_REALM", "kc-test")
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "kc-web")
    monkeypatch.setenv("KEYCLOAK_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("KEYCLOAK_RETRIES", "0")
    url = serve(seed_app())
    assert requests.get(f"{url}/howdy", allow_redirects=False, timeout=TIMEOUT).status_code == 503
