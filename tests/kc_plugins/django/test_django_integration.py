"""kc-django against the real Keycloak: logins, sessions, APIs, refresh, logout, bad input.

In-process through Django's test ``Client`` unless a test needs real HTTP (Django's CSRF
cookies with a real browser session); the login form is always Keycloak's own.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.cache import SessionStore
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from kc_django import engine_of
from kc_django.middleware import KeycloakMiddleware
from kc_django_test_project import api_data

from kc_core import Client as KeycloakClient
from kc_core import Config
from kc_core.engine import Engine
from kc_core.plugins import Plugins
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.conformance import wait_for
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

TIMEOUT = 15.0
JSON = {"HTTP_ACCEPT": "application/json"}


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


# -- browser login ----------------------------------------------------------------------------


def test_login_lands_on_the_page_first_asked_for(
    project: Callable[..., None], client: Client, log_in: Callable[..., Any]
) -> None:
    project()
    done = log_in(client, "/private?tab=2", "alice")
    assert done.callback["Location"] == "/private?tab=2"
    page = client.get("/private?tab=2")
    assert page.status_code == 200
    assert page.content == b"private page of alice"


def test_login_gives_the_session_a_new_key_and_drops_the_old_one(
    project: Callable[..., None], client: Client, sign_in: Callable[..., Any]
) -> None:
    project()
    start = client.get("/kc/login", {"next": "/private"})
    before = client.cookies["sessionid"].value
    assert SessionStore().exists(before), "the pending login lives in the session"
    result = sign_in(start["Location"], "bob")
    back = client.get("/kc/callback", dict(result.params))
    assert back.status_code == 302
    after = client.cookies["sessionid"].value
    assert after != before
    assert not SessionStore().exists(before), "the pre-login session id still works (fixation)"
    assert client.get("/private").content == b"private page of bob"


def test_public_pages_know_the_user_without_requiring_one(
    project: Callable[..., None], client: Client, log_in: Callable[..., Any]
) -> None:
    project()
    assert client.get("/whoami").json() == {"authenticated": False, "username": ""}
    log_in(client, "/private", "carol")
    assert client.get("/whoami").json() == {"authenticated": True, "username": "carol"}


def test_request_user_is_looked_up_only_when_used(
    project: Callable[..., None],
    client: Client,
    access_token: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project()
    engine = engine_of()
    calls: list[Any] = []
    original = engine.authenticate
    monkeypatch.setattr(engine, "authenticate", lambda r: calls.append(r) or original(r))
    token = access_token("bob")
    assert client.get("/public", **bearer(token)).status_code == 200
    assert calls == []
    assert client.get("/whoami", **bearer(token)).json()["username"] == "bob"
    assert len(calls) == 1


def test_browsers_without_the_role_get_403_and_class_views_match_decorators(
    project: Callable[..., None], client: Client, log_in: Callable[..., Any]
) -> None:
    project()
    assert client.get("/class/private")["Location"] == "/kc/login?next=%2Fclass%2Fprivate"
    log_in(client, "/class/private", "bob")
    assert client.get("/class/private").content == b"class view of bob"
    assert client.get("/admin").status_code == 403
    assert client.get("/class/admin").status_code == 403


# -- JSON APIs ----------------------------------------------------------------------------------


def test_api_answers_401_without_token_403_without_role_200_with_it(
    project: Callable[..., None], client: Client, access_token: Callable[[str], str]
) -> None:
    project()
    missing = client.get("/api/data")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    assert missing.json()["error"] == "unauthorized"
    denied = client.get("/api/data", **bearer(access_token("carol")))
    assert denied.status_code == 403
    assert denied.json()["error"] == "forbidden"
    assert 'error="insufficient_scope"' in denied["WWW-Authenticate"]
    allowed = client.get("/api/data", **bearer(access_token("bob")))
    assert allowed.status_code == 200
    assert allowed.json() == {"data": [1, 2, 3], "reader": "bob"}


def test_class_api_view_and_async_view_use_the_same_checks(
    project: Callable[..., None], client: Client, access_token: Callable[[str], str]
) -> None:
    project()
    assert client.get("/class/api", **bearer(access_token("bob"))).status_code == 403
    assert client.get("/class/api", **bearer(access_token("alice"))).json() == {"writer": "alice"}
    assert client.get("/async/private", **JSON).status_code == 401
    page = client.get("/async/private", **bearer(access_token("alice")))
    assert page.content == b"async page of alice"


def test_api_refuses_the_login_session(
    project: Callable[..., None], client: Client, log_in: Callable[..., Any]
) -> None:
    project()
    log_in(client, "/private", "alice")
    assert client.get("/private").status_code == 200
    refused = client.get("/api/me")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="kc-test"'


def test_a_view_behind_the_middleware_is_checked_without_validating_again(
    project: Callable[..., None],
    access_token: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project()
    engine = engine_of()
    seen: list[str] = []
    for name in ("protect", "authorize"):
        original = getattr(engine, name)
        monkeypatch.setattr(
            engine, name, lambda *a, _n=name, _o=original: seen.append(_n) or _o(*a)
        )

    def view_after_user(request: HttpRequest) -> HttpResponse:
        assert request.user.is_authenticated  # the middleware's lookup runs here
        response: HttpResponse = api_data(request)
        return response

    request = RequestFactory().get("/api/data", **bearer(access_token("bob")))
    response = KeycloakMiddleware(view_after_user)(request)
    assert response.status_code == 200
    assert seen == ["authorize"]


# -- refresh and logout ---------------------------------------------------------------------------


def test_an_expiring_access_token_is_refreshed_silently(
    project: Callable[..., None], client: Client, log_in: Callable[..., Any]
) -> None:
    # Tokens live 300 s: with a 299.5 s margin they need a refresh half a second after issue.
    project(keycloak_extra={"REFRESH_MARGIN": 299.5})
    log_in(client, "/private", "alice")
    engine = engine_of()
    key = client.session[engine.settings.session_key]["key"]
    first = engine.store_for(None).get(key)
    assert first is not None
    issued = time.time()
    wait_for(lambda: time.time() > issued + 0.6, what="the token to enter the margin")
    assert client.get("/private").content == b"private page of alice"
    again = engine.store_for(None).get(key)
    assert again is not None
    assert again.tokens.access_token != first.tokens.access_token


def test_logout_keeps_djangos_csrf_protection_and_ends_the_keycloak_session(
    project: Callable[..., None], live_url: str, keycloak: KeycloakRealm
) -> None:
    project()
    browser = BrowserSession()
    login_with_form(f"{live_url}/private", "alice", "alice-password", session=browser)
    assert browser.get(f"{live_url}/private", timeout=TIMEOUT).text == "private page of alice"
    forged = browser.post(f"{live_url}/kc/logout", allow_redirects=False, timeout=TIMEOUT)
    assert forged.status_code == 403, "a POST without Django's CSRF token must be refused"
    assert browser.get(f"{live_url}/private", allow_redirects=False).status_code == 200
    form = browser.get(f"{live_url}/logout-form", timeout=TIMEOUT).json()
    out = browser.post(f"{live_url}/kc/logout", data=form, allow_redirects=False, timeout=TIMEOUT)
    assert out.status_code == 302
    assert out.headers["Location"].startswith(f"{keycloak.issuer}/protocol/openid-connect/logout")
    assert browser.get(out.headers["Location"], timeout=TIMEOUT).url.rstrip("/") == live_url
    assert browser.get(f"{live_url}/private", allow_redirects=False).status_code == 302
    browser.close()


def test_logout_without_a_session_redirects_home(
    project: Callable[..., None], client: Client
) -> None:
    project()
    out = client.post("/kc/logout")
    assert out.status_code == 302
    assert out["Location"] == "/"
    assert client.get("/kc/logout").status_code == 405


def test_backchannel_logout_refuses_bad_requests_with_400_or_405(
    project: Callable[..., None], client: Client
) -> None:
    project()
    assert client.get("/kc/backchannel-logout").status_code == 405
    assert client.post("/kc/backchannel-logout", {}).status_code == 400
    forged = client.post("/kc/backchannel-logout", {"logout_token": "e30.e30.e30"})
    assert forged.status_code == 400
    assert forged.json()["error"] == "invalid_request"


# -- bad input never gets a 500 -------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


UNSIGNED_HEADER = _b64(b'{"alg":"none"}')
#: A well-formed RS256 token signed by a key the realm does not have (its keys are needed).
UNKNOWN_KEY_TOKEN = ".".join(_b64(p) for p in (b'{"alg":"RS256","kid":"k"}', b"{}", b"sig"))


def test_forged_unsigned_and_malformed_tokens_get_401(
    project: Callable[..., None], client: Client, access_token: Callable[[str], str]
) -> None:
    project()
    header, payload, signature = access_token("carol").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["resource_access"] = {"kc-api": {"roles": ["reader"]}}
    forged = _b64(json.dumps(claims).encode())
    for token in (
        f"{header}.{forged}.{signature}",
        f"{UNSIGNED_HEADER}.{forged}.",
        "garbage",
        "a.b.c",
    ):
        response = client.get("/api/data", **bearer(token))
        assert response.status_code == 401, token
        assert response.json()["error"] == "invalid_token"
    assert client.get("/api/data", HTTP_AUTHORIZATION="Basic eDp5").status_code == 401


def test_an_expired_token_gets_401(
    use_settings: Callable[..., None],
    keycloak: KeycloakRealm,
    client: Client,
    access_token: Callable[[str], str],
) -> None:
    config = Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id="kc-web",
        client_secret=keycloak.client("kc-web").secret,
    )
    engine = Engine(KeycloakClient(config, clock=lambda: time.time() + 3600.0), plugins=Plugins())
    use_settings(KEYCLOAK_ENGINE=engine)
    expired = client.get("/api/me", **bearer(access_token("alice")))
    assert expired.status_code == 401
    assert "expired" in expired.json()["error_description"]


def test_callback_without_or_with_a_wrong_state_is_a_400(
    project: Callable[..., None], client: Client
) -> None:
    project()
    assert client.get("/kc/callback", {"code": "x"}).status_code == 400
    client.get("/kc/login", {"next": "/private"})
    assert client.get("/kc/callback", {"code": "x", "state": "forged"}).status_code == 400


@pytest.mark.usefixtures("offline_project")
def test_keycloak_unreachable_is_a_503_never_a_500(client: Client) -> None:
    login = client.get("/kc/login")
    assert login.status_code == 503
    assert login["Retry-After"] == "5"
    api = client.get("/api/data", **bearer("a.b.c"))
    assert api.status_code in (401, 503)
    token = UNKNOWN_KEY_TOKEN
    unknown_key = client.get("/api/data", **bearer(token))
    assert unknown_key.status_code == 503
    assert unknown_key.json()["error"] == "temporarily_unavailable"
    assert client.get("/whoami", **bearer(token)).json()["authenticated"] is False
    assert client.get("/public").status_code == 200
    assert client.get("/private")["Location"] == "/kc/login?next=%2Fprivate"


# -- local users and back-channel logout -----------------------------------------------------


@pytest.mark.usefixtures("database")
def test_local_users_are_created_and_updated_from_keycloak(
    project: Callable[..., None],
    client: Client,
    log_in: Callable[..., Any],
    access_token: Callable[[str], str],
) -> None:
    project(AUTHENTICATION_BACKENDS=["kc_django.backends.KeycloakBackend"])
    users = get_user_model()._default_manager
    users.filter(username__in=["alice", "bob"]).delete()
    users.create(username="alice", email="old@example.test")
    log_in(client, "/private", "alice")
    alice = users.get(username="alice")
    assert (alice.email, alice.first_name, alice.last_name) == (
        "alice@example.test", "Alice", "Anderson",
    )  # fmt: skip
    assert not alice.has_usable_password() or alice.password == ""
    assert client.get("/private").content == b"private page of alice"
    assert client.get("/api/data", **bearer(access_token("bob"))).json()["reader"] == "bob"
    bob = users.get(username="bob")
    assert bob.email == "bob@example.test"
    assert not bob.has_usable_password()


def test_backchannel_logout_over_http_ends_the_django_session(
    project: Callable[..., None],
    live_url: str,
    keycloak: KeycloakRealm,
    keycloak_admin: Any,
) -> None:
    from kc_core.testing.conformance import backchannel_logout_to

    project(MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                        "kc_django.middleware.KeycloakMiddleware"])  # fmt: skip
    browser = BrowserSession()
    with backchannel_logout_to(keycloak_admin, keycloak.realm, f"{live_url}/kc/backchannel-logout"):
        login_with_form(f"{live_url}/private", "carol", "carol-password", session=browser)
        assert browser.get(f"{live_url}/whoami", timeout=TIMEOUT).json()["username"] == "carol"
        engine = engine_of()
        session = SessionStore(session_key=browser.cookies["sessionid"])
        record = engine.store_for(None).get(session[engine.settings.session_key]["key"])
        assert record is not None
        assert record.sid is not None
        # Only this login's Keycloak session: other test runs may share the server.
        keycloak_admin.delete_session(keycloak.realm, record.sid)
        wait_for(
            lambda: not browser.get(f"{live_url}/whoami", timeout=TIMEOUT).json()["authenticated"],
            what="the back-channel logout to end the Django session",
        )
    assert browser.get(f"{live_url}/private", allow_redirects=False).status_code == 302
    browser.close()
