"""kc-flask with Flask's test client against the real Keycloak.

Logins fill in Keycloak's real login form (the ``log_in`` and ``sign_in`` fixtures), bearer
tokens come from Keycloak's token endpoint, sessions are ended through its admin API and
back-channel logouts are Keycloak's own calls to the app served over HTTP. Tokens are made
here only where Keycloak cannot be made to issue them: a forged signature and ``alg: none``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import kc_flask
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, request
from flask.testing import FlaskClient
from kc_flask import current_user, engine_of, login_required
from werkzeug.test import TestResponse

from kc_core import Client, Config
from kc_core.plugins import Plugins
from kc_core.stores import SessionRecord, TokenStore
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import FormLoginResult
from kc_core.testing.conformance import EngineEvents, backchannel_logout_to, wait_for
from kc_core.testing.server import KeycloakRealm

if TYPE_CHECKING:
    from conftest import BackchannelCalls, LiveApp, LoggedIn

AppFactory = Callable[..., Flask]
LogIn = Callable[..., "LoggedIn"]
SignIn = Callable[..., FormLoginResult]
Grant = Callable[..., str]
COOKIE_LIMIT = 300  # bytes: the session keeps an opaque key, never tokens
#: Keycloak's access tokens live 300 s: a larger margin makes every request refresh them.
ALWAYS_REFRESH = 400


def as_json(response: TestResponse) -> Any:
    return json.loads(response.get_data(as_text=True))


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def stored_session(app: Flask, client: FlaskClient) -> tuple[TokenStore, str, SessionRecord]:
    """The token store of ``app``, the key the client's session cookie holds, and its record."""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    key = serializer.loads(session_cookie(client))["kc"]["key"]
    with app.test_request_context():
        store = engine_of(app).store_for(request._get_current_object())  # type: ignore[attr-defined]
    record = store.get(key)
    assert record is not None
    return store, key, record


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def alice_has_keycloak_session(admin: KeycloakAdmin, keycloak: KeycloakRealm, sid: str) -> bool:
    return any(s.get("id") == sid for s in admin.user_sessions(keycloak.realm, "alice"))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def client_config(keycloak: KeycloakRealm) -> Config:
    return Config(
        server_url=keycloak.base_url,
        realm=keycloak.realm,
        client_id="kc-web",
        client_secret=keycloak.client("kc-web").secret,
    )


# -- login -----------------------------------------------------------------------------------


def test_login_lands_on_the_page_first_asked_for(make_app: AppFactory, log_in: LogIn) -> None:
    client = make_app().test_client()
    first = client.get("/private?tab=2")
    assert first.status_code == 302
    assert first.location == "/kc/login?next=%2Fprivate%3Ftab%3D2"
    page = log_in(client, "/private?tab=2").page
    assert page.status_code == 200
    assert as_json(page) == {"user": "alice", "name": "Alice Anderson"}
    assert page.request.full_path == "/private?tab=2"


def test_session_cookie_stays_small_and_holds_no_token(make_app: AppFactory, log_in: LogIn) -> None:
    app = make_app()
    client = app.test_client()
    log_in(client)
    cookie = session_cookie(client)
    assert len(cookie) < COOKIE_LIMIT, cookie
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    content = serializer.loads(cookie)
    assert set(content) <= {"kc", "kc.logins", "kc.recent_logins"}  # + login times (loops)
    assert set(content["kc"]) == {"key", "tenant"}  # an opaque key into the token store


def test_login_redirect_carries_state_nonce_and_pkce(
    make_app: AppFactory, keycloak: KeycloakRealm
) -> None:
    response = make_app().test_client().get("/kc/login?next=/private")
    assert response.location.startswith(f"{keycloak.auth_url}?")
    params = query_of(response.location)
    assert params["client_id"] == "kc-web"
    assert params["redirect_uri"] == "http://localhost/kc/callback"
    assert params["code_challenge_method"] == "S256"
    assert params["state"]
    assert params["nonce"]
    assert response.headers["Cache-Control"] == "no-store"


def test_login_refuses_to_return_to_another_site(make_app: AppFactory, sign_in: SignIn) -> None:
    client = make_app().test_client()
    response = client.get("/kc/login?next=https://evil.example/")
    answer = sign_in(response.location)
    back = client.get("/kc/callback", query_string=dict(answer.params))
    assert back.status_code == 302
    assert back.location == "/"


@pytest.mark.parametrize("query", [{}, {"code": "x"}, {"code": "x", "state": "forged"}])
def test_callback_without_a_matching_state_is_400(
    make_app: AppFactory, query: dict[str, str]
) -> None:
    client = make_app().test_client()
    assert client.get("/kc/login").status_code == 302  # a real pending login, another state
    response = client.get("/kc/callback", query_string=query)
    assert response.status_code == 400


def test_callback_state_is_single_use(make_app: AppFactory, sign_in: SignIn) -> None:
    client = make_app().test_client()
    answer = sign_in(client.get("/kc/login").location)
    assert client.get("/kc/callback", query_string=dict(answer.params)).status_code == 302
    again = client.get("/kc/callback", query_string=dict(answer.params))
    assert again.status_code == 400


def test_callback_with_a_keycloak_error_is_401(make_app: AppFactory, sign_in: SignIn) -> None:
    client = make_app().test_client()
    # prompt=none for a browser without a Keycloak session: Keycloak answers with an error.
    answer = sign_in(client.get("/kc/login").location + "&prompt=none")
    assert answer.error == "login_required"
    assert answer.code is None
    response = client.get("/kc/callback", query_string=dict(answer.params))
    assert response.status_code == 401


def test_callback_with_a_refused_code_is_401(make_app: AppFactory) -> None:
    client = make_app().test_client()
    state = query_of(client.get("/kc/login").location)["state"]
    response = client.get("/kc/callback", query_string={"state": state, "code": "unknown"})
    assert response.status_code == 401


# -- protection --------------------------------------------------------------------------------


def test_current_user_is_known_on_public_pages_after_login(
    make_app: AppFactory, log_in: LogIn
) -> None:
    client = make_app().test_client()
    log_in(client)
    assert as_json(client.get("/")) == {"user": "alice", "authenticated": True}


def test_roles_required_forbids_a_user_without_the_role(
    make_app: AppFactory, log_in: LogIn
) -> None:
    client = make_app().test_client()
    log_in(client, user="bob")
    assert client.get("/admin").status_code == 403
    admin_client = make_app().test_client()
    log_in(admin_client, user="alice")
    assert as_json(admin_client.get("/admin")) == {"admin": "alice"}


def test_bearer_api_answers_401_403_and_200(make_app: AppFactory, access_token: Grant) -> None:
    client = make_app().test_client()
    missing = client.get("/api/data")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert as_json(missing)["error"] == "unauthorized"
    no_role = access_token("carol")  # no kc-api roles
    denied = client.get("/api/data", headers={"Authorization": f"Bearer {no_role}"})
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    reader = access_token("bob")  # kc-api reader
    allowed = client.get("/api/data", headers={"Authorization": f"Bearer {reader}"})
    assert allowed.status_code == 200
    assert as_json(allowed) == {"data": [1, 2, 3], "reader": "bob"}


@pytest.mark.parametrize(
    "authorization",
    ["Basic YWxpY2U6cHc=", "Bearer ", "Bearer not-a-jwt", "Bearer a.b.c"],
)
def test_bearer_api_refuses_malformed_credentials_with_401(
    make_app: AppFactory, authorization: str
) -> None:
    response = make_app().test_client().get("/api/me", headers={"Authorization": authorization})
    assert response.status_code == 401


def forged_copies(token: str) -> dict[str, str]:
    """``token`` re-signed with another key under Keycloak's ``kid``, and unsigned.

    Keyed by the reason the app must give for refusing each.
    """
    header, payload, _ = token.split(".")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signature = other_key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    unsigned = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return {
        "signature does not verify": f"{header}.{payload}.{_b64url(signature)}",
        "alg 'none' is refused": f"{unsigned}.{payload}.",
    }


def test_bearer_api_refuses_forged_tokens_with_401(
    make_app: AppFactory, access_token: Grant
) -> None:
    client = make_app().test_client()
    real = access_token("alice")
    assert client.get("/api/me", headers={"Authorization": f"Bearer {real}"}).status_code == 200
    for reason, token in forged_copies(real).items():
        response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, reason
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert reason in as_json(response)["error_description"]


def test_bearer_api_refuses_an_expired_token_with_401(
    make_app: AppFactory, keycloak: KeycloakRealm, access_token: Grant
) -> None:
    token = access_token("alice")
    now = time.time()
    app_time = [now]
    app = make_app(config=Client(client_config(keycloak), clock=lambda: app_time[0]))
    client = app.test_client()
    assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # Past exp and the leeway on the app's clock: the very token Keycloak issued is refused.
    app_time[0] = _claims(token)["exp"] + engine_of(app).client.config.leeway + 1
    assert app_time[0] > now
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert as_json(response)["error_description"] == "the token has expired"


def test_bearer_api_refuses_a_token_for_another_audience_with_401(
    make_app: AppFactory, keycloak: KeycloakRealm
) -> None:
    config = client_config(keycloak).replace(
        client_id="kc-service", client_secret=keycloak.client("kc-service").secret
    )
    with Client(config) as service:
        token = service.client_credentials().access_token
    assert "kc-web" not in _claims(token)["aud"]  # Keycloak made it for kc-api
    response = make_app().test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    description = as_json(response)["error_description"]
    assert "aud=['kc-api', 'account'] azp='kc-service'" in description
    assert "KEYCLOAK_AUTHORIZED_PARTIES=kc-service" in description


def test_bearer_api_does_not_accept_the_session_cookie(make_app: AppFactory, log_in: LogIn) -> None:
    client = make_app().test_client()
    log_in(client)
    assert client.get("/api/me").status_code == 401


def test_a_valid_bearer_token_reaches_the_view_with_the_token(
    make_app: AppFactory,
    access_token: Grant,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    token = access_token("carol")
    response = make_app().test_client().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    carol = keycloak_admin.user(keycloak.realm, "carol")["id"]
    assert as_json(response) == {"sub": carol, "token": True}


def test_login_required_works_with_parentheses_and_scopes(
    make_app: AppFactory, access_token: Grant
) -> None:
    app = make_app()

    @app.get("/scoped")
    @login_required(scopes=["phone"])  # an optional client scope of kc-web
    def scoped() -> str:
        return "ok"

    client = app.test_client()
    without = access_token("alice", scopes=("openid",))
    assert client.get("/scoped", headers={"Authorization": f"Bearer {without}"}).status_code == 403
    with_scope = access_token("alice", scopes=("openid", "phone"))
    assert client.get("/scoped", headers={"Authorization": f"Bearer {with_scope}"}).data == b"ok"


# -- refresh ------------------------------------------------------------------------------


@pytest.fixture
def events() -> EngineEvents:
    return EngineEvents()


@pytest.fixture
def refreshing_app(make_app: AppFactory, events: EngineEvents) -> Flask:
    """The test app with a refresh margin longer than a token's life, recording events."""
    plugins = Plugins()
    plugins.register(events, name="kc-test-events")
    return make_app(KEYCLOAK_REFRESH_MARGIN=ALWAYS_REFRESH, plugins=plugins)


def test_an_expiring_access_token_is_refreshed_silently(
    refreshing_app: Flask, events: EngineEvents, log_in: LogIn
) -> None:
    client = refreshing_app.test_client()
    log_in(client, land=False)  # no request has used (and refreshed) the new tokens yet
    cookie = session_cookie(client)
    _, _, before = stored_session(refreshing_app, client)
    refreshes = len(events.refreshes)
    assert client.get("/private").status_code == 200
    assert len(events.refreshes) == refreshes + 1  # one request, one refresh at Keycloak
    _, _, after = stored_session(refreshing_app, client)
    assert after.tokens.access_token != before.tokens.access_token
    assert after.tokens.access_token == events.refreshes[-1].access_token
    assert not after.tokens.expires_within(60)
    assert session_cookie(client) == cookie  # the browser's cookie did not change


def test_a_refused_refresh_ends_the_app_session(
    refreshing_app: Flask,
    events: EngineEvents,
    log_in: LogIn,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    client = refreshing_app.test_client()
    log_in(client, land=False)  # no refresh yet, none lingering to be shared
    store, key, record = stored_session(refreshing_app, client)
    assert record.sid is not None
    keycloak_admin.delete_session(keycloak.realm, record.sid)  # Keycloak ended the session
    refreshes = len(events.refreshes)
    response = client.get("/private")
    assert response.status_code == 302
    assert response.location.startswith("/kc/login")
    assert len(events.refreshes) == refreshes
    assert store.get(key) is None


# -- logout -----------------------------------------------------------------------------------


def test_logout_ends_the_session_here_and_in_keycloak(
    make_app: AppFactory,
    log_in: LogIn,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
) -> None:
    app = make_app()
    client = app.test_client()
    browser = log_in(client).browser
    sid = stored_session(app, client)[2].sid
    assert sid is not None
    assert alice_has_keycloak_session(keycloak_admin, keycloak, sid)
    response = client.post("/kc/logout")
    assert response.status_code == 302
    assert response.location.startswith(f"{keycloak.logout_url}?")
    params = query_of(response.location)
    assert params["post_logout_redirect_uri"] == "http://localhost/"
    assert params["id_token_hint"]
    assert client.get("/private").status_code == 302
    assert as_json(client.get("/"))["authenticated"] is False
    # The browser follows the redirect: Keycloak ends its session and sends it back home.
    ended = browser.get(response.location, allow_redirects=False, timeout=15)
    assert ended.status_code == 302
    assert ended.headers["Location"] == "http://localhost/"
    assert not alice_has_keycloak_session(keycloak_admin, keycloak, sid)


def test_cross_site_logout_post_is_refused(make_app: AppFactory, log_in: LogIn) -> None:
    client = make_app().test_client()
    log_in(client)
    response = client.post("/kc/logout", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert client.get("/private").status_code == 200


def test_backchannel_logout_ends_the_app_session(
    make_app: AppFactory,
    log_in: LogIn,
    keycloak: KeycloakRealm,
    keycloak_admin: KeycloakAdmin,
    serve_for_backchannel: Callable[[Flask], tuple[LiveApp, BackchannelCalls]],
) -> None:
    app = make_app()
    live, calls = serve_for_backchannel(app)
    browser = app.test_client()
    target = f"{live.url}/kc/backchannel-logout"
    with backchannel_logout_to(keycloak_admin, keycloak.realm, target):
        log_in(browser)
        sid = stored_session(app, browser)[2].sid
        assert sid is not None
        assert browser.get("/private").status_code == 200
        keycloak_admin.delete_session(keycloak.realm, sid)
        wait_for(lambda: bool(calls.statuses), what="Keycloak's back-channel logout call")
    assert calls.statuses == [200]
    assert _claims(calls.tokens[0])["sid"] == sid
    assert browser.get("/private").status_code == 302
    replay = app.test_client().post(
        "/kc/backchannel-logout", data={"logout_token": calls.tokens[0]}
    )
    assert replay.status_code == 400
    assert as_json(replay)["error_description"] == "logout token replayed"


@pytest.mark.parametrize("data", [{}, {"logout_token": "forged.token.value"}])
def test_backchannel_logout_refuses_bad_requests_with_400(
    make_app: AppFactory, data: dict[str, str]
) -> None:
    response = make_app().test_client().post("/kc/backchannel-logout", data=data)
    assert response.status_code == 400
    assert as_json(response)["error"] == "invalid_request"


def test_backchannel_logout_refuses_an_access_token(
    make_app: AppFactory, access_token: Grant
) -> None:
    token = access_token("alice")
    response = make_app().test_client().post("/kc/backchannel-logout", data={"logout_token": token})
    assert response.status_code == 400


# -- Keycloak unreachable --------------------------------------------------------------------


def test_keycloak_unreachable_answers_503_never_500(
    offline_app: AppFactory, access_token: Grant
) -> None:
    client = offline_app().test_client()
    token = access_token("alice")  # a real token; the app cannot reach Keycloak's keys
    for response in (
        client.get("/kc/login"),
        client.get("/api/me", headers={"Authorization": f"Bearer {token}"}),
    ):
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert as_json(response)["error"] == "temporarily_unavailable"
    assert client.get("/private").status_code == 302  # no session: the login link, not a 503
    assert client.get("/").status_code == 200


def test_async_views_are_protected_too(make_app: AppFactory, access_token: Grant) -> None:
    pytest.importorskip("asgiref", reason="Flask runs async views with flask[async]")
    app = make_app()

    @app.get("/async")
    @kc_flask.bearer_required(roles=["kc-api:reader"])
    async def async_view() -> Any:
        return {"reader": current_user.username}

    client = app.test_client()
    assert client.get("/async").status_code == 401
    token = access_token("bob")
    allowed = client.get("/async", headers={"Authorization": f"Bearer {token}"})
    assert as_json(allowed) == {"reader": "bob"}
