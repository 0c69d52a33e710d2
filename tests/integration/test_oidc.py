"""kc_core.Client against the real Keycloak: every flow, the seed's API, every client auth.

Browser steps go through Keycloak's real HTML pages (``kc_core.testing.browser``); realm
changes go through the admin REST API and are undone at the end of each test.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from kc_core import Client, Config, LoginRequest, TokenSet
from kc_core.errors import DeviceFlowError, OAuthError
from kc_core.oidc import DeviceAuthorization
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import (
    BrowserSession,
    FormLoginResult,
    login_with_form,
    submit_device_code,
)
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

# Nothing listens there: the browser helper stops at the redirect and never requests it.
REDIRECT_URI = "http://127.0.0.1:9/callback"
POST_LOGOUT_URI = "http://127.0.0.1:9/signed-out"
REPO = Path(__file__).resolve().parents[2]
KEYS = REPO / "tests" / "keys"  # kc-jwt's key pair: test assets, not shipped


# -- helpers ------------------------------------------------------------------------------


def make_client(keycloak: KeycloakRealm, client_id: str, **settings: Any) -> Client:
    """A Client for one client of the test realm, with its secret from the realm file."""
    realm_client = keycloak.client(client_id)
    if realm_client.public:
        settings.setdefault("public_client", True)
    elif realm_client.secret is not None:
        settings.setdefault("client_secret", realm_client.secret)
    settings.setdefault("redirect_uri", REDIRECT_URI)
    return Client(
        Config(server_url=keycloak.base_url, realm=keycloak.realm, client_id=client_id, **settings)
    )


def password(keycloak: KeycloakRealm, username: str) -> str:
    return keycloak.user(username).password


def browser_login(
    keycloak: KeycloakRealm,
    login: LoginRequest,
    username: str = "alice",
    **options: Any,
) -> FormLoginResult:
    """Sign ``username`` in on Keycloak's form; stop at the redirect back to the app."""
    return login_with_form(
        login.url, username, password(keycloak, username), stop_at=login.redirect_uri, **options
    )


def jose_header(token: str) -> dict[str, Any]:
    part = token.split(".", 1)[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


@contextmanager
def client_attributes(
    admin: KeycloakAdmin, realm: str, client_id: str, changes: Mapping[str, str]
) -> Iterator[None]:
    """Set client attributes for the duration of a block, then put the old values back.

    Keycloak drops an attribute set to "" (a PUT without the key keeps the old value), so
    attributes that were absent are restored as "".
    """
    before = admin.client(realm, client_id).get("attributes", {})
    admin.set_client_attributes(realm, client_id, changes)
    try:
        yield
    finally:
        admin.set_client_attributes(realm, client_id, {k: before.get(k, "") for k in changes})


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def web(keycloak: KeycloakRealm) -> Iterator[Client]:
    with make_client(keycloak, "kc-web") as client:
        yield client


@pytest.fixture
def alice_tokens(web: Client, keycloak: KeycloakRealm) -> TokenSet:
    """Alice signed in through Keycloak's login page (authorization code flow)."""
    login = web.login()
    result = browser_login(keycloak, login)
    assert result.code is not None
    assert result.state is not None
    return web.callback(result.code, state=result.state, login=login)


# -- construction ---------------------------------------------------------------------


def test_client_without_arguments_reads_the_environment(
    keycloak: KeycloakRealm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no keycloak.json here
    monkeypatch.setenv("KEYCLOAK_SERVER_URL", keycloak.base_url)
    monkeypatch.setenv("KEYCLOAK_REALM", keycloak.realm)
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "kc-web")
    monkeypatch.setenv("KEYCLOAK_CLIENT_SECRET", keycloak.client("kc-web").secret or "")
    with Client() as client:
        tokens = client.password_grant("bob", password(keycloak, "bob"))
    assert tokens.id_claims is not None
    assert tokens.id_claims["preferred_username"] == "bob"


def test_client_without_arguments_reads_keycloak_json(
    keycloak: KeycloakRealm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("SERVER_URL", "REALM", "CLIENT_ID", "CLIENT_SECRET", "SETTINGS"):
        monkeypatch.delenv(f"KEYCLOAK_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    adapter_file = {
        "realm": keycloak.realm,
        "auth-server-url": f"{keycloak.base_url}/",
        "resource": "kc-service",
        "credentials": {"secret": keycloak.client("kc-service").secret},
    }
    (tmp_path / "keycloak.json").write_text(json.dumps(adapter_file))
    with Client(audience="kc-api") as client:
        claims = client.validate_access_token(client.client_credentials().access_token)
    assert claims["azp"] == "kc-service"


# -- browser login ----------------------------------------------------------------------


def test_code_flow_validates_the_id_token_and_returns_the_identity(
    web: Client, keycloak: KeycloakRealm
) -> None:
    login = web.login()
    query = parse_qs(urlsplit(login.url).query)
    assert query["code_challenge_method"] == ["S256"]
    result = browser_login(keycloak, login)
    assert result.state == login.state

    before = time.time()
    tokens = web.callback(result.code or "", state=result.state, login=login)

    assert tokens.id_claims is not None
    assert tokens.id_claims["preferred_username"] == "alice"
    assert tokens.id_claims["nonce"] == login.nonce
    assert tokens.id_claims["aud"] == "kc-web"
    assert "at_hash" in tokens.id_claims  # checked against the access token
    assert tokens.scopes >= {"openid", "profile", "email"}
    # Expiry instants computed at receipt from expires_in (the realm says 300 s).
    assert before + 290 <= tokens.expires_at <= time.time() + 300
    assert tokens.refresh_expires_at is not None
    assert not tokens.expires_within(60)
    assert tokens.expires_within(301)


def test_seed_login_and_callback_with_one_pending_login(keycloak: KeycloakRealm) -> None:
    with make_client(keycloak, "kc-web") as kc:
        url, state = kc.login()
        result = login_with_form(url, "alice", password(keycloak, "alice"), stop_at=REDIRECT_URI)
        assert result.state == state
        tokens = kc.callback(result.code or "")
        access_token = tokens["access_token"]
        userinfo = kc.fetch_userinfo(access_token)
    assert userinfo["preferred_username"] == "alice"
    assert isinstance(userinfo, dict)


def test_callback_with_state_only_uses_the_remembered_login(
    web: Client, keycloak: KeycloakRealm
) -> None:
    web.login()  # another pending login does not confuse the state form
    login = web.login()
    result = browser_login(keycloak, login, "bob")
    tokens = web.callback(result.code or "", result.state)
    assert tokens.id_claims is not None
    assert tokens.id_claims["preferred_username"] == "bob"


def test_login_request_survives_a_json_session(web: Client, keycloak: KeycloakRealm) -> None:
    stored = json.dumps(web.login(remember=False).to_dict())
    login = LoginRequest.from_dict(json.loads(stored))
    result = browser_login(keycloak, login)
    tokens = web.callback(result.code or "", state=result.state, login=login)
    assert tokens.id_claims is not None
    assert tokens.id_claims["nonce"] == login.nonce


def test_public_client_logs_in_with_pkce(keycloak: KeycloakRealm) -> None:
    with make_client(keycloak, "kc-public") as public:
        login = public.login()
        result = browser_login(keycloak, login, "bob")
        tokens = public.callback(result.code or "", state=result.state, login=login)
    assert tokens.id_claims is not None
    assert tokens.id_claims["azp"] == "kc-public"


def test_authorization_url_options_reach_keycloak(web: Client, keycloak: KeycloakRealm) -> None:
    # prompt=none without a Keycloak session: Keycloak answers login_required.
    silent = web.login(prompt="none")
    result = login_with_form(silent.url, "alice", "unused", stop_at=REDIRECT_URI)
    assert result.error == "login_required"
    assert result.state == silent.state

    # login_hint pre-fills the username field of Keycloak's form.
    hinted = web.login(login_hint="bob@example.test")
    page = BrowserSession().get(hinted.url, timeout=10)
    assert 'value="bob@example.test"' in page.text

    # max_age: Keycloak adds auth_time, which the client checks against it.
    login = web.login(max_age=300, scopes=["openid", "phone"], extra_params={"acr_values": "1"})
    result = browser_login(keycloak, login)
    tokens = web.callback(result.code or "", state=result.state, login=login)
    assert tokens.id_claims is not None
    assert time.time() - tokens.id_claims["auth_time"] < 300
    assert "phone" in tokens.scopes  # an optional scope, only there when asked for


# -- other grants ---------------------------------------------------------------------------


def test_refresh_returns_new_tokens(web: Client, alice_tokens: TokenSet) -> None:
    refreshed = web.refresh(alice_tokens.refresh_token or "")
    assert refreshed.access_token != alice_tokens.access_token
    assert refreshed.id_claims is not None
    assert refreshed.id_claims["sub"] == (alice_tokens.id_claims or {})["sub"]


def test_offline_token_never_expires_and_refreshes(web: Client, keycloak: KeycloakRealm) -> None:
    login = web.login(scopes=["openid", "offline_access"])
    result = browser_login(keycloak, login)
    tokens = web.callback(result.code or "", state=result.state, login=login)
    assert "offline_access" in tokens.scopes
    assert tokens.refresh_expires_at is None
    assert not tokens.refresh_expires_within(10**9)
    refreshed = web.refresh(tokens.refresh_token or "")
    assert refreshed.refresh_expires_at is None
    assert web.validate_access_token(refreshed.access_token)["preferred_username"] == "alice"
    web.revoke(refreshed.refresh_token or "", token_type_hint="refresh_token")


def test_password_grant(web: Client, keycloak: KeycloakRealm) -> None:
    tokens = web.password_grant("carol", password(keycloak, "carol"))
    assert tokens.id_claims is not None
    assert tokens.id_claims["preferred_username"] == "carol"
    assert web.decode(tokens.access_token)["azp"] == "kc-web"


def test_client_credentials_and_service_account_roles(keycloak: KeycloakRealm) -> None:
    with make_client(keycloak, "kc-service", audience="kc-api") as service:
        tokens = service.client_credentials()
        claims = service.validate_access_token(tokens.access_token)
    assert claims["azp"] == "kc-service"
    assert service.has_role(claims, "kc-api:reader")
    assert not service.has_role(claims, "kc-api:writer")


def test_roles_realm_client_and_bare_specs(web: Client, keycloak: KeycloakRealm) -> None:
    alice = web.validate_access_token(
        web.password_grant("alice", password(keycloak, "alice")).access_token
    )
    bob = web.validate_access_token(
        web.password_grant("bob", password(keycloak, "bob")).access_token
    )
    assert web.has_role(alice, "realm:admin")
    assert not web.has_role(bob, "realm:admin")
    assert web.has_role(bob, "realm:user")
    assert web.has_role(alice, "kc-api:writer")
    assert not web.has_role(bob, "kc-api:writer")
    assert not web.has_role(alice, "writer")  # bare name: kc-web's own role, which she lacks
    with make_client(keycloak, "kc-api") as api:
        assert api.has_role(alice, "writer")  # for kc-api, the bare name is its own role
        assert api.has_role(bob, "reader")


def test_token_exchange_for_another_audience(
    web: Client, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    # Standard token exchange lets a client exchange only tokens whose aud names it:
    # the one layout that needs an audience mapper on kc-web.
    with keycloak_admin.audience_mapper(keycloak.realm, "kc-web", "kc-exchange"):
        subject = web.password_grant("alice", password(keycloak, "alice")).access_token
    with make_client(keycloak, "kc-exchange") as exchanger:
        exchanged = exchanger.exchange_token(subject, audience="kc-api")
    assert exchanged.raw["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    with make_client(keycloak, "kc-api") as api:
        claims = api.validate_access_token(exchanged.access_token)
    assert claims["aud"] == "kc-api"
    assert claims["azp"] == "kc-exchange"
    assert claims["preferred_username"] == "alice"


# -- device flow ------------------------------------------------------------------------------


@pytest.fixture
def device_client(keycloak: KeycloakRealm) -> Iterator[Client]:
    with make_client(keycloak, "kc-device", redirect_uri=None) as client:
        yield client


def test_device_flow_approved_on_keycloaks_verification_page(
    device_client: Client, keycloak: KeycloakRealm
) -> None:
    device = device_client.start_device_authorization()
    assert device.interval == 1  # the realm's polling interval
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 1:  # Keycloak said authorization_pending: the user acts now
            submit_device_code(
                device.verification_uri_complete or device.verification_uri,
                device.user_code,
                "alice",
                password(keycloak, "alice"),
            )
        time.sleep(seconds)  # honouring the interval is the behaviour under test

    tokens = device_client.poll_device_authorization(device, sleep=sleep)
    assert waits == [1.0]
    assert tokens.id_claims is not None
    assert tokens.id_claims["preferred_username"] == "alice"


def test_device_flow_slows_down_when_keycloak_says_so(device_client: Client) -> None:
    device = device_client.start_device_authorization()
    waits: list[float] = []

    class Stop(Exception):
        pass

    def impatient_sleep(seconds: float) -> None:
        # Do not wait at all: Keycloak sees polls faster than its interval.
        waits.append(seconds)
        if len(waits) == 2:
            raise Stop

    with pytest.raises(Stop):
        device_client.poll_device_authorization(device, sleep=impatient_sleep)
    assert waits == [1.0, 6.0]  # pending, then slow_down: interval + 5 s (RFC 8628 3.5)


def test_device_flow_denied_on_the_consent_page(
    device_client: Client, keycloak: KeycloakRealm
) -> None:
    device = device_client.start_device_authorization()
    submit_device_code(
        device.verification_uri_complete or device.verification_uri,
        device.user_code,
        "bob",
        password(keycloak, "bob"),
        approve=False,
    )
    with pytest.raises(DeviceFlowError) as denied:
        device_client.poll_device_authorization(device, sleep=time.sleep)
    assert denied.value.error == "access_denied"


def test_device_flow_expired_code(
    device_client: Client, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    with client_attributes(
        keycloak_admin, keycloak.realm, "kc-device", {"oauth2.device.code.lifespan": "1"}
    ):
        device = device_client.start_device_authorization()
    # Keycloak's own answer, not the local check: poll as if the code still had time.
    unexpired = DeviceAuthorization(
        device.device_code,
        device.user_code,
        device.verification_uri,
        device.verification_uri_complete,
        expires_at=time.time() + 60,
        interval=device.interval,
    )
    assert device.expires_at - time.time() <= 1
    with pytest.raises(DeviceFlowError) as expired:
        device_client.poll_device_authorization(unexpired, sleep=lambda s: time.sleep(s + 1))
    assert expired.value.error == "expired_token"


# -- client authentication ------------------------------------------------------------------


def test_client_secret_post(keycloak: KeycloakRealm) -> None:
    with make_client(keycloak, "kc-web", client_auth_method="client_secret_post") as client:
        tokens = client.password_grant("bob", password(keycloak, "bob"))
    assert tokens.id_claims is not None


def test_private_key_jwt(keycloak: KeycloakRealm) -> None:
    jwks = json.loads((KEYS / "kc-jwt-public.jwks.json").read_text())
    with make_client(
        keycloak,
        "kc-jwt",
        client_auth_method="private_key_jwt",
        private_key=(KEYS / "kc-jwt-private.pem").read_text(),
        private_key_id=jwks["keys"][0]["kid"],
        verify_token_audience=False,
    ) as client:
        first = client.client_credentials()
        second = client.client_credentials()  # a fresh assertion (jti) every time
        claims = client.validate_access_token(second.access_token)
    assert first.access_token != second.access_token
    assert claims["azp"] == "kc-jwt"


# -- userinfo, introspection, revocation --------------------------------------------------------


def test_userinfo_json(web: Client, alice_tokens: TokenSet) -> None:
    userinfo = web.fetch_userinfo(alice_tokens.access_token)
    assert userinfo["preferred_username"] == "alice"
    assert userinfo["sub"] == (alice_tokens.id_claims or {})["sub"]


def test_userinfo_signed_jwt(
    web: Client, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    tokens = web.password_grant("alice", password(keycloak, "alice"))
    with client_attributes(
        keycloak_admin, keycloak.realm, "kc-web", {"user.info.response.signature.alg": "RS256"}
    ):
        raw = requests.get(
            keycloak.userinfo_url,
            headers={"Authorization": f"Bearer {tokens.access_token}"},
            timeout=10,
        )
        userinfo = web.fetch_userinfo(tokens.access_token)
    assert raw.headers["Content-Type"].startswith("application/jwt")
    assert userinfo["preferred_username"] == "alice"
    assert userinfo["iss"] == keycloak.issuer  # only a signed answer carries iss and aud
    assert userinfo["aud"] == "kc-web"


def test_introspection_and_revocation(
    web: Client, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    # Keycloak 26.6+ answers active: false to a client its token's aud does not name, even
    # the client it was issued to: introspecting one's own tokens needs an audience mapper.
    with keycloak_admin.audience_mapper(keycloak.realm, "kc-web", "kc-web"):
        _introspection_and_revocation(web, keycloak)


def _introspection_and_revocation(web: Client, keycloak: KeycloakRealm) -> None:
    tokens = web.password_grant("bob", password(keycloak, "bob"))
    live = web.introspect(tokens.access_token)
    assert live["active"] is True
    assert live["username"] == "bob"

    web.revoke(tokens.refresh_token or "", token_type_hint="refresh_token")
    with pytest.raises(OAuthError) as refused:
        web.refresh(tokens.refresh_token or "")
    assert refused.value.error == "invalid_grant"
    assert web.introspect(tokens.access_token)["active"] is False


#: Keycloak 26.6.2 and later answer ``active: false`` to a client outside the token's ``aud``
#: (for a refresh token: to any client but the one it was issued to); earlier releases
#: answer any confidential client of the realm.
INTROSPECTION_AUDIENCE_RULE = (26, 6, 2)


def _keycloak_says_active(keycloak: KeycloakRealm, client_id: str, token: str, **hint: str) -> bool:
    """Keycloak's own introspection answer for ``client_id``, without kc in between."""
    secret = keycloak.client(client_id).secret or ""
    answer = requests.post(
        keycloak.introspection_url,
        data={"token": token, **hint},
        auth=(client_id, secret),
        timeout=10,
    )
    answer.raise_for_status()
    return bool(answer.json()["active"])


def test_resource_server_introspects_a_token_meant_for_it(
    keycloak: KeycloakRealm, keycloak_version: tuple[int, ...]
) -> None:
    with make_client(keycloak, "kc-service") as service, make_client(keycloak, "kc-api") as api:
        token = service.client_credentials().access_token
        assert _payload(token)["azp"] == "kc-service"
        assert "kc-service" not in _payload(token)["aud"]
        assert api.introspect(token)["active"] is True
        assert _keycloak_says_active(keycloak, "kc-api", token) is True
        # The issuing client is outside aud: Keycloak's answer depends on its version, and
        # kc reports it as it is.
        expected = keycloak_version < INTROSPECTION_AUDIENCE_RULE
        assert _keycloak_says_active(keycloak, "kc-service", token) is expected
        assert service.introspect(token)["active"] is expected


def test_only_the_issuing_client_introspects_a_refresh_token(
    web: Client, keycloak: KeycloakRealm, keycloak_version: tuple[int, ...]
) -> None:
    tokens = web.password_grant("bob", password(keycloak, "bob"))
    refresh = tokens.refresh_token or ""
    assert _payload(refresh)["aud"] == keycloak.issuer  # a refresh token's aud is the issuer
    assert _payload(refresh)["azp"] == "kc-web"
    hinted = {"token_type_hint": "refresh_token"}
    assert web.introspect(refresh, **hinted)["active"] is True
    expected = keycloak_version < INTROSPECTION_AUDIENCE_RULE
    assert _keycloak_says_active(keycloak, "kc-api", refresh, **hinted) is expected
    # Without the hint the token is judged like an access token, by its aud.
    assert _keycloak_says_active(keycloak, "kc-web", refresh) is expected
    assert web.introspect(refresh)["active"] is expected
    with make_client(keycloak, "kc-api") as api:
        assert api.introspect(refresh, **hinted)["active"] is expected
        # The access token names kc-api in aud: kc-api may introspect it on every version.
        assert api.introspect(tokens.access_token)["active"] is True


# -- logout ---------------------------------------------------------------------------------------


def _session_ids(admin: KeycloakAdmin, keycloak: KeycloakRealm, username: str) -> set[str]:
    return {s["id"] for s in admin.user_sessions(keycloak.realm, username)}


def test_rp_initiated_logout_ends_the_keycloak_session(
    web: Client, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    login = web.login()
    result = browser_login(keycloak, login)
    tokens = web.callback(result.code or "", state=result.state, login=login)
    sid = (tokens.id_claims or {})["sid"]
    assert sid in _session_ids(keycloak_admin, keycloak, "alice")

    url = web.logout_url(
        id_token_hint=tokens.id_token,
        post_logout_redirect_uri=POST_LOGOUT_URI,
        state="after-logout",
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {
        "client_id": "kc-web",
        "id_token_hint": tokens.id_token,
        "post_logout_redirect_uri": POST_LOGOUT_URI,
        "state": "after-logout",
    }
    # The user's browser (with Keycloak's session cookies) follows the link.
    answer = result.session.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{POST_LOGOUT_URI}?state=after-logout"
    assert sid not in _session_ids(keycloak_admin, keycloak, "alice")
    with pytest.raises(OAuthError) as refused:
        web.refresh(tokens.refresh_token or "")
    assert refused.value.error == "invalid_grant"


def test_server_side_logout_with_the_refresh_token(
    web: Client, alice_tokens: TokenSet, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    sid = (alice_tokens.id_claims or {})["sid"]
    web.logout(alice_tokens.refresh_token or "")
    assert sid not in _session_ids(keycloak_admin, keycloak, "alice")
    with pytest.raises(OAuthError) as refused:
        web.refresh(alice_tokens.refresh_token or "")
    assert refused.value.error == "invalid_grant"


class _LogoutReceiver:
    """A tiny HTTP server standing in for the app's back-channel logout endpoint."""

    def __init__(self) -> None:
        self.posts: list[dict[str, list[str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.posts.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel-logout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_backchannel_logout_token_is_valid(
    web: Client, keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    receiver = _LogoutReceiver()
    try:
        with client_attributes(
            keycloak_admin, keycloak.realm, "kc-web", {"backchannel.logout.url": receiver.url}
        ):
            login = web.login()
            result = browser_login(keycloak, login)
            tokens = web.callback(result.code or "", state=result.state, login=login)
            sid = (tokens.id_claims or {})["sid"]
            keycloak_admin.delete_session(keycloak.realm, sid)
            posts = wait_for(lambda: receiver.posts, what="Keycloak's back-channel logout")
    finally:
        receiver.close()

    logout_token = posts[0]["logout_token"][0]
    assert jose_header(logout_token)["typ"] == "logout+jwt"
    claims = web.validate_logout_token(logout_token)
    assert claims["sid"] == sid
    assert claims["sub"] == (tokens.id_claims or {})["sub"]
    assert claims["aud"] == "kc-web"
    assert claims["typ"] == "Logout"
    assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
    assert "nonce" not in claims
    assert claims["exp"] > claims["iat"]


# -- refresh single flight --------------------------------------------------------------------


def test_concurrent_refreshes_send_one_request(web: Client, keycloak: KeycloakRealm) -> None:
    tokens = web.password_grant("bob", password(keycloak, "bob"))
    token_endpoint = web.discovery.endpoint("token_endpoint")
    sent: list[str] = []
    original = web.http.session.request

    def counting_request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url == token_endpoint:
            sent.append(dict(kwargs["data"])["grant_type"])
            # Keep the one request in flight until all ten callers wait for it.
            wait_for(lambda: web._refreshes.waiting(tokens.refresh_token) == 9, what="callers")
        return original(method, url, *args, **kwargs)

    web.http.session.request = counting_request  # type: ignore[method-assign]
    start = threading.Barrier(10)
    results: list[TokenSet] = []

    def refresh() -> None:
        start.wait()
        results.append(web.refresh(tokens.refresh_token or ""))

    threads = [threading.Thread(target=refresh) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sent == ["refresh_token"]
    assert len(results) == 10
    assert all(result is results[0] for result in results)
    assert results[0].access_token != tokens.access_token


# -- UMA basics (the seed's calls) -------------------------------------------------------------


def test_pat_and_find_ticket(keycloak: KeycloakRealm) -> None:
    with make_client(keycloak, "kc-authz") as kc:
        pat = kc.pat()
        assert kc.pat() is pat  # cached until near expiry
        found = requests.get(
            keycloak.resource_set_url,
            params={"name": "Album Resource", "exactName": "true"},
            headers={"Authorization": f"Bearer {pat['access_token']}"},
            timeout=10,
        )
        found.raise_for_status()
        resources = [{"resource_id": found.json()[0], "resource_scopes": ["album:view"]}]
        ticket = kc.find_ticket(resources, pat["access_token"])
    assert isinstance(ticket["ticket"], str)
    assert ticket["ticket"].count(".") == 2


# -- the core example ------------------------------------------------------------------------


def test_core_script_example_runs(keycloak: KeycloakRealm) -> None:
    env = {
        **os.environ,
        "KEYCLOAK_SERVER_URL": keycloak.base_url,
        "KEYCLOAK_REALM": keycloak.realm,
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "core_script.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "has kc-api:reader: True" in done.stdout
    assert "userinfo: preferred_username=service-account-kc-service" in done.stdout
    assert "after revocation userinfo says: invalid_token" in done.stdout
