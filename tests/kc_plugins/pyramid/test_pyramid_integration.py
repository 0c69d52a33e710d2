"""kc-pyramid against the real Keycloak: logins, APIs, permissions, refresh, logouts, outages.

The app of ``conftest.build_app`` is served over real HTTP on a free port; users log in on
Keycloak's real login page; bearer tokens come from Keycloak's token endpoint.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from conftest import CLIENT_ID, SECRET, build_app, realm_settings
from pyramid.request import Request

from kc_core import Client, Config
from kc_core.engine import Engine
from kc_core.plugins import Plugins
from kc_core.stores import SessionRecord
from kc_core.stores.memory import MemoryTokenStore
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import BrowserSession, login_with_form
from kc_core.testing.conformance import backchannel_logout_to, wait_for
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

TIMEOUT = 15.0
JSON = {"Accept": "application/json"}


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def url(keycloak: KeycloakRealm, serve: Callable[[Any], str], store: MemoryTokenStore) -> str:
    """The test app on the real Keycloak, with a token store the test can look into."""
    return serve(build_app(realm_settings(keycloak, **{"keycloak.store": store})))


@pytest.fixture
def browser() -> Iterator[BrowserSession]:
    session = BrowserSession()
    yield session
    session.close()


@pytest.fixture(scope="module")
def kc_web(keycloak: KeycloakRealm) -> Iterator[Client]:
    config = Config(
        server_url=keycloak.base_url, realm=keycloak.realm, client_id=CLIENT_ID,
        client_secret=SECRET,
    )  # fmt: skip
    with Client(config) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, allow_redirects=False, timeout=TIMEOUT)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


# -- browsers ---------------------------------------------------------------------------------


def test_browser_login_lands_on_the_page_first_asked_for(
    url: str, browser: BrowserSession, store: MemoryTokenStore
) -> None:
    first = browser.get(f"{url}/perm/admin?tab=2", allow_redirects=False, timeout=TIMEOUT)
    assert first.status_code == 302
    assert urlsplit(first.headers["Location"]).path == "/kc/login"
    result = login_with_form(f"{url}/perm/admin?tab=2", "alice", "alice-password", session=browser)
    assert result.url == f"{url}/perm/admin?tab=2"
    assert result.response.text == "perm-admin page of alice"
    home = browser.get(f"{url}/", timeout=TIMEOUT).json()
    assert home["user"] == "alice"
    assert home["userid"] == claims_of(browser_token(url, browser, store))["sub"]


def browser_token(url: str, browser: BrowserSession, store: MemoryTokenStore) -> str:
    """The access token behind the browser's session (kept server-side, never in cookies)."""
    key = browser.get(f"{url}/debug/session-key", timeout=TIMEOUT).json()["key"]
    record = store.get(key)
    assert record is not None
    return record.tokens.access_token


def test_views_answer_by_role_for_browsers(url: str, browser: BrowserSession) -> None:
    login_with_form(f"{url}/private", "bob", "bob-password", session=browser)
    answers = {
        path: browser.get(f"{url}{path}", allow_redirects=False, timeout=TIMEOUT)
        for path in ("/private", "/perm/private", "/admin", "/perm/admin", "/class")
    }
    assert {p: r.status_code for p, r in answers.items()} == {
        "/private": 200, "/perm/private": 200, "/admin": 403, "/perm/admin": 403, "/class": 200,
    }  # fmt: skip
    assert answers["/class"].text == "class view of bob"
    assert answers["/perm/admin"].headers["Content-Type"].startswith("text/html")


def test_acl_contexts_use_keycloak_roles_as_principals(url: str, kc_web: Client) -> None:
    alice = kc_web.password_grant("alice", "alice-password").access_token
    bob = kc_web.password_grant("bob", "bob-password").access_token
    assert get(f"{url}/doc/edit", **bearer(alice)).status_code == 200
    refused = get(f"{url}/doc/edit", **bearer(bob))
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert get(f"{url}/doc/read", **bearer(bob)).status_code == 200
    assert get(f"{url}/doc/read", **JSON).status_code == 401


# -- APIs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/data", "/api/perm"])
def test_api_answers_401_without_token_403_without_role_200_with_it(
    url: str, kc_web: Client, path: str
) -> None:
    missing = get(f"{url}{path}")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="kc-test"'
    assert missing.json()["error"] == "unauthorized"
    carol = kc_web.password_grant("carol", "carol-password").access_token
    denied = get(f"{url}{path}", **bearer(carol))
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    bob = kc_web.password_grant("bob", "bob-password").access_token
    allowed = get(f"{url}{path}", **bearer(bob))
    assert allowed.status_code == 200
    assert allowed.json()["reader"] == "bob"
    assert allowed.json()["userid"] == claims_of(bob)["sub"]


def test_bearer_only_views_refuse_the_session_cookie(url: str, browser: BrowserSession) -> None:
    login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
    for path in ("/api/data", "/api/perm"):
        answer = browser.get(f"{url}{path}", allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 401, path


def test_forged_unsigned_and_malformed_tokens_get_401_never_500(url: str, kc_web: Client) -> None:
    real = kc_web.password_grant("bob", "bob-password").access_token
    header, _, signature = real.split(".")
    claims = claims_of(real) | {"preferred_username": "mallory"}
    claims["realm_access"] = {"roles": ["admin"]}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    for token in (f"{header}.{forged}.{signature}", f"{none_header}.{forged}.", "garbage"):
        for path in ("/api/data", "/perm/admin", "/private"):
            answer = get(f"{url}{path}", **bearer(token))
            assert answer.status_code == 401, (path, token)
            assert answer.json()["error"] == "invalid_token"
    assert get(f"{url}/", **bearer("garbage")).json()["user"] is None
    assert get(f"{url}/api/data", Authorization="Basic eDp5").status_code == 401


def test_an_expired_token_gets_401(keycloak: KeycloakRealm, kc_web: Client, serve: Any) -> None:
    app_time = [time.time()]
    config = Config(
        server_url=keycloak.base_url, realm=keycloak.realm, client_id=CLIENT_ID,
        client_secret=SECRET,
    )  # fmt: skip
    engine = Engine(Client(config, clock=lambda: app_time[0]), plugins=Plugins())
    url = serve(build_app({"keycloak.engine": engine}))
    token = kc_web.password_grant("bob", "bob-password").access_token
    assert get(f"{url}/api/data", **bearer(token)).status_code == 200
    app_time[0] = claims_of(token)["exp"] + config.leeway + 1
    expired = get(f"{url}/api/data", **bearer(token))
    assert expired.status_code == 401
    assert expired.json()["error_description"] == "the token has expired"


# -- refresh and logout -------------------------------------------------------------------------


def test_an_expiring_access_token_is_refreshed_silently(
    url: str, browser: BrowserSession, store: MemoryTokenStore
) -> None:
    login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
    key = browser.get(f"{url}/debug/session-key", timeout=TIMEOUT).json()["key"]
    record = store.get(key)
    assert record is not None
    # Keycloak's tokens live 5 minutes: make this one expire in 5 s, inside the margin.
    expiring = dataclasses.replace(record.tokens, expires_at=time.time() + 5)
    store.set(key, SessionRecord(expiring, sub=record.sub, sid=record.sid), None)
    page = browser.get(f"{url}/perm/private", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    refreshed = store.get(key)
    assert refreshed is not None
    assert refreshed.tokens.access_token != record.tokens.access_token
    assert not refreshed.tokens.expires_within(60)


def test_logout_ends_the_keycloak_session(
    url: str,
    browser: BrowserSession,
    store: MemoryTokenStore,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    login_with_form(f"{url}/private", "alice", "alice-password", session=browser)
    sid = claims_of(browser_token(url, browser, store))["sid"]
    assert has_session(keycloak_admin, keycloak.realm, "alice", sid)
    out = browser.post(f"{url}/kc/logout", allow_redirects=False, timeout=TIMEOUT)
    assert out.status_code == 302
    end_session = out.headers["Location"]
    assert end_session.startswith(f"{keycloak.issuer}/protocol/openid-connect/logout")
    assert "id_token_hint" in parse_qs(urlsplit(end_session).query)
    assert browser.get(end_session, timeout=TIMEOUT).url == f"{url}/"
    assert not has_session(keycloak_admin, keycloak.realm, "alice", sid)
    assert browser.get(f"{url}/private", allow_redirects=False).status_code == 302


def test_forget_ends_the_app_session_only(
    url: str,
    browser: BrowserSession,
    store: MemoryTokenStore,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    login_with_form(f"{url}/private", "bob", "bob-password", session=browser)
    sid = claims_of(browser_token(url, browser, store))["sid"]
    assert browser.post(f"{url}/forget", timeout=TIMEOUT).text == "forgotten"
    assert browser.get(f"{url}/private", allow_redirects=False).status_code == 302
    assert has_session(keycloak_admin, keycloak.realm, "bob", sid)
    keycloak_admin.delete_session(keycloak.realm, sid)


def test_backchannel_logout_from_keycloak_ends_the_app_session(
    url: str,
    browser: BrowserSession,
    store: MemoryTokenStore,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    with backchannel_logout_to(keycloak_admin, keycloak.realm, f"{url}/kc/backchannel-logout"):
        login_with_form(f"{url}/private", "carol", "carol-password", session=browser)
        sid = claims_of(browser_token(url, browser, store))["sid"]
        assert browser.get(f"{url}/perm/private", allow_redirects=False).status_code == 200
        keycloak_admin.delete_session(keycloak.realm, sid)
        wait_for(
            lambda: browser.get(f"{url}/perm/private", allow_redirects=False).status_code == 302,
            what="Keycloak's back-channel logout to end the app session",
        )


def has_session(admin: KeycloakAdmin, realm: str, username: str, sid: str) -> bool:
    return any(s.get("id") == sid for s in admin.user_sessions(realm, username))


# -- bad input and outages ------------------------------------------------------------------------


def test_bad_callbacks_and_logouts_are_answered_without_a_500(
    url: str, browser: BrowserSession
) -> None:
    assert browser.get(f"{url}/kc/callback", allow_redirects=False).status_code == 400
    wrong = browser.get(f"{url}/kc/callback?code=x&state=y", allow_redirects=False)
    assert wrong.status_code == 400
    assert browser.post(f"{url}/kc/logout", allow_redirects=False).status_code == 302
    assert browser.get(f"{url}/kc/logout", allow_redirects=False).status_code == 405
    assert browser.post(f"{url}/kc/backchannel-logout", data={}).status_code == 400
    forged = browser.post(f"{url}/kc/backchannel-logout", data={"logout_token": "e30.e30.e30"})
    assert forged.status_code == 400
    assert browser.post(f"{url}/forget", timeout=TIMEOUT).status_code == 200


def test_app_raised_forbidden_gets_the_engine_answer(url: str, kc_web: Client) -> None:
    assert urlsplit(get(f"{url}/refused").headers["Location"]).path == "/kc/login"
    assert get(f"{url}/refused", **JSON).status_code == 401
    bob = kc_web.password_grant("bob", "bob-password").access_token
    refused = get(f"{url}/refused", **bearer(bob))
    assert refused.status_code == 403
    assert refused.json()["error_description"] == "the app says no"


def test_keycloak_stopped_answers_503(
    offline_settings: dict[str, Any], serve: Callable[[Any], str], kc_web: Client
) -> None:
    url = serve(build_app(offline_settings))
    token = kc_web.password_grant("bob", "bob-password").access_token
    answers = [
        requests.get(f"{url}/kc/login", allow_redirects=False, timeout=TIMEOUT),
        get(f"{url}/api/data", **bearer(token)),
        get(f"{url}/api/perm", **bearer(token)),
        get(f"{url}/perm/private", **bearer(token)),
    ]
    assert [a.status_code for a in answers] == [503] * 4
    assert {a.json()["error"] for a in answers} == {"temporarily_unavailable"}
    assert answers[1].headers["Retry-After"] == "5"
    assert requests.get(f"{url}/", timeout=TIMEOUT).status_code == 200
    assert get(f"{url}/", **bearer(token)).status_code == 200


def test_the_request_identity_is_asked_of_the_engine_once(
    keycloak: KeycloakRealm, kc_web: Client
) -> None:
    app = build_app(realm_settings(keycloak))
    engine = app.registry["kc.engine"]
    calls: list[Any] = []
    authenticate, protect = engine.authenticate, engine.protect
    engine.authenticate = lambda request: calls.append(request) or authenticate(request)
    engine.protect = lambda request, *more: calls.append(request) or protect(request, *more)
    token = kc_web.password_grant("bob", "bob-password").access_token
    request = Request.blank("/api/perm", headers=bearer(token))
    response = request.get_response(app)
    assert response.status_code == 200
    assert len(calls) == 1  # permits, the view's identity and authenticated_userid share it
