"""The example Flask app (``examples/flask``) and the seed middleware against the real Keycloak.

Apps are served over real HTTP on free ports; users log in on Keycloak's real login page
through :func:`kc_core.testing.browser.login_with_form`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests
from flask import Flask, request
from kc_flask import AuthenticationMiddleware, engine_of

from kc_core import Client, Config
from kc_core.stores import SessionRecord, TokenStore
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.conformance import backchannel_logout_to, wait_for
from kc_core.testing.server import KeycloakRealm

if TYPE_CHECKING:
    from conftest import LiveApp

pytestmark = pytest.mark.integration

COOKIE_LIMIT = 300
TIMEOUT = 15.0


@pytest.fixture
def example(
    keycloak: KeycloakRealm,
    example_create_app: Callable[..., Flask],
    serve: Callable[[Any], LiveApp],
) -> LiveApp:
    """The example app, pointed at the test realm, served on a free port."""
    return serve(example_create_app({"KEYCLOAK_SERVER_URL": keycloak.base_url}))


@pytest.fixture
def browser() -> Iterator[BrowserSession]:
    session = BrowserSession()
    yield session
    session.close()


@pytest.fixture
def kc_web(keycloak: KeycloakRealm) -> Iterator[Client]:
    """A kc client of kc-web, to get tokens with the password grant."""
    with Client(
        Config(
            server_url=keycloak.base_url,
            realm=keycloak.realm,
            client_id="kc-web",
            client_secret="kc-web-secret",
        )
    ) as client:
        yield client


def session_record(app: Flask, browser: requests.Session) -> tuple[TokenStore, str, SessionRecord]:
    """The token store of ``app``, the browser's session key in it, and the record."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    key = serializer.loads(browser.cookies["session"])["kc"]["key"]
    with app.test_request_context():
        store = engine_of(app).store_for(request._get_current_object())
    record = store.get(key)
    assert record is not None
    return store, key, record


def has_keycloak_session(admin: KeycloakAdmin, realm: str, username: str, sid: str) -> bool:
    return any(s.get("id") == sid for s in admin.user_sessions(realm, username))


# -- login ----------------------------------------------------------------------------------


def test_browser_login_lands_on_the_page_first_asked_for(
    example: LiveApp, browser: BrowserSession
) -> None:
    first = browser.get(f"{example.url}/profile", allow_redirects=False, timeout=TIMEOUT)
    assert first.status_code == 302
    assert first.headers["Location"] == "/kc/login?next=%2Fprofile"
    result = login_with_form(f"{example.url}/profile", "alice", "alice-password", session=browser)
    assert result.url == f"{example.url}/profile"
    assert result.response.status_code == 200
    assert '<h1 id="profile-name">Alice Anderson</h1>' in result.response.text
    cookie = browser.cookies["session"]
    assert len(cookie) < COOKIE_LIMIT, f"session cookie is {len(cookie)} bytes"
    home = browser.get(f"{example.url}/", timeout=TIMEOUT)
    assert "Welcome back, Alice Anderson" in home.text


def test_admin_page_needs_the_realm_role(example: LiveApp, browser: BrowserSession) -> None:
    login_with_form(f"{example.url}/profile", "bob", "bob-password", session=browser)
    assert browser.get(f"{example.url}/admin", allow_redirects=False).status_code == 403
    alice = BrowserSession()
    page = login_with_form(f"{example.url}/admin", "alice", "alice-password", session=alice)
    assert page.response.status_code == 200
    assert "Administration" in page.response.text


# -- the JSON API ---------------------------------------------------------------------------


def test_api_answers_401_without_token_403_without_role_200_with_it(
    example: LiveApp, kc_web: Client
) -> None:
    url = f"{example.url}/api/reports"
    missing = requests.get(url, timeout=TIMEOUT)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    carol = kc_web.password_grant("carol", "carol-password").access_token
    denied = requests.get(url, headers={"Authorization": f"Bearer {carol}"}, timeout=TIMEOUT)
    assert denied.status_code == 403
    assert denied.json()["error"] == "forbidden"
    bob = kc_web.password_grant("bob", "bob-password").access_token
    allowed = requests.get(url, headers={"Authorization": f"Bearer {bob}"}, timeout=TIMEOUT)
    assert allowed.status_code == 200
    assert allowed.json()["reader"] == "bob"


def test_api_refuses_forged_and_unsigned_tokens_with_401(example: LiveApp, kc_web: Client) -> None:
    real = kc_web.password_grant("bob", "bob-password").access_token
    header, payload, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["resource_access"] = {"kc-api": {"roles": ["reader", "writer"]}}
    claims["preferred_username"] = "mallory"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    unsigned_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    for token in (
        f"{header}.{forged_payload}.{signature}",
        f"{unsigned_header}.{forged_payload}.",
        "garbage",
    ):
        response = requests.get(
            f"{example.url}/api/reports", headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )  # fmt: skip
        assert response.status_code == 401, token
        assert response.json()["error"] == "invalid_token"


# -- refresh --------------------------------------------------------------------------------


def test_an_expiring_access_token_is_refreshed_silently(
    example: LiveApp, browser: BrowserSession
) -> None:
    login_with_form(f"{example.url}/profile", "alice", "alice-password", session=browser)
    store, key, record = session_record(example.app, browser)
    cookie = browser.cookies["session"]
    # Keycloak's tokens live 5 minutes: make this one expire in 5 s, inside the margin.
    expiring = dataclasses.replace(record.tokens, expires_at=time.time() + 5)
    store.set(key, SessionRecord(expiring, sub=record.sub, sid=record.sid), None)
    page = browser.get(f"{example.url}/profile", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    assert "Alice Anderson" in page.text
    _, _, refreshed = session_record(example.app, browser)
    assert refreshed.tokens.access_token != record.tokens.access_token
    assert not refreshed.tokens.expires_within(60)
    assert browser.cookies["session"] == cookie


# -- logout ---------------------------------------------------------------------------------


def test_logout_ends_the_keycloak_session(
    example: LiveApp,
    browser: BrowserSession,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    login_with_form(f"{example.url}/profile", "alice", "alice-password", session=browser)
    sid = session_record(example.app, browser)[2].sid
    assert sid is not None
    assert has_keycloak_session(keycloak_admin, keycloak.realm, "alice", sid)
    out = browser.post(f"{example.url}/kc/logout", allow_redirects=False, timeout=TIMEOUT)
    assert out.status_code == 302
    assert out.headers["Location"].startswith(f"{keycloak.issuer}/protocol/openid-connect/logout")
    home = browser.get(out.headers["Location"], timeout=TIMEOUT)
    assert home.url == f"{example.url}/"
    assert "Welcome, visitor" in home.text
    assert not has_keycloak_session(keycloak_admin, keycloak.realm, "alice", sid)
    assert browser.get(f"{example.url}/profile", allow_redirects=False).status_code == 302


def test_backchannel_logout_from_keycloak_ends_the_app_session(
    example: LiveApp,
    browser: BrowserSession,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    target = f"{example.url}/kc/backchannel-logout"
    with backchannel_logout_to(keycloak_admin, keycloak.realm, target):
        login_with_form(f"{example.url}/profile", "carol", "carol-password", session=browser)
        sid = session_record(example.app, browser)[2].sid
        assert sid is not None
        assert browser.get(f"{example.url}/profile", allow_redirects=False).status_code == 200
        keycloak_admin.delete_session(keycloak.realm, sid)
        wait_for(
            lambda: browser.get(f"{example.url}/profile", allow_redirects=False).status_code == 302,
            what="Keycloak's back-channel logout to end the app session",
        )


# -- bad input never gives a 500 --------------------------------------------------------------


def test_bad_callbacks_and_logouts_are_answered_without_a_500(
    example: LiveApp, browser: BrowserSession
) -> None:
    url = example.url
    assert browser.get(f"{url}/kc/callback", allow_redirects=False).status_code == 400
    assert (
        browser.get(f"{url}/kc/callback?code=x&state=y", allow_redirects=False).status_code == 400
    )
    assert browser.post(f"{url}/kc/logout", allow_redirects=False).status_code == 302
    assert browser.get(f"{url}/kc/logout", allow_redirects=False).status_code == 405
    assert browser.post(f"{url}/kc/backchannel-logout", data={}).status_code == 400


def test_keycloak_stopped_answers_503(
    example_create_app: Callable[..., Flask],
    serve: Callable[[Any], LiveApp],
    closed_port: int,
    kc_web: Client,
) -> None:
    app = serve(
        example_create_app(
            {
                "KEYCLOAK_SERVER_URL": f"http://127.0.0.1:{closed_port}",
                "KEYCLOAK_CONNECT_TIMEOUT": 0.5,
                "KEYCLOAK_RETRIES": 0,
            }
        )
    )
    token = kc_web.password_grant("bob", "bob-password").access_token
    login = requests.get(f"{app.url}/kc/login", allow_redirects=False, timeout=TIMEOUT)
    api = requests.get(
        f"{app.url}/api/reports", headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )
    assert (login.status_code, api.status_code) == (503, 503)
    assert api.json()["error"] == "temporarily_unavailable"
    assert requests.get(f"{app.url}/", timeout=TIMEOUT).status_code == 200


# -- the seed's middleware -------------------------------------------------------------------


def test_seed_middleware_logs_in_lands_on_redirect_uri_and_logs_out(
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    serve: Callable[[Any], LiveApp],
    browser: BrowserSession,
) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="secret0123456789",
        KEYCLOAK_SERVER_URL=keycloak.base_url,
        KEYCLOAK_REALM=keycloak.realm,
        KEYCLOAK_CLIENT_ID="kc-web",
        KEYCLOAK_CLIENT_SECRET="kc-web-secret",
    )
    middleware = AuthenticationMiddleware(
        app.wsgi_app,
        app.config,
        app.session_interface,
        callback_url="http://localhost:5000/kc/callback",
        redirect_uri="/howdy",
        logout_uri="/logout",
    )
    app.wsgi_app = middleware  # type: ignore[method-assign]

    @app.route("/howdy")
    def howdy() -> str:
        return "Howdy!"

    @app.route("/logout")
    def logout() -> str:
        return "User logged out!"

    live = serve(app)
    before = {s.get("id") for s in keycloak_admin.user_sessions(keycloak.realm, "alice")}
    result = login_with_form(f"{live.url}/anything", "alice", "alice-password", session=browser)
    assert result.url == f"{live.url}/howdy"
    assert result.response.text == "Howdy!"
    ours = {s.get("id") for s in keycloak_admin.user_sessions(keycloak.realm, "alice")} - before
    assert len(ours) == 1
    out = browser.get(f"{live.url}/logout", allow_redirects=False, timeout=TIMEOUT)
    # The earlier library's logout: a server-side call to Keycloak, then the app's page.
    assert (out.status_code, out.headers["Location"]) == (302, "/logout")
    final = browser.get(f"{live.url}/logout", timeout=TIMEOUT)
    assert final.text == "User logged out!"
    assert not has_keycloak_session(keycloak_admin, keycloak.realm, "alice", ours.pop())
    assert browser.get(f"{live.url}/howdy", allow_redirects=False).status_code == 302
