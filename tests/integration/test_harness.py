"""The test harness itself: the server, the realm, the login helpers and the admin client.

These run against the real Keycloak started by the suite; if they fail, nothing else can pass.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kc_core.testing import (
    KC_JWT_KEY_ID,
    FormLoginError,
    KeycloakAdmin,
    KeycloakRealm,
    KeycloakServer,
    RealmLogin,
    login_with_form,
    submit_device_code,
)

# The private half of kc-jwt's key: a test asset of this repository, not of the wheel.
KC_JWT_PRIVATE_KEY = Path(__file__).resolve().parents[1] / "keys" / "kc-jwt-private.pem"
TIMEOUT = 10
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
UMA_TICKET = "urn:ietf:params:oauth:grant-type:uma-ticket"


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the tests only inspect what Keycloak issued)."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def audiences(token: str) -> set[str]:
    aud = claims(token).get("aud", [])
    return {aud} if isinstance(aud, str) else set(aud)


def token_request(keycloak: KeycloakRealm, **data: str) -> requests.Response:
    return requests.post(keycloak.token_url, data=data, timeout=TIMEOUT)


def password_grant(keycloak: KeycloakRealm, username: str, client_id: str = "kc-web") -> str:
    client = keycloak.client(client_id)
    response = token_request(
        keycloak,
        grant_type="password",
        client_id=client_id,
        client_secret=client.secret or "",
        username=username,
        password=keycloak.user(username).password,
        scope="openid",
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# The server -------------------------------------------------------------------------------


def test_discovery_reports_realm_issuer(keycloak: KeycloakRealm) -> None:
    document = requests.get(keycloak.discovery_url, timeout=TIMEOUT).json()

    assert document["issuer"] == keycloak.issuer
    assert document["token_endpoint"] == keycloak.token_url
    assert document["authorization_endpoint"] == keycloak.auth_url
    assert document["jwks_uri"] == keycloak.jwks_url
    assert document["device_authorization_endpoint"] == keycloak.device_authorization_url


def test_server_binds_loopback_and_keeps_a_log(keycloak_server: KeycloakServer) -> None:
    if keycloak_server.is_external:
        pytest.skip("KEYCLOAK_URL: the server was not started by the suite")
    assert keycloak_server.base_url.startswith("http://127.0.0.1:")
    assert keycloak_server.log_path is not None
    assert "Listening on" in keycloak_server.log_path.read_text()


# Form login --------------------------------------------------------------------------------


def test_form_login_code_is_redeemable_at_token_endpoint(keycloak: KeycloakRealm) -> None:
    redirect_uri = "http://127.0.0.1:9/callback"
    state = secrets.token_urlsafe(8)
    url = RealmLogin(keycloak).authorization_url("kc-web", redirect_uri=redirect_uri, state=state)

    result = login_with_form(url, "alice", "alice-password", stop_at=redirect_uri)
    response = token_request(
        keycloak,
        grant_type="authorization_code",
        code=result.code or "",
        redirect_uri=redirect_uri,
        client_id="kc-web",
        client_secret="kc-web-secret",
    )

    assert result.state == state
    assert response.status_code == 200, response.text
    tokens = response.json()
    access = claims(tokens["access_token"])
    assert access["preferred_username"] == "alice"
    # No audience mappers (Keycloak's defaults): aud names the clients whose roles the token
    # carries (kc-api) and the account console; kc-web itself is the azp.
    assert audiences(tokens["access_token"]) == {"kc-api", "account"}
    assert access["azp"] == "kc-web"
    assert {"user", "admin"} <= set(access["realm_access"]["roles"])
    assert set(access["resource_access"]["kc-api"]["roles"]) == {"reader", "writer"}
    assert claims(tokens["id_token"])["email"] == "alice@example.test"
    assert tokens["refresh_token"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_redirect_uris_accept_any_loopback_port(form_login: RealmLogin, host: str) -> None:
    redirect_uri = f"http://{host}:{secrets.randbelow(20000) + 40000}/auth/callback"

    result = form_login("bob", redirect_uri=redirect_uri)

    assert result.code
    assert result.url.startswith(redirect_uri)


def test_form_login_rejects_foreign_redirect_uri(form_login: RealmLogin) -> None:
    with pytest.raises(FormLoginError, match="redirect_uri"):
        form_login("bob", redirect_uri="http://attacker.test/callback")


def test_form_login_wrong_password_raises_clear_error(form_login: RealmLogin) -> None:
    with pytest.raises(FormLoginError) as caught:
        form_login("alice", "not-the-password")

    assert caught.value.message == "Invalid username or password."
    assert caught.value.page_id == "login-login"


def test_form_login_disabled_user_raises_clear_error(form_login: RealmLogin) -> None:
    with pytest.raises(FormLoginError, match="disabled"):
        form_login("dave")


def test_form_login_reuses_sso_session(form_login: RealmLogin) -> None:
    first = form_login("carol")

    second = form_login("carol", "ignored: no form is shown", session=first.session)

    assert second.code
    assert second.code != first.code


def test_prompt_none_without_session_returns_login_required(form_login: RealmLogin) -> None:
    result = form_login("carol", prompt="none")

    assert result.code is None
    assert result.error == "login_required"


def test_public_client_requires_pkce(form_login: RealmLogin) -> None:
    without = form_login("bob", client_id="kc-public")
    with_pkce = form_login("bob", client_id="kc-public", pkce=True)

    assert without.error == "invalid_request"
    tokens = form_login.exchange_code(with_pkce, client_id="kc-public")
    assert claims(tokens["access_token"])["azp"] == "kc-public"


def test_confidential_client_accepts_optional_pkce(form_login: RealmLogin) -> None:
    result = form_login("bob", pkce=True)

    tokens = form_login.exchange_code(result)

    assert claims(tokens["access_token"])["preferred_username"] == "bob"


def test_kc_web_can_get_offline_tokens(keycloak: KeycloakRealm) -> None:
    response = token_request(
        keycloak,
        grant_type="password",
        client_id="kc-web",
        client_secret="kc-web-secret",
        username="bob",
        password="bob-password",
        scope="openid offline_access",
    )

    assert response.status_code == 200, response.text
    assert claims(response.json()["refresh_token"])["typ"] == "Offline"


class _CallbackApp(BaseHTTPRequestHandler):
    """A tiny app: /callback answers with the query it got."""

    def do_GET(self) -> None:
        body = json.dumps(parse_qs(urlsplit(self.path).query)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def callback_app() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _CallbackApp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/callback"
    server.shutdown()
    server.server_close()


def test_form_login_without_stop_at_hands_redirect_to_app(
    keycloak: KeycloakRealm, callback_app: str
) -> None:
    url = RealmLogin(keycloak).authorization_url("kc-web", redirect_uri=callback_app, state="s1")

    result = login_with_form(url, "bob", "bob-password")

    assert result.url.startswith(callback_app)
    assert result.response.status_code == 200
    assert result.response.json()["state"] == ["s1"]
    assert result.response.json()["code"]


# Other grants ------------------------------------------------------------------------------


def test_password_grant_respects_roles_and_disabled_users(keycloak: KeycloakRealm) -> None:
    carol = claims(password_grant(keycloak, "carol"))
    dave = token_request(
        keycloak,
        grant_type="password",
        client_id="kc-web",
        client_secret="kc-web-secret",
        username="dave",
        password="dave-password",
    )

    assert "user" not in carol["realm_access"]["roles"]
    assert dave.status_code == 400
    assert dave.json()["error"] == "invalid_grant"


def test_service_account_token_for_kc_service(keycloak: KeycloakRealm) -> None:
    response = token_request(
        keycloak,
        grant_type="client_credentials",
        client_id="kc-service",
        client_secret=keycloak.client("kc-service").secret or "",
    )

    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert "kc-api" in audiences(token)
    assert claims(token)["resource_access"]["kc-api"]["roles"] == ["reader"]


def test_kc_api_can_introspect_tokens(keycloak: KeycloakRealm) -> None:
    token = password_grant(keycloak, "bob")

    response = requests.post(
        keycloak.introspection_url,
        data={"token": token},
        auth=("kc-api", keycloak.client("kc-api").secret or ""),
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    assert response.json()["active"] is True
    assert response.json()["username"] == "bob"


def test_pat_of_kc_authz_lists_realm_resources(keycloak: KeycloakRealm) -> None:
    pat = token_request(
        keycloak,
        grant_type="client_credentials",
        client_id="kc-authz",
        client_secret="kc-authz-secret",
    ).json()["access_token"]

    response = requests.get(
        keycloak.resource_set_url,
        params={"deep": "true"},
        headers={"Authorization": f"Bearer {pat}"},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200, response.text
    resources = {resource["name"]: resource for resource in response.json()}
    assert {"Album Resource", "Admin Resource", "Public Resource"} <= set(resources)
    album = resources["Album Resource"]
    assert album["type"] == "urn:kc-authz:resources:album"
    assert album["ownerManagedAccess"] is True
    assert {scope["name"] for scope in album["scopes"]} == {"album:view", "album:delete"}


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        (
            "alice",
            {
                "Album Resource": {"album:view", "album:delete"},
                "Admin Resource": {"admin:access"},
                "Public Resource": set(),
            },
        ),
        ("bob", {"Album Resource": {"album:view"}, "Public Resource": set()}),
        ("carol", {"Public Resource": set()}),
    ],
)
def test_authz_policies_grant_expected_permissions(
    keycloak: KeycloakRealm, username: str, expected: dict[str, set[str]]
) -> None:
    token = password_grant(keycloak, username, client_id="kc-authz")

    response = requests.post(
        keycloak.token_url,
        data={"grant_type": UMA_TICKET, "audience": "kc-authz", "response_mode": "permissions"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200, response.text
    granted = {p["rsname"]: set(p.get("scopes", [])) for p in response.json()}
    assert granted == expected


def poll_device_token(keycloak: KeycloakRealm, device: dict[str, Any]) -> requests.Response:
    """Poll the token endpoint as a device would: every ``interval`` s, until a deadline."""
    interval = float(device.get("interval", 5))
    deadline = time.monotonic() + 30
    while True:
        time.sleep(interval)
        response = token_request(
            keycloak,
            grant_type=DEVICE_CODE,
            client_id="kc-device",
            device_code=device["device_code"],
        )
        error = response.json().get("error")
        if error not in ("authorization_pending", "slow_down") or time.monotonic() > deadline:
            return response
        if error == "slow_down":
            interval += 5  # RFC 8628 section 3.5


def test_device_flow_through_helper(keycloak: KeycloakRealm) -> None:
    device = requests.post(
        keycloak.device_authorization_url, data={"client_id": "kc-device"}, timeout=TIMEOUT
    ).json()
    pending = token_request(
        keycloak, grant_type=DEVICE_CODE, client_id="kc-device", device_code=device["device_code"]
    )

    page = submit_device_code(
        device["verification_uri"], device["user_code"], "bob", "bob-password"
    )
    response = poll_device_token(keycloak, device)

    assert pending.json()["error"] == "authorization_pending"
    assert page.title == "Device Login Successful"
    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"])["preferred_username"] == "bob"


def test_device_flow_helper_reports_unknown_user_code(keycloak: KeycloakRealm) -> None:
    device = requests.post(
        keycloak.device_authorization_url, data={"client_id": "kc-device"}, timeout=TIMEOUT
    ).json()

    with pytest.raises(FormLoginError, match="Invalid code"):
        submit_device_code(device["verification_uri"], "XXXX-XXXX", "bob", "bob-password")


def test_token_exchange_by_kc_exchange_targets_kc_api(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    # Standard token exchange needs the requester (kc-exchange) in the subject token's aud.
    with keycloak_admin.audience_mapper(keycloak.realm, "kc-web", "kc-exchange"):
        subject = password_grant(keycloak, "alice")

    response = token_request(
        keycloak,
        grant_type=TOKEN_EXCHANGE,
        client_id="kc-exchange",
        client_secret="kc-exchange-secret",
        subject_token=subject,
        subject_token_type=ACCESS_TOKEN_TYPE,
        audience="kc-api",
    )

    assert response.status_code == 200, response.text
    exchanged = claims(response.json()["access_token"])
    assert exchanged["aud"] == "kc-api"
    assert exchanged["azp"] == "kc-exchange"
    assert exchanged["sub"] == claims(subject)["sub"]


def test_private_key_jwt_client_gets_token(keycloak: KeycloakRealm) -> None:
    key = serialization.load_pem_private_key(KC_JWT_PRIVATE_KEY.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": KC_JWT_KEY_ID}
    payload = {
        "iss": "kc-jwt",
        "sub": "kc-jwt",
        "aud": keycloak.issuer,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 60,
    }
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())

    response = token_request(
        keycloak,
        grant_type="client_credentials",
        client_id="kc-jwt",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=f"{signing_input}.{b64url(signature)}",
    )

    assert response.status_code == 200, response.text
    assert claims(response.json()["access_token"])["azp"] == "kc-jwt"


# Admin helper ------------------------------------------------------------------------------


def test_add_rsa_key_is_published_in_jwks(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    # Low priority: published but not the active signing key, so other tests are unaffected.
    kid = keycloak_admin.add_rsa_key(keycloak.realm, priority=1)
    try:
        published = requests.get(keycloak.jwks_url, timeout=TIMEOUT).json()["keys"]
        assert kid in {key["kid"] for key in published}
    finally:
        keycloak_admin.remove_key(keycloak.realm, kid)
    published = requests.get(keycloak.jwks_url, timeout=TIMEOUT).json()["keys"]
    assert kid not in {key["kid"] for key in published}


def test_admin_sees_and_ends_user_sessions(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin, form_login: RealmLogin
) -> None:
    login = form_login("carol")

    sessions = keycloak_admin.user_sessions(keycloak.realm, "carol")
    keycloak_admin.logout_user(keycloak.realm, "carol")

    assert any("kc-web" in s["clients"].values() for s in sessions)
    assert keycloak_admin.user_sessions(keycloak.realm, "carol") == []
    again = form_login("carol", prompt="none", session=login.session)
    assert again.error == "login_required"


def test_admin_sets_client_attributes(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin
) -> None:
    url = "http://127.0.0.1:9/backchannel-logout"
    keycloak_admin.set_client_attributes(keycloak.realm, "kc-web", {"backchannel.logout.url": url})
    try:
        attributes = keycloak_admin.client(keycloak.realm, "kc-web")["attributes"]
        assert attributes["backchannel.logout.url"] == url
        assert attributes["backchannel.logout.session.required"] == "true"
    finally:
        keycloak_admin.set_client_attributes(
            keycloak.realm, "kc-web", {"backchannel.logout.url": ""}
        )


def test_admin_disables_and_enables_users(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin, form_login: RealmLogin
) -> None:
    keycloak_admin.set_user_enabled(keycloak.realm, "carol", False)
    try:
        with pytest.raises(FormLoginError, match="disabled"):
            form_login("carol")
    finally:
        keycloak_admin.set_user_enabled(keycloak.realm, "carol", True)
    assert form_login("carol").code
    assert keycloak_admin.user(keycloak.realm, "carol")["firstName"] == "Carol"
