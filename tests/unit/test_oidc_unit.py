"""Client behaviour that needs no Keycloak: URLs, state bookkeeping, token sets, wire format.

Everything about Keycloak's answers is tested against the real server in
``tests/integration``; here a local HTTP server only serves the discovery document and
records what the client sends.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kc_core import Client, Config, LoginRequest, TokenSet
from kc_core.errors import KeycloakError, LoginError, StateMismatch
from kc_core.oidc import pkce_challenge

from .conftest import LocalServer, Reply

REALM_PATH = "/realms/shop"


def _metadata(base: str) -> dict[str, Any]:
    realm = f"{base}{REALM_PATH}"
    oidc = f"{realm}/protocol/openid-connect"
    return {
        "issuer": realm,
        "authorization_endpoint": f"{oidc}/auth",
        "token_endpoint": f"{oidc}/token",
        "userinfo_endpoint": f"{oidc}/userinfo",
        "end_session_endpoint": f"{oidc}/logout",
        "jwks_uri": f"{oidc}/certs",
        "revocation_endpoint": f"{oidc}/revoke",
        "introspection_endpoint": f"{oidc}/token/introspect",
    }


@pytest.fixture
def realm(local_server: LocalServer) -> LocalServer:
    """The local server, announcing realm ``shop``'s endpoints (no JWKS: no tokens here)."""
    local_server.answer(
        f"{REALM_PATH}/.well-known/openid-configuration", Reply(_metadata(local_server.url))
    )
    return local_server


@pytest.fixture
def client(realm: LocalServer, make_config: Callable[..., Config]) -> Client:
    return Client(
        make_config(
            realm.url,
            client_secret="s3cret:&",
            redirect_uri="http://localhost:5000/callback",
        )
    )


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, strict_parsing=True).items()}


# -- PKCE and token sets ---------------------------------------------------------------


def test_pkce_challenge_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_token_set_computes_expiries_at_receipt() -> None:
    body = {
        "access_token": "a",
        "token_type": "Bearer",
        "expires_in": 300,
        "refresh_token": "r",
        "refresh_expires_in": 1800,
        "scope": "openid email profile",
        "session_state": "sid",
    }
    tokens = TokenSet.from_response(body, received_at=1000.0)
    assert tokens.expires_at == 1300.0
    assert tokens.refresh_expires_at == 2800.0
    assert tokens.scopes == {"openid", "email", "profile"}
    assert tokens.expires_within(301, now=1000.0)
    assert not tokens.expires_within(299, now=1000.0)
    assert tokens.refresh_expires_within(1801, now=1000.0)


def test_offline_token_set_has_no_refresh_expiry() -> None:
    tokens = TokenSet.from_response(
        {"access_token": "a", "expires_in": 60, "refresh_token": "r", "refresh_expires_in": 0}
    )
    assert tokens.refresh_expires_at is None
    assert not tokens.refresh_expires_within(10**9)


def test_token_set_reads_like_the_seed_dict() -> None:
    tokens = TokenSet.from_response({"access_token": "a", "expires_in": 60, "foo": "bar"})
    assert tokens["access_token"] == "a"
    assert tokens.get("foo") == "bar"
    assert tokens.get("missing", 1) == 1
    assert "foo" in tokens
    assert "refresh_token" not in tokens
    assert dict(tokens) == {"access_token": "a", "expires_in": 60, "foo": "bar"}


def test_token_set_without_access_token_is_refused() -> None:
    with pytest.raises(KeycloakError, match="access_token"):
        TokenSet.from_response({"error": "x"})


# -- LoginRequest ------------------------------------------------------------------------


def test_login_request_unpacks_as_the_seed_pair_and_round_trips() -> None:
    login = LoginRequest("https://kc/auth?x", "st", "no", "ver", "http://app/cb", 60.0)
    url, state = login
    assert (url, state) == ("https://kc/auth?x", "st")
    again = LoginRequest.from_dict(json.loads(json.dumps(login.to_dict())))
    assert again == login


def test_login_request_from_garbage_is_a_login_error() -> None:
    with pytest.raises(LoginError):
        LoginRequest.from_dict({"state": "x"})


# -- authorization URL -------------------------------------------------------------------


def test_login_url_carries_state_nonce_pkce_and_options(client: Client, realm: LocalServer) -> None:
    login = client.login(
        scopes=["openid", "email", "offline_access"],
        prompt="login",
        login_hint="alice@example.test",
        kc_idp_hint="github",
        ui_locales="de en",
        max_age=120,
        extra_params={"acr_values": "gold & silver"},
    )
    assert login.url.startswith(f"{realm.url}{REALM_PATH}/protocol/openid-connect/auth?")
    query = _query(login.url)
    assert query == {
        "response_type": "code",
        "client_id": "orders-web",
        "redirect_uri": "http://localhost:5000/callback",
        "scope": "openid email offline_access",
        "state": login.state,
        "nonce": login.nonce,
        "code_challenge": pkce_challenge(login.code_verifier or ""),
        "code_challenge_method": "S256",
        "prompt": "login",
        "login_hint": "alice@example.test",
        "kc_idp_hint": "github",
        "ui_locales": "de en",
        "max_age": "120",
        "acr_values": "gold & silver",
    }
    # Encoded, not pasted: the raw URL holds no bare space or ampersand inside values.
    assert " " not in login.url
    assert "gold+%26+silver" in login.url or "gold%20%26%20silver" in login.url
    assert login.redirect_uri == "http://localhost:5000/callback"
    assert login.max_age == 120


def test_every_login_gets_fresh_random_values(client: Client) -> None:
    first, second = client.login(remember=False), client.login(remember=False)
    assert len({first.state, second.state, first.nonce, second.nonce}) == 4
    assert first.code_verifier != second.code_verifier
    assert len(first.state) >= 43  # 32 random bytes
    assert 43 <= len(first.code_verifier or "") <= 128  # RFC 7636 section 4.1


def test_remembered_logins_share_one_verifier_per_client(
    client: Client, realm: LocalServer, make_config: Callable[..., Config]
) -> None:
    # The earlier callback(code) names no login, so it must know the verifier beforehand.
    first, second = client.login(), client.login()
    assert first.state != second.state
    assert first.nonce != second.nonce
    assert first.code_verifier == second.code_verifier
    assert 43 <= len(first.code_verifier or "") <= 128
    other = Client(make_config(realm.url, client_secret="x", redirect_uri="http://localhost/cb"))
    assert other.login().code_verifier != first.code_verifier
    public = Client(make_config(realm.url, public_client=True, redirect_uri="http://localhost/cb"))
    assert public.login().code_verifier != public.login().code_verifier


def test_default_scopes_come_from_config(client: Client) -> None:
    assert _query(client.login().url)["scope"] == "openid"


@pytest.mark.parametrize("name", ["state", "nonce", "redirect_uri", "code_challenge"])
def test_extra_params_cannot_replace_what_protects_the_login(client: Client, name: str) -> None:
    with pytest.raises(LoginError, match=name):
        client.login(extra_params={name: "attacker"})


def test_login_without_redirect_uri_is_refused(
    realm: LocalServer, make_config: Callable[..., Config]
) -> None:
    with pytest.raises(LoginError, match="redirect_uri"):
        Client(make_config(realm.url)).login()


def test_public_client_cannot_switch_pkce_off(
    realm: LocalServer, make_config: Callable[..., Config]
) -> None:
    public = Client(make_config(realm.url, public_client=True, redirect_uri="http://localhost/cb"))
    assert "code_challenge" in _query(public.login().url)
    with pytest.raises(LoginError, match="PKCE"):
        public.login(pkce=False)


# -- callback bookkeeping (all refused before any request) -------------------------------


def test_seed_callback_of_a_public_client_refuses_when_several_logins_are_pending(
    realm: LocalServer, make_config: Callable[..., Config]
) -> None:
    public = Client(make_config(realm.url, public_client=True, redirect_uri="http://localhost/cb"))
    public.login()
    public.login()
    with pytest.raises(LoginError, match="state="):
        public.callback("code")
    assert realm.count(f"{REALM_PATH}/protocol/openid-connect/token") == 0


def test_seed_callback_refuses_when_no_login_is_pending(client: Client) -> None:
    with pytest.raises(LoginError, match="state="):
        client.callback("code")


def test_callback_refuses_an_unknown_state(client: Client) -> None:
    client.login()
    with pytest.raises(StateMismatch, match="unknown"):
        client.callback("code", "forged-state")


def test_callback_refuses_a_state_that_is_not_the_logins(client: Client) -> None:
    login = client.login()
    with pytest.raises(StateMismatch):
        client.callback("code", "other", login=login)


def test_callback_with_a_login_needs_the_state(client: Client) -> None:
    login = client.login()
    with pytest.raises(LoginError, match="state="):
        client.callback("code", login=login)


def test_not_remembered_login_is_not_pending(client: Client) -> None:
    login = client.login(remember=False)
    with pytest.raises(StateMismatch):
        client.callback("code", login.state)


# -- construction and client authentication on the wire --------------------------------


def test_client_with_no_arguments_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEYCLOAK_SERVER_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("KEYCLOAK_REALM", "shop")
    monkeypatch.setenv("KEYCLOAK_CLIENT_ID", "web")
    monkeypatch.setenv("KEYCLOAK_CLIENT_SECRET", "s")
    client = Client()
    assert (client.config.realm, client.config.client_id, client.config.client_secret) == (
        "shop",
        "web",
        "s",
    )


def test_client_with_no_arguments_reads_keycloak_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("SERVER_URL", "REALM", "CLIENT_ID", "CLIENT_SECRET", "SETTINGS"):
        monkeypatch.delenv(f"KEYCLOAK_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keycloak.json").write_text(
        json.dumps(
            {
                "realm": "shop",
                "auth-server-url": "http://127.0.0.1:1/",
                "resource": "web",
                "credentials": {"secret": "s"},
            }
        )
    )
    client = Client()
    assert client.config.server_url == "http://127.0.0.1:1"
    assert client.config.client_secret == "s"


def _token_reply() -> Reply:
    return Reply({"access_token": "a", "token_type": "Bearer", "expires_in": 60})


def test_client_secret_basic_form_encodes_before_base64(client: Client, realm: LocalServer) -> None:
    realm.answer(f"{REALM_PATH}/protocol/openid-connect/token", _token_reply())
    client.client_credentials()
    sent = realm.recorded[-1]
    scheme, _, value = sent.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    # RFC 6749 section 2.3.1: ":" and "&" in the secret are percent-encoded first.
    assert base64.b64decode(value).decode() == "orders-web:s3cret%3A%26"
    assert b"client_secret" not in sent.body


def test_client_secret_post_sends_credentials_in_the_form(
    realm: LocalServer, make_config: Callable[..., Config]
) -> None:
    realm.answer(f"{REALM_PATH}/protocol/openid-connect/token", _token_reply())
    client = Client(
        make_config(realm.url, client_secret="s3cret", client_auth_method="client_secret_post")
    )
    client.client_credentials()
    sent = realm.recorded[-1]
    assert "Authorization" not in sent.headers
    form = parse_qs(sent.body.decode())
    assert form["client_id"] == ["orders-web"]
    assert form["client_secret"] == ["s3cret"]


def test_private_key_jwt_assertion_is_signed_and_names_the_issuer(
    realm: LocalServer, make_config: Callable[..., Config]
) -> None:
    realm.answer(f"{REALM_PATH}/protocol/openid-connect/token", _token_reply())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    client = Client(
        make_config(
            realm.url,
            client_auth_method="private_key_jwt",
            private_key=pem,
            private_key_id="k1",
        )
    )
    client.client_credentials()
    client.client_credentials()
    forms = [parse_qs(r.body.decode()) for r in realm.recorded if r.method == "POST"]
    assertions = [f["client_assertion"][0] for f in forms]
    assert forms[0]["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    header_part, claims_part, signature_part = assertions[0].split(".")

    def decode(part: str) -> Any:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    header, claims = decode(header_part), decode(claims_part)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    assert claims["iss"] == claims["sub"] == "orders-web"
    # Keycloak 26.2+ accepts only the issuer, as one string.
    assert claims["aud"] == f"{realm.url}{REALM_PATH}"
    assert 0 < claims["exp"] - claims["iat"] <= 60
    assert abs(claims["iat"] - time.time()) < 5
    signature = base64.urlsafe_b64decode(signature_part + "=" * (-len(signature_part) % 4))
    key.public_key().verify(
        signature, f"{header_part}.{claims_part}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    # Every assertion is new: Keycloak refuses a reused jti.
    assert decode(assertions[1].split(".")[1])["jti"] != claims["jti"]
