"""What goes wrong, against the real Keycloak: each failure is a typed error with Keycloak's
own ``error``."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kc_core import Client, Config, LoginRequest, TokenSet
from kc_core.errors import (
    KeycloakUnreachable,
    NonceMismatch,
    OAuthError,
    StateMismatch,
)
from kc_core.testing.admin import KeycloakAdmin
from kc_core.testing.browser import FormLoginError, FormLoginResult, login_with_form
from kc_core.testing.server import KeycloakRealm

pytestmark = pytest.mark.integration

# Nothing listens there: the browser helper stops at the redirect and never requests it.
REDIRECT_URI = "http://127.0.0.1:9/callback"


def make_client(keycloak: KeycloakRealm, client_id: str, **settings: Any) -> Client:
    realm_client = keycloak.client(client_id)
    if realm_client.public:
        settings.setdefault("public_client", True)
    elif realm_client.secret is not None:
        settings.setdefault("client_secret", realm_client.secret)
    return Client(
        Config(
            server_url=keycloak.base_url,
            realm=keycloak.realm,
            client_id=client_id,
            redirect_uri=REDIRECT_URI,
            **settings,
        )
    )


def password(keycloak: KeycloakRealm, username: str) -> str:
    return keycloak.user(username).password


def browser_login(
    keycloak: KeycloakRealm, login: LoginRequest, username: str = "alice"
) -> FormLoginResult:
    return login_with_form(
        login.url, username, password(keycloak, username), stop_at=login.redirect_uri
    )


@pytest.fixture
def web(keycloak: KeycloakRealm) -> Iterator[Client]:
    with make_client(keycloak, "kc-web") as client:
        yield client


# -- the login round trip ---------------------------------------------------------------------


def test_callback_rejects_reused_state(web: Client, keycloak: KeycloakRealm) -> None:
    login = web.login()
    result = browser_login(keycloak, login)
    web.callback(result.code or "", state=result.state, login=login)

    # A second login gives a fresh, valid code; the old state must still be refused.
    again = browser_login(keycloak, web.login(remember=False), "alice")
    with pytest.raises(StateMismatch):
        web.callback(again.code or "", state=result.state, login=login)
    with pytest.raises(StateMismatch):
        web.callback(again.code or "", state=result.state)


def test_callback_rejects_a_forged_state(web: Client, keycloak: KeycloakRealm) -> None:
    login = web.login()
    result = browser_login(keycloak, login)
    with pytest.raises(StateMismatch):
        web.callback(result.code or "", state="forged", login=login)


def test_seed_callback_refuses_a_code_of_a_login_it_did_not_start(
    web: Client, keycloak: KeycloakRealm
) -> None:
    # Another client object (another process) started this login; its nonce is not pending.
    other = make_client(keycloak, "kc-web")
    login = other.login()
    web.login()
    result = browser_login(keycloak, login)
    with pytest.raises((StateMismatch, OAuthError)):
        web.callback(result.code or "")


def test_callback_rejects_a_wrong_nonce(web: Client, keycloak: KeycloakRealm) -> None:
    login = web.login()
    result = browser_login(keycloak, login)
    with pytest.raises(NonceMismatch):
        web.callback(result.code or "", state=result.state, login=login, nonce="not-the-nonce")


def test_code_replay_is_refused_by_keycloak(web: Client, keycloak: KeycloakRealm) -> None:
    login = web.login()
    result = browser_login(keycloak, login)
    web.callback(result.code or "", state=result.state, login=login)
    with pytest.raises(OAuthError) as replay:
        # The low-level form: no state bookkeeping, straight to Keycloak with the same code.
        web.callback(result.code or "", code_verifier=login.code_verifier, nonce=login.nonce)
    assert replay.value.error == "invalid_grant"


def test_wrong_pkce_verifier_is_refused_by_keycloak(keycloak: KeycloakRealm) -> None:
    with make_client(keycloak, "kc-public") as public:
        login = public.login()
        result = browser_login(keycloak, login)
        with pytest.raises(OAuthError) as refused:
            public.callback(
                result.code or "", state=result.state, login=login, code_verifier="x" * 64
            )
    assert refused.value.error == "invalid_grant"


# -- refresh tokens ----------------------------------------------------------------------------


@pytest.fixture
def bob_tokens(web: Client, keycloak: KeycloakRealm) -> TokenSet:
    return web.password_grant("bob", password(keycloak, "bob"))


def test_revoked_refresh_token_is_invalid_grant(web: Client, bob_tokens: TokenSet) -> None:
    web.revoke(bob_tokens.refresh_token or "", token_type_hint="refresh_token")
    with pytest.raises(OAuthError) as refused:
        web.refresh(bob_tokens.refresh_token or "")
    assert refused.value.error == "invalid_grant"


def test_refresh_token_of_an_ended_session_is_invalid_grant(
    web: Client, bob_tokens: TokenSet
) -> None:
    web.logout(bob_tokens.refresh_token or "")
    with pytest.raises(OAuthError) as refused:
        web.refresh(bob_tokens.refresh_token or "")
    assert refused.value.error == "invalid_grant"


@pytest.fixture
def short_session_realm(keycloak_admin: KeycloakAdmin) -> Iterator[str]:
    """A throwaway realm whose sessions (and refresh tokens) expire after 2 s of idleness."""
    name = f"kc-expiry-{uuid.uuid4().hex[:8]}"
    keycloak_admin.post(
        "/admin/realms",
        json={
            "realm": name,
            "enabled": True,
            "sslRequired": "none",
            "ssoSessionIdleTimeout": 2,
            "clients": [
                {
                    "clientId": "app",
                    "secret": "app-secret",
                    "publicClient": False,
                    "standardFlowEnabled": False,
                    "directAccessGrantsEnabled": True,
                }
            ],
            "users": [
                {
                    "username": "erin",
                    "enabled": True,
                    "email": "erin@example.test",
                    "emailVerified": True,
                    "firstName": "Erin",
                    "lastName": "Example",
                    "credentials": [{"type": "password", "value": "erin-pw", "temporary": False}],
                }
            ],
        },
    )
    yield name
    keycloak_admin.delete(f"/admin/realms/{name}")


def test_expired_refresh_token_is_invalid_grant(
    keycloak: KeycloakRealm, short_session_realm: str
) -> None:
    client = Client(
        Config(
            server_url=keycloak.base_url,
            realm=short_session_realm,
            client_id="app",
            client_secret="app-secret",
            verify_token_audience=False,
        )
    )
    tokens = client.password_grant("erin", "erin-pw")
    assert tokens.refresh_expires_at is not None
    deadline = tokens.refresh_expires_at + 1.0
    while time.time() < deadline:  # poll until the refresh token is past its exp
        time.sleep(0.1)
    assert tokens.refresh_expires_within(0)

    with pytest.raises(OAuthError) as refused:
        client.refresh(tokens.refresh_token or "")

    assert refused.value.error == "invalid_grant"


def test_forged_refresh_token_is_invalid_grant(web: Client) -> None:
    with pytest.raises(OAuthError) as refused:
        web.refresh("not-a-refresh-token")
    assert refused.value.error == "invalid_grant"


def test_userinfo_with_a_revoked_token_is_invalid_token(web: Client, bob_tokens: TokenSet) -> None:
    web.revoke(bob_tokens.access_token, token_type_hint="access_token")
    with pytest.raises(OAuthError) as refused:
        web.fetch_userinfo(bob_tokens.access_token)
    assert refused.value.status == 401
    assert refused.value.error == "invalid_token"


# -- client and user credentials ----------------------------------------------------------------


def test_wrong_client_secret(keycloak: KeycloakRealm) -> None:
    client = make_client(keycloak, "kc-web", client_secret="wrong-secret")
    with client, pytest.raises(OAuthError) as refused:
        client.password_grant("alice", password(keycloak, "alice"))
    assert refused.value.status == 401
    assert refused.value.error in ("unauthorized_client", "invalid_client")


def test_password_grant_for_a_disabled_user(web: Client, keycloak: KeycloakRealm) -> None:
    with pytest.raises(OAuthError) as refused:
        web.password_grant("dave", password(keycloak, "dave"))
    assert refused.value.error == "invalid_grant"
    assert refused.value.error_description == "Account disabled"


def test_form_login_for_a_disabled_user(web: Client, keycloak: KeycloakRealm) -> None:
    with pytest.raises(FormLoginError) as refused:
        login_with_form(web.login().url, "dave", password(keycloak, "dave"), stop_at=REDIRECT_URI)
    assert "disabled" in refused.value.message.lower()


def test_wrong_password(web: Client) -> None:
    with pytest.raises(OAuthError) as refused:
        web.password_grant("alice", "wrong-password")
    assert refused.value.error == "invalid_grant"


def test_client_without_direct_grants(keycloak: KeycloakRealm) -> None:
    with make_client(keycloak, "kc-service") as service, pytest.raises(OAuthError) as refused:
        service.password_grant("alice", password(keycloak, "alice"))
    assert refused.value.error == "unauthorized_client"


def test_token_exchange_by_a_client_not_allowed_to(
    web: Client, bob_tokens: TokenSet, keycloak: KeycloakRealm
) -> None:
    with make_client(keycloak, "kc-service") as service, pytest.raises(OAuthError) as refused:
        service.exchange_token(bob_tokens.access_token, audience="kc-api")
    assert refused.value.error is not None


# -- Keycloak unreachable -------------------------------------------------------------------------


def _unreachable_client(server_url: str) -> Client:
    return Client(
        Config(
            server_url=server_url,
            realm="kc-test",
            client_id="kc-web",
            client_secret="unused",
            connect_timeout=0.5,
            read_timeout=0.5,
            retries=0,
        )
    )


def test_refused_connection_is_keycloak_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the client connects
    client = _unreachable_client(f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(KeycloakUnreachable):
        client.client_credentials()
    assert time.monotonic() - started < 1.5


def test_silent_keycloak_is_unreachable_within_the_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections, never answers
        client = _unreachable_client(f"http://127.0.0.1:{listener.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(KeycloakUnreachable, match="timed out"):
            client.password_grant("alice", "x")
        elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.5
