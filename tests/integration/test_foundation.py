"""The foundation against the real Keycloak: discovery, keys, validation, rotation, outages."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kc_core import Client, Config
from kc_core.errors import KeycloakUnreachable, UnknownKey, WrongAudience
from kc_core.http import HttpClient
from kc_core.jwks import RemoteKeySet
from kc_core.testing import KeycloakAdmin, KeycloakRealm, KeycloakServer, login_with_form
from kc_core.tokens import TokenValidator


def service_client(keycloak: KeycloakRealm, **overrides: Any) -> Client:
    settings: dict[str, Any] = {
        "server_url": keycloak.base_url,
        "realm": keycloak.realm,
        "client_id": "kc-service",
        "client_secret": keycloak.client("kc-service").secret,
        "audience": "kc-api",
    }
    return Client(Config(**(settings | overrides)))


def test_discovery_reads_both_documents_once(keycloak: KeycloakRealm) -> None:
    client = service_client(keycloak)
    calls: list[str] = []
    original = client.http.session.request

    def counting(method: str, url: str, *args: object, **kwargs: object) -> object:
        calls.append(url)
        return original(method, url, *args, **kwargs)  # type: ignore[arg-type]

    client.http.session.request = counting  # type: ignore[method-assign,assignment]
    for _ in range(5):
        assert client.discovery.issuer == keycloak.issuer
        assert client.discovery.endpoint("token_endpoint") == keycloak.token_url
        assert client.discovery.uma()["resource_registration_endpoint"].startswith(keycloak.issuer)

    assert sorted(calls) == [
        f"{keycloak.issuer}/.well-known/openid-configuration",
        f"{keycloak.issuer}/.well-known/uma2-configuration",
    ]


def test_legacy_auth_prefix_in_server_url_still_works(keycloak: KeycloakRealm) -> None:
    client = service_client(keycloak, server_url=f"{keycloak.base_url}/auth")

    tokens = client.client_credentials()

    assert client.discovery.realm_url == keycloak.issuer
    assert client.validate_access_token(tokens.access_token)["azp"] == "kc-service"


def test_jwks_keys_are_loaded_once_as_key_objects(keycloak: KeycloakRealm) -> None:
    client = service_client(keycloak)
    tokens = [client.client_credentials().access_token for _ in range(3)]

    for token in tokens:
        client.validate_access_token(token)

    kid = client.validator._headers  # the parsed headers name the realm's active key
    assert kid, "the header of Keycloak's tokens was parsed and kept"
    (header, key_id, _), *_ = kid.values()
    assert header["alg"] == "RS256"
    assert isinstance(client.keys.get(key_id).key, rsa.RSAPublicKey)
    assert client.keys.fetch_count == 1


def test_real_access_token_from_a_browser_login_validates(keycloak: KeycloakRealm) -> None:
    web = Client(
        Config(
            server_url=keycloak.base_url,
            realm=keycloak.realm,
            client_id="kc-web",
            client_secret=keycloak.client("kc-web").secret,
            redirect_uri="http://127.0.0.1:8765/callback",
        )
    )
    login = web.login()
    result = login_with_form(  # Keycloak's real HTML login form
        login.url, "alice", keycloak.user("alice").password, stop_at=login.redirect_uri
    )
    tokens = web.callback(result.code, result.state, login=login)

    access = web.validate_access_token(tokens.access_token)
    identity = tokens.id_claims

    assert access["preferred_username"] == "alice"
    # kc-web is as Keycloak creates a client: no audience mapper, so its own id is not in
    # aud; the token is accepted because Keycloak issued it to kc-web (azp).
    assert "kc-web" not in access["aud"]
    assert access["azp"] == "kc-web"
    assert identity is not None
    assert identity["nonce"] == login.nonce
    assert identity["aud"] == "kc-web" or "kc-web" in identity["aud"]


def test_service_account_token_for_another_audience_is_refused(keycloak: KeycloakRealm) -> None:
    token = service_client(keycloak).client_credentials().access_token
    # kc-authz's API: the token names kc-api in aud and was issued to kc-service.
    other_api = service_client(
        keycloak, client_id="kc-authz", client_secret=keycloak.client("kc-authz").secret
    )
    other_api = Client(other_api.config.replace(audience=None))

    with pytest.raises(WrongAudience) as refused:
        other_api.validate_access_token(token)
    assert refused.value.azp == "kc-service"
    assert "kc-api" in refused.value.audiences


@pytest.fixture
def rotation_realm(keycloak_admin: KeycloakAdmin) -> Iterator[str]:
    """A throwaway realm, so rotating its keys cannot disturb other tests' tokens."""
    name = f"kc-rotation-{uuid.uuid4().hex[:8]}"
    keycloak_admin.post(
        "/admin/realms",
        json={
            "realm": name,
            "enabled": True,
            "sslRequired": "none",
            "clients": [
                {
                    "clientId": "rotation-service",
                    "secret": "rotation-secret",
                    "publicClient": False,
                    "serviceAccountsEnabled": True,
                    "standardFlowEnabled": False,
                }
            ],
        },
    )
    yield name
    keycloak_admin.delete(f"/admin/realms/{name}")


def test_key_rotation_old_tokens_validate_and_new_ones_after_one_refetch(
    keycloak: KeycloakRealm, keycloak_admin: KeycloakAdmin, rotation_realm: str
) -> None:
    client = Client(
        Config(
            server_url=keycloak.base_url,
            realm=rotation_realm,
            client_id="rotation-service",
            client_secret="rotation-secret",
            verify_token_audience=False,
            jwks_refetch_interval=0.0,
        )
    )
    old_token = client.client_credentials().access_token
    client.validate_access_token(old_token)
    assert client.keys.fetch_count == 1

    new_kid = keycloak_admin.add_rsa_key(rotation_realm, priority=500)
    new_token = client.client_credentials().access_token

    assert client.validate_access_token(new_token)["azp"] == "rotation-service"
    assert client.keys.fetch_count == 2  # exactly one refetch, for the unknown kid
    assert client.keys.get(new_kid).kid == new_kid
    client.validator._cache.clear()  # validate the old token again, from its signature
    assert client.validate_access_token(old_token)["azp"] == "rotation-service"
    assert client.keys.fetch_count == 2


def test_unknown_kid_refetch_is_rate_limited(keycloak: KeycloakRealm) -> None:
    client = service_client(keycloak)
    keys = RemoteKeySet(
        HttpClient(client.config),
        f"{keycloak.issuer}/protocol/openid-connect/certs",
        refetch_interval=60.0,
    )
    keys.refresh()

    for _ in range(5):
        with pytest.raises(UnknownKey):
            keys.get("no-such-kid")

    # One refetch looked for the kid; a kid it did not find is refused without a request.
    assert keys.fetch_count == 2


@pytest.fixture(scope="module")
def second_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """A Keycloak of this module's own, so it can be stopped without harming the others."""
    server = KeycloakServer(external_url="", log_dir=Path(tmp_path_factory.mktemp("kc-logs")))
    with server:
        yield server


def test_stopped_keycloak_is_reported_unreachable_within_the_timeout(
    second_server: KeycloakServer,
) -> None:
    realm = second_server.realm_info()
    client = Client(
        Config(
            server_url=second_server.base_url,
            realm=realm.realm,
            client_id="kc-service",
            client_secret=realm.client("kc-service").secret,
            audience="kc-api",
            connect_timeout=1.0,
            read_timeout=2.0,
            retries=0,
        )
    )
    token = client.client_credentials().access_token
    validator: TokenValidator = client.validator
    validator.validate(token)

    second_server.stop()

    start = time.monotonic()
    with pytest.raises(KeycloakUnreachable) as failure:
        client.client_credentials()
    elapsed = time.monotonic() - start

    assert elapsed < 3.0
    assert second_server.base_url in str(failure.value) or failure.value.url
    # A token already validated needs no network: the per-request path keeps working.
    assert client.validate_access_token(token)["azp"] == "kc-service"
